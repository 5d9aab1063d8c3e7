// The Latent Atlas browser explorer: the latent map, live decoding, grid, interpolation, encoding of
// drawings and pictures, prior samples, model and provider switching; and what explains the model: the
// posterior's uncertainty, real neighbours, landscape layers, a second model side by side, more than two
// latent dims, the view in the address, and export. Everything runs in the page with
// onnxruntime-web; the site is static (config.json, models/, ort/ beside this app). The rules live in
// state.js, each part of the page in its module; this file only starts them and wires the events.
import { fileSource, urlSource } from './bundle.js';
import { createCompare } from './compare.js';
import { createDims } from './dims.js';
import { createDrawPad } from './drawpad.js';
import { createEncoder } from './encode.js';
import { createGrid } from './grid.js';
import { createInterpolation } from './interpolation.js';
import { interpolationPath } from './latent.js';
import { createLandscape } from './landscape.js';
import { createLoader, webgpuAvailable } from './loading.js';
import { createMap } from './map.js';
import { createExport } from './map_export.js';
import { showMessage } from './messages.js';
import { createNeighbours } from './neighbours.js';
import { createPreview } from './preview.js';
import { ExplorerState } from './state.js';
import { createUncertainty } from './uncertainty.js';
import { setLimits } from './untrusted.js';
import { createUrlState } from './url_state.js';

const params = new URLSearchParams(location.search);
const $ = id => document.getElementById(id);
const on = (target, type, listener, options) => (typeof target === 'string' ? $(target) : target).addEventListener(type, listener, options);

window.addEventListener('error', event => showMessage(`Unexpected error: ${event.message}`));
window.addEventListener('unhandledrejection', event => showMessage(`Unexpected error: ${event.reason?.message || event.reason}`));

const state = new ExplorerState();
const app = { state, providerChoice: () => $('provider-select').value };
app.map = createMap(app);
app.preview = createPreview(app, Number(params.get('seed') ?? 0));
app.grid = createGrid(app);
app.interpolation = createInterpolation(app);
app.encoder = createEncoder(app);
app.pad = createDrawPad(app);
app.dims = createDims(app);
app.uncertainty = createUncertainty(app);
app.neighbours = createNeighbours(app);
app.landscape = createLandscape(app);
app.compare = createCompare(app);
app.urlState = createUrlState(app);
app.exporter = createExport(app);
app.loader = createLoader(app, params);
/** The model's atlas_extra.npz arrived (after its first image): what explains the model takes it. */
app.explainReady = () => {
  app.landscape.modelChanged();
  app.map.drawPoints();
  if (state.cursor) app.neighbours.show(state.cursor);
  app.map.drawOverlay();
};
/** A bundle's source from a view state's `model` or `compare`: a bundled name or a location. */
app.sourceOf = name => {
  const entry = state.config.models.find(m => m.name === name);
  return entry ? urlSource(entry.path, entry.name) : urlSource(name);
};

function selectedModel() {
  const entry = state.config.models.find(m => m.name === $('model-select').value);
  return app.loader.loadModel(urlSource(entry.path, entry.name), entry.name);
}

const setEndAtCursor = which => () => app.interpolation.setEnd(which, state.cursor);

// The map
const overlay = app.map.overlay;
on(overlay, 'contextmenu', event => event.preventDefault());
on(overlay, 'pointerdown', app.map.pointerDown);
on(overlay, 'pointermove', event => app.map.pointerMove(event, $('follow-mouse').checked));
on(overlay, 'pointerup', app.map.pointerUp);
on(overlay, 'wheel', app.map.wheel, { passive: false });
new ResizeObserver(() => app.map.drawPoints()).observe(overlay);

// Grid and interpolation
on('grid', 'click', app.grid.click);
on('grid-button', 'click', app.grid.decode);
on('set-a', 'click', setEndAtCursor('a'));
on('set-b', 'click', setEndAtCursor('b'));
on('play-button', 'click', app.interpolation.play);
on('interp-method', 'change', event => app.interpolation.setMethod(event.target.value));
on('dim-x', 'change', app.dims.pick);
on('dim-y', 'change', app.dims.pick);
on('grid-n', 'change', () => app.urlState.changed());
on('grid-source', 'change', () => app.urlState.changed());

// Explaining: uncertainty, neighbours, layers and point colours, the second model, export
on('uncertainty', 'change', event => app.uncertainty.setOn(event.target.checked));
on('samples-button', 'click', app.uncertainty.decodeSamples);
on('neighbours-k', 'change', event => app.neighbours.setK(event.target.value));
on('layer-select', 'change', event => app.landscape.setLayer(event.target.value));
on('points-select', 'change', event => app.landscape.setPoints(event.target.value));
on('compare-select', 'change', event => app.compare.pick(event.target.value));
on('open-compare-folder', 'change', event => {
  if (event.target.files.length) app.compare.openFiles(event.target.files);
  event.target.value = '';
});
on('compare-overlay', 'change', event => app.compare.setOverlay(event.target.checked));
on('export-png', 'click', app.exporter.mapPng);
on('export-svg', 'click', app.exporter.mapSvgDownload);
on('export-grid', 'click', app.exporter.gridPng);

// Encoding: files, drops, pastes and the pad
on('image-file', 'change', event => { if (event.target.files[0]) app.encoder.encodeBlob(event.target.files[0]); });
const dropZone = $('drop-zone');
for (const target of [dropZone, overlay]) {
  on(target, 'dragover', event => { event.preventDefault(); dropZone.classList.add('over'); });
  on(target, 'dragleave', () => dropZone.classList.remove('over'));
  on(target, 'drop', event => {
    event.preventDefault();
    dropZone.classList.remove('over');
    app.encoder.encodeTransfer(event.dataTransfer.files);
  });
}
on(document, 'paste', event => app.encoder.encodeTransfer(null, event.clipboardData.items));
on(app.pad.pad, 'pointerdown', app.pad.pointerDown);
on(app.pad.pad, 'pointermove', app.pad.pointerMove);
on(app.pad.pad, 'pointerup', app.pad.pointerUp);
on('pad-clear', 'click', app.pad.erase);

// Models, sampling, keys
on('sample-button', 'click', app.preview.sample);
on('fit-button', 'click', app.map.fitView);
on('model-select', 'change', selectedModel);
on('provider-select', 'change', selectedModel);
for (const id of ['open-bundle-folder', 'open-bundle-files']) {
  on(id, 'change', event => {
    const files = event.target.files;
    if (files.length) app.loader.loadModel(fileSource(files));
    event.target.value = '';
  });
}

const keys = {
  s: app.preview.sample, g: app.grid.decode, f: app.map.fitView, Home: app.map.fitView, ' ': app.interpolation.play,
  a: setEndAtCursor('a'), b: setEndAtCursor('b'), '+': () => app.map.zoomStep(1), '-': () => app.map.zoomStep(-1),
};
on(document, 'keydown', event => {
  if (event.target.tagName === 'INPUT' || event.target.tagName === 'SELECT' || !state.model) return;
  const action = keys[event.key];
  if (action) { event.preventDefault(); action(); }
});

async function readConfig() {
  const response = await fetch('config.json');
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response.json();
}

async function start() {
  app.pad.clear();
  app.preview.clear();
  app.loader.clearResults();
  try {
    state.configure(await readConfig());
    setLimits(state.config.untrusted);  // the bounds on bundles, from the Python runtime
    state.timings.config = performance.now();
  } catch (error) {
    showMessage(`config.json could not be read (${error.message}); serve the folder that 'latent-atlas web --out' wrote`);
    return;
  }
  app.grid.configure();
  app.interpolation.configure();
  app.neighbours.configure();
  app.landscape.configure();
  app.compare.configure();
  const select = $('model-select');
  for (const entry of state.config.models) select.add(new Option(entry.name, entry.name));
  if (params.get('provider')) $('provider-select').value = params.get('provider');
  try {
    await app.urlState.load();
  } catch (error) {
    showMessage(`view_state.schema.json could not be read (${error.message})`);
    return;
  }
  // The address's view state: its model first, then the rest once the model's latent size is known.
  const [view, messages] = app.urlState.read();
  const bundleUrl = params.get('bundle') ?? (view.model && !state.config.models.some(m => m.name === view.model) ? view.model : null);
  if (view.model && state.config.models.some(m => m.name === view.model)) select.value = view.model;
  if (!bundleUrl && !state.config.models.length) { showMessage('This site holds no model bundles; open one with "Open bundle folder…"'); return; }
  const loaded = await (bundleUrl ? app.loader.loadModel(urlSource(bundleUrl)) : selectedModel());
  if (loaded) return app.urlState.restore(messages);
  app.urlState.abandon(messages);
}

// A hook for tests and benchmarks: exact numbers without reading pixels back.
window.__atlas = {
  state,
  ready: start(),
  toScreen: (x, y) => app.map.pageOf(x, y),
  decode: async z => Array.from(await state.model.decode(Float32Array.from(z))),
  decodeGrid: app.grid.decode,
  moveCursor: point => app.preview.move(Float32Array.from(point)),
  encodeRgba: (bytes, width, height) => app.encoder.encodeRgba(Uint8ClampedArray.from(bytes), width, height),
  preprocessRgba: (bytes, width, height) => Array.from(app.encoder.preprocessRgba(Uint8ClampedArray.from(bytes), width, height)),
  padPixels: app.pad.pixels,
  loadModel: name => { $('model-select').value = name; return selectedModel(); },
  interpolationPath: (a, b, steps, method) => Array.from(interpolationPath(a, b, steps, method)),
  webgpuAvailable,
  /** Paints the map and legend again from the state (after a test changed it). */
  redraw: () => { app.map.buildLegend(); app.map.drawPoints(); },
  setLayer: layer => app.landscape.setLayer(layer),
  setPoints: points => app.landscape.setPoints(points),
  compare: name => app.compare.pick(name),
  mapSvg: () => app.exporter.mapSvg(),
  ellipses: () => app.uncertainty.ellipses(),
  pointColours: () => app.landscape.colours()?.css ?? null,
  mapPngBytes: async () => Array.from(new Uint8Array(await (await new Promise(r => app.exporter.composed().toBlob(r, 'image/png'))).arrayBuffer())),
};
