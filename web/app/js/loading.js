// Loading models: onnxruntime-web for the chosen execution provider, the bundle's files and sessions
// (bundle.js), and the switch: a model replaces the one in use only once all its checks passed, and the
// old one's sessions are released once the work still running on them has settled.
import { BundleError, Model, createSession, readBundle, startReads } from './bundle.js';
import { showMessage, showStatus, updateStatus } from './messages.js';
import { clearCanvas } from './pictures.js';
import { serial } from './state.js';

const MAX_AUTO_THREADS = 4;
const $ = id => document.getElementById(id);

/** WASM threads: ?threads=N, else one per core up to 4 when the page is cross-origin isolated (threads
 * need SharedArrayBuffer). onnxruntime-web's own default takes half the cores, which on a 2-core machine
 * is one thread: the grid then decodes half as fast (docs/benchmarks.md, "Browser explorer"). */
function wasmThreads(params) {
  const asked = Number(params.get('threads'));
  if (asked > 0) return asked;
  return crossOriginIsolated ? Math.min(MAX_AUTO_THREADS, navigator.hardwareConcurrency || 1) : 1;
}

/** The browser's WebGPU adapter, or null. */
async function webgpuAdapter() {
  try {
    return navigator.gpu ? await navigator.gpu.requestAdapter() : null;
  } catch {
    return null;
  }
}

export async function webgpuAvailable() {
  return Boolean(await webgpuAdapter());
}

/** The provider to use for the select's choice: "auto" takes WebGPU on a real GPU, else WASM. */
async function chooseProvider(asked) {
  if (asked !== 'auto') return asked;
  // A software fallback adapter (SwiftShader) is slower than WASM: auto takes real GPUs only.
  const adapter = await webgpuAdapter();
  return adapter && !adapter.info?.isFallbackAdapter ? 'webgpu' : 'wasm';
}

export function createLoader(app, params) {
  const { state } = app;
  const ortModules = {};
  const switches = serial();

  async function ortFor(provider) {
    if (!ortModules[provider]) {
      const info = state.config.onnxruntime_web;
      const url = new URL(provider === 'webgpu' ? info.webgpu : info.wasm, location.href).href;
      let ort;
      try {
        ort = await import(url);
      } catch (error) {
        throw new BundleError(`onnxruntime-web could not be loaded from ${url} (${error.message}); build the site with 'latent-atlas web'`);
      }
      ort.env.wasm.wasmPaths = new URL(info.dir, location.href).href;
      ort.env.wasm.numThreads = wasmThreads(params);
      ortModules[provider] = ort;
    }
    return ortModules[provider];
  }

  /** The model of `source`, every check done but the encoder's on a first wasm load (see below). */
  async function open(source, provider) {
    if (provider === 'webgpu' && !await webgpuAvailable()) {
      throw new BundleError('WebGPU is not available in this browser (no adapter); choose the wasm provider');
    }
    // onnxruntime-web (its WASM compiled with the decoder's session) and the bundle's files load side
    // by side; the bundle's checks decide whether that session is used.
    const reads = startReads(source);
    const ortReady = ortFor(provider);
    ortReady.then(() => { state.timings.ort = performance.now(); }, () => {});
    const decoder = Promise.all([ortReady, reads['decoder.onnx']])
      .then(([ort, bytes]) => createSession(ort, bytes, 'decoder', provider, source.prefix))
      .then(session => { state.timings.decoder = performance.now(); return session; });
    let bundle;
    try {
      bundle = await readBundle(source, reads);
    } catch (error) {
      decoder.then(session => session.release(), () => {});
      throw error;
    }
    state.timings.read = performance.now();
    // On the page's first load the encoder is created after the first image; a switch checks both
    // sessions first, so that a broken bundle never replaces the model in use. Only on wasm: there each
    // call into onnxruntime runs to its end, while the WebGPU build suspends inside a run, and creating a
    // session meanwhile corrupts its memory ("memory access out of bounds").
    const encoderLater = !state.model && provider === 'wasm';
    const ort = await ortReady;
    const model = await Model.create(ort, bundle, provider, source.prefix, { decoder, encoderLater });
    return { model, numThreads: provider === 'wasm' ? ort.env.wasm.numThreads : 1 };
  }

  /** Takes a model that failed its late encoder check off the page (the first load: there is no other). */
  async function unload(model) {
    if (state.model !== model) return;
    state.unload();
    await state.work.idle();
    await model.release();
    app.map.buildLegend();
    app.map.drawPoints();
    app.preview.clear();
  }

  /** What the page shows of the previous model's grid, strip and encoding goes. */
  function clearResults() {
    for (const id of ['grid', 'strip', 'encoded-input', 'reconstruction']) clearCanvas($(id));
    $('encoded-z').textContent = '–';
    app.interpolation.showEnds();
  }

  async function load(source, label) {
    showMessage('');
    showStatus(`loading ${label}…`);
    try {
      const provider = await chooseProvider(app.providerChoice());
      const { model, numThreads } = await open(source, provider);
      const previous = state.model;
      const start = state.install(model, { provider, numThreads, label });
      app.interpolation.stop();
      // Work of the previous model may still be running: its sessions go once it has settled.
      await state.work.idle();
      if (previous) await previous.release();
      state.modelName = source.name ?? null;
      app.landscape.modelChanged();
      app.neighbours.rebuild();
      app.uncertainty.clear();
      app.map.buildLegend();
      app.map.fitView();
      app.dims.rebuild();
      app.pad.configure();
      clearResults();
      await app.compare.recheck();
      await app.preview.move(start);
      updateStatus(state);
      try {
        await model.encoderReady;
      } catch (error) {
        await unload(model);
        throw error;
      }
      state.timings.encoder = performance.now();
      await model.attachExtra();
      if (state.model === model) app.explainReady();
      return true;
    } catch (error) {
      // The model in use (if any) stays; the page says what was wrong.
      showMessage(error instanceof BundleError ? error.message : `Could not load ${source.label}: ${error.message}`);
      updateStatus(state);
      return false;
    } finally {
      state.loads++;
    }
  }

  /** Loads a model in place of the one in use, after any switch already under way; resolves to whether it
   * loaded. */
  function loadModel(source, label = source.label) {
    return switches(() => load(source, label));
  }

  /** A model of `source`, both sessions checked, not put in use (the second model of a comparison). */
  async function openModel(source) {
    const provider = state.provider ?? await chooseProvider(app.providerChoice());
    return (await open(source, provider)).model;
  }

  return { loadModel, openModel, clearResults };
}
