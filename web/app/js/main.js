// The Latent Atlas browser explorer: the latent map, live decoding, grid, interpolation, encoding
// of drawings and pictures, prior samples, model and provider switching. Everything runs in the
// page with onnxruntime-web; the site is static (config.json, models/, ort/ beside this app).
import { BundleError, Model, createSession, fileSource, readBundle, startReads, urlSource } from './bundle.js';
import { preprocess, readPicture } from './preprocess.js';
import { gridPoints, interpolationPath, priorSample } from './latent.js';
import { setLimits } from './untrusted.js';

const SIDE = 28;
const PIXELS = SIDE * SIDE;
const CLASS_COLOURS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const HOME_MARGIN = 0.06;  // room around the p01..p99 box of the initial view, as on the desktop
const ZOOM_STEP = 1.15;
const params = new URLSearchParams(location.search);
const $ = id => document.getElementById(id);

const state = {
  config: null,
  model: null,            // the Model in use
  modelLabel: '',
  provider: null,         // the execution provider running it
  numThreads: 1,
  layout: null,
  view: { cx: 0, cy: 0, scale: 100 },
  cursor: null,           // Float32Array [dim]
  base: null,             // the dims other than the map's two, held at the prior mean
  lastImage: null,        // the last decoded preview, Float32Array(784)
  lastDecodeMs: null,
  frameTimes: [],         // each cursor frame, move to painted preview, ms
  firstImageMs: null,     // when the first decoded image was painted, ms after navigation start
  grid: null,             // {n, extent, points, tiles}
  ends: { a: null, b: null },
  playing: false,
  interpolationFrames: 0,
  encoded: null,          // {input, mean, logvar, reconstruction}
  encoding: false,        // the drawing pad's encode is running
  busy: false,
  pending: null,
  loads: 0,               // finished model loads, successful or not
  timings: {},            // when the last load's steps finished, ms after navigation start (benchmarks)
};

// ---------------------------------------------------------------------------------------------
// Messages and status

function showMessage(text) {
  const box = $('message');
  box.textContent = text;
  box.hidden = !text;
}

function updateStatus() {
  const m = state.model;
  const parts = [m ? `model ${m.manifest.name} (${m.manifest.variant}, ${m.manifest.dataset.name})` : 'no model loaded'];
  if (state.provider) {
    const threads = state.provider === 'wasm' ? `, ${state.numThreads} thread${state.numThreads > 1 ? 's' : ''}` : '';
    parts.push(`provider ${state.provider}${threads}${crossOriginIsolated ? ', cross-origin isolated' : ''}`);
  }
  if (state.lastDecodeMs !== null) parts.push(`last decode ${state.lastDecodeMs.toFixed(2)} ms`);
  $('status').textContent = parts.join(' · ');
}

window.addEventListener('error', event => showMessage(`Unexpected error: ${event.message}`));
window.addEventListener('unhandledrejection', event => showMessage(`Unexpected error: ${event.reason?.message || event.reason}`));

// ---------------------------------------------------------------------------------------------
// onnxruntime-web and providers

const ortModules = {};

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
    ort.env.wasm.numThreads = wasmThreads();
    ortModules[provider] = ort;
  }
  return ortModules[provider];
}

/** WASM threads: ?threads=N, else one per core up to 4 when the page is cross-origin isolated (threads
 * need SharedArrayBuffer). onnxruntime-web's own default takes half the cores, which on a 2-core machine
 * is one thread: the grid then decodes half as fast (docs/benchmarks.md, "Browser explorer"). */
function wasmThreads() {
  const asked = Number(params.get('threads'));
  if (asked > 0) return asked;
  return crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
}

/** The browser's WebGPU adapter, or null. */
async function webgpuAdapter() {
  try {
    return navigator.gpu ? await navigator.gpu.requestAdapter() : null;
  } catch {
    return null;
  }
}

async function webgpuAvailable() {
  return Boolean(await webgpuAdapter());
}

async function chooseProvider() {
  const asked = $('provider-select').value;
  if (asked !== 'auto') return asked;
  // A software fallback adapter (SwiftShader) is slower than WASM: auto takes real GPUs only.
  const adapter = await webgpuAdapter();
  return adapter && !adapter.info?.isFallbackAdapter ? 'webgpu' : 'wasm';
}

// ---------------------------------------------------------------------------------------------
// Loading models

async function loadModel(source, { label } = {}) {
  showMessage('');
  $('status').textContent = `loading ${label || source.label}…`;
  try {
    const provider = await chooseProvider();
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
    const previous = state.model;
    const encoderLater = !previous && provider === 'wasm';
    const model = await Model.create(await ortReady, bundle, provider, source.prefix, { decoder, encoderLater });
    state.model = model;
    state.provider = provider;
    state.numThreads = provider === 'wasm' ? (await ortReady).env.wasm.numThreads : 1;
    state.modelLabel = label || source.label;
    const layouts = state.config.preprocessing.layouts;
    const layoutName = model.manifest.dataset.layout ?? model.manifest.dataset.name;
    state.layout = layouts[layoutName] ?? layouts.mnist;
    state.base = new Float32Array(model.dim);
    state.cursor = null;
    state.grid = null;
    state.ends = { a: null, b: null };
    state.encoded = null;
    stopPlaying();
    // A decode of the previous model may still be running: its sessions go once it is done.
    while (state.busy) await new Promise(resolve => setTimeout(resolve, 5));
    if (previous) await previous.release();
    buildLegend();
    fitView();
    clearCanvas($('grid')); clearCanvas($('strip'));
    clearCanvas($('encoded-input')); clearCanvas($('reconstruction'));
    $('encoded-z').textContent = '–';
    updateEnds();
    const stats = model.manifest.latent_stats;
    const start = Float32Array.from(stats.mean ?? state.base);
    await moveCursor(start);
    updateStatus();
    try {
      await model.encoderReady;
    } catch (error) {
      await unload(model);
      throw error;
    }
    state.timings.encoder = performance.now();
    return true;
  } catch (error) {
    // The model in use (if any) stays; the page says what was wrong.
    showMessage(error instanceof BundleError ? error.message : `Could not load ${source.label}: ${error.message}`);
    updateStatus();
    return false;
  } finally {
    state.loads++;
  }
}

/** Takes a model that failed its late encoder check off the page (the first load: there is no other). */
async function unload(model) {
  if (state.model !== model) return;
  state.model = state.provider = state.cursor = null;
  while (state.busy) await new Promise(resolve => setTimeout(resolve, 5));
  await model.release();
  $('legend').replaceChildren();
  drawPoints();
  clearCanvas($('preview'));
  $('coordinates').textContent = 'z = –';
}

function selectedModelSource() {
  const name = $('model-select').value;
  const entry = state.config.models.find(m => m.name === name);
  return { source: urlSource(entry.path), label: entry.name };
}

// ---------------------------------------------------------------------------------------------
// The map

const pointsCanvas = $('map-points');
const overlay = $('map-overlay');

function canvasSize() {
  const ratio = devicePixelRatio || 1;
  const rect = overlay.getBoundingClientRect();
  return { width: rect.width, height: rect.height, ratio };
}

function toScreen(x, y) {
  const { width, height } = canvasSize();
  const v = state.view;
  return [width / 2 + (x - v.cx) * v.scale, height / 2 - (y - v.cy) * v.scale];
}

function toLatent(px, py) {
  const { width, height } = canvasSize();
  const v = state.view;
  return [v.cx + (px - width / 2) / v.scale, v.cy - (py - height / 2) / v.scale];
}

function visibleExtent() {
  const { width, height } = canvasSize();
  const [x0, y1] = toLatent(0, 0), [x1, y0] = toLatent(width, height);
  return [[x0, x1], [y0, y1]];
}

function fitView() {
  if (!state.model) return;
  const stats = state.model.manifest.latent_stats;
  const [lowKey, highKey] = state.config.view_percentiles;
  const x0 = stats[lowKey][0], x1 = stats[highKey][0], y0 = stats[lowKey][1], y1 = stats[highKey][1];
  const { width, height } = canvasSize();
  const spanX = (x1 - x0) * (1 + 2 * HOME_MARGIN), spanY = (y1 - y0) * (1 + 2 * HOME_MARGIN);
  state.view = { cx: (x0 + x1) / 2, cy: (y0 + y1) / 2, scale: Math.min(width / spanX, height / spanY) };
  drawPoints();
}

function sizeCanvas(canvas) {
  const { width, height, ratio } = canvasSize();
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext('2d');
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  return ctx;
}

function drawPoints() {
  const ctx = sizeCanvas(pointsCanvas);
  sizeCanvas(overlay);
  if (!state.model) return;
  const { z, labels, count } = state.model.atlas;
  const dim = state.model.dim;
  ctx.globalAlpha = 0.55;
  for (let c = 0; c < state.model.manifest.dataset.class_names.length; c++) {
    ctx.fillStyle = CLASS_COLOURS[c % CLASS_COLOURS.length];
    ctx.beginPath();
    for (let i = 0; i < count; i++) {
      if (labels[i] !== c) continue;
      const [sx, sy] = toScreen(z[i * dim], z[i * dim + 1]);
      ctx.rect(sx - 1.2, sy - 1.2, 2.4, 2.4);
    }
    ctx.fill();
  }
  ctx.globalAlpha = 1;
  drawOverlay();
}

function drawMarker(ctx, point, colour, label, radius = 6) {
  if (!point) return;
  const [sx, sy] = toScreen(point[0], point[1]);
  ctx.strokeStyle = colour; ctx.lineWidth = 2;
  ctx.beginPath(); ctx.arc(sx, sy, radius, 0, 2 * Math.PI); ctx.stroke();
  if (label) { ctx.fillStyle = colour; ctx.font = 'bold 12px system-ui'; ctx.fillText(label, sx + radius + 2, sy - radius); }
}

function drawOverlay() {
  const ctx = overlay.getContext('2d');
  const { width, height } = canvasSize();
  ctx.clearRect(0, 0, width, height);
  if (!state.model) return;
  const { a, b } = state.ends;
  if (a && b) {
    const path = interpolationPath(a, b, 32, $('interp-method').value);
    ctx.strokeStyle = '#444'; ctx.setLineDash([4, 3]); ctx.lineWidth = 1.5;
    ctx.beginPath();
    for (let i = 0; i < 32; i++) {
      const [sx, sy] = toScreen(path[i * state.model.dim], path[i * state.model.dim + 1]);
      i ? ctx.lineTo(sx, sy) : ctx.moveTo(sx, sy);
    }
    ctx.stroke(); ctx.setLineDash([]);
  }
  drawMarker(ctx, a, '#0a7d32', 'A');
  drawMarker(ctx, b, '#b3261e', 'B');
  if (state.encoded) drawMarker(ctx, state.encoded.mean, '#6a1b9a', 'encoded', 7);
  const c = state.cursor;
  if (c) {
    const [sx, sy] = toScreen(c[0], c[1]);
    ctx.strokeStyle = '#000'; ctx.lineWidth = 1.5;
    ctx.beginPath(); ctx.moveTo(sx - 9, sy); ctx.lineTo(sx + 9, sy); ctx.moveTo(sx, sy - 9); ctx.lineTo(sx, sy + 9); ctx.stroke();
  }
}

function buildLegend() {
  const legend = $('legend');
  legend.replaceChildren(...state.model.manifest.dataset.class_names.map((name, i) => {
    const row = document.createElement('div');
    const dot = document.createElement('span');
    dot.style.background = CLASS_COLOURS[i % CLASS_COLOURS.length];
    row.append(dot, name);
    return row;
  }));
}

// ---------------------------------------------------------------------------------------------
// Pictures

// One canvas pixel per model pixel, then scaled up without smoothing: previews and tiles stay crisp.
const scratch = document.createElement('canvas');
scratch.width = scratch.height = SIDE;
const scratchContext = scratch.getContext('2d');
const scratchImage = scratchContext.createImageData(SIDE, SIDE);

function drawScaled(canvas, pixels, x, y, w, h) {
  const data = scratchImage.data;
  for (let i = 0; i < PIXELS; i++) {
    const v = Math.round(Math.min(1, Math.max(0, pixels[i])) * 255);
    data[4 * i] = data[4 * i + 1] = data[4 * i + 2] = v;
    data[4 * i + 3] = 255;
  }
  scratchContext.putImageData(scratchImage, 0, 0);
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(scratch, x, y, w, h);
}

/** n x n decoded images -> one canvas, tile x tile pixels each: the tiles are written into one image and
 * scaled once (400 separate draws cost more than the decode). */
function drawMosaic(canvas, images, n, tile) {
  const mosaic = document.createElement('canvas');
  mosaic.width = mosaic.height = n * SIDE;
  const context = mosaic.getContext('2d');
  const image = context.createImageData(n * SIDE, n * SIDE);
  const data = image.data, rowPixels = n * SIDE;
  for (let i = 0; i < n * n; i++) {
    const x0 = (i % n) * SIDE, y0 = Math.floor(i / n) * SIDE, offset = i * PIXELS;
    for (let y = 0; y < SIDE; y++) {
      for (let x = 0; x < SIDE; x++) {
        const v = Math.round(Math.min(1, Math.max(0, images[offset + y * SIDE + x])) * 255);
        const at = 4 * ((y0 + y) * rowPixels + x0 + x);
        data[at] = data[at + 1] = data[at + 2] = v;
        data[at + 3] = 255;
      }
    }
  }
  context.putImageData(image, 0, 0);
  canvas.width = canvas.height = tile * n;
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(mosaic, 0, 0, tile * n, tile * n);
}

function clearCanvas(canvas) {
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
}

const fmt = values => Array.from(values, v => v.toFixed(3)).join(', ');

// ---------------------------------------------------------------------------------------------
// Decoding the cursor: coalesced, so a fast mouse never queues stale frames

const FRAME_HISTORY = 2000;

async function moveCursor(point) {
  // A frame: from the move to the painted map cursor, coordinates, preview and status bar.
  const started = performance.now();
  state.cursor = Float32Array.from(point);
  drawOverlay();
  $('coordinates').textContent = `z = (${fmt(state.cursor)})`;
  if (state.busy) { state.pending = { z: state.cursor, started }; return; }
  state.busy = true;
  try {
    let next = { z: state.cursor, started };
    while (next) {
      state.pending = null;
      const decodeStart = performance.now();
      const image = await state.model.decode(next.z);
      state.lastDecodeMs = performance.now() - decodeStart;
      drawScaled($('preview'), image, 0, 0, 280, 280);
      state.lastImage = Float32Array.from(image);
      state.lastZ = Float32Array.from(next.z);
      updateStatus();
      state.frameTimes.push(performance.now() - next.started);
      if (state.frameTimes.length > FRAME_HISTORY) state.frameTimes.shift();
      state.firstImageMs ??= performance.now();  // since navigation started: the page's load time
      next = state.pending;
    }
  } finally {
    state.busy = false;
  }
}

function pointAt(event) {
  const rect = overlay.getBoundingClientRect();
  const [x, y] = toLatent(event.clientX - rect.left, event.clientY - rect.top);
  const point = Float32Array.from(state.cursor ?? state.base);
  point[0] = x; point[1] = y;
  return point;
}

let drag = null;

overlay.addEventListener('contextmenu', event => event.preventDefault());
overlay.addEventListener('pointerdown', event => {
  if (!state.model) return;
  overlay.setPointerCapture(event.pointerId);
  const panning = event.button === 1 || event.button === 2 || event.altKey;
  drag = { panning, x: event.clientX, y: event.clientY, view: { ...state.view } };
  if (panning) return;
  const point = pointAt(event);
  if (event.shiftKey) { setEnd('a', point); drag = null; return; }
  if (event.ctrlKey || event.metaKey) { setEnd('b', point); drag = null; return; }
  moveCursor(point);
});
overlay.addEventListener('pointermove', event => {
  if (!state.model) return;
  if (drag?.panning) {
    state.view = { ...drag.view, cx: drag.view.cx - (event.clientX - drag.x) / drag.view.scale,
      cy: drag.view.cy + (event.clientY - drag.y) / drag.view.scale };
    drawPoints();
    return;
  }
  if (drag || $('follow-mouse').checked) moveCursor(pointAt(event));
});
overlay.addEventListener('pointerup', () => { drag = null; });
overlay.addEventListener('wheel', event => {
  if (!state.model) return;
  event.preventDefault();
  const rect = overlay.getBoundingClientRect();
  const px = event.clientX - rect.left, py = event.clientY - rect.top;
  const [x, y] = toLatent(px, py);
  const factor = event.deltaY < 0 ? ZOOM_STEP : 1 / ZOOM_STEP;
  zoomAbout(x, y, px, py, factor);
}, { passive: false });

function zoomAbout(x, y, px, py, factor) {
  const { width, height } = canvasSize();
  const scale = state.view.scale * factor;
  // Keep the latent point under the mouse where it was.
  state.view = { scale, cx: x - (px - width / 2) / scale, cy: y + (py - height / 2) / scale };
  drawPoints();
}

new ResizeObserver(() => drawPoints()).observe(overlay);

// ---------------------------------------------------------------------------------------------
// Grid

async function decodeGrid() {
  if (!state.model) return;
  const n = Math.min(40, Math.max(2, Math.round(Number($('grid-n').value) || 10)));
  let extent;
  if ($('grid-source').value === 'percentiles') {
    const stats = state.model.manifest.latent_stats;
    const [lowKey, highKey] = state.config.grid_percentiles;
    extent = [[stats[lowKey][0], stats[highKey][0]], [stats[lowKey][1], stats[highKey][1]]];
  } else {
    extent = visibleExtent();
  }
  const base = Float32Array.from(state.cursor ?? state.base);
  const points = gridPoints(n, extent, base);
  const started = performance.now();
  const images = await state.model.decode(points);
  const tile = Math.max(1, Math.floor(280 / n));
  drawMosaic($('grid'), images, n, tile);
  const elapsed = performance.now() - started;
  state.grid = { n, extent, points, tile, tiles: n * n, ms: elapsed, images: Float32Array.from(images) };
  state.lastDecodeMs = elapsed;
  updateStatus();
  return elapsed;
}

$('grid').addEventListener('click', event => {
  const grid = state.grid;
  if (!grid) return;
  const rect = $('grid').getBoundingClientRect();
  const col = Math.floor((event.clientX - rect.left) / rect.width * grid.n);
  const row = Math.floor((event.clientY - rect.top) / rect.height * grid.n);
  if (col < 0 || row < 0 || col >= grid.n || row >= grid.n) return;
  const dim = state.model.dim, at = (row * grid.n + col) * dim;
  moveCursor(grid.points.slice(at, at + dim));
});

// ---------------------------------------------------------------------------------------------
// Interpolation

function setEnd(which, point) {
  state.ends[which] = Float32Array.from(point);
  updateEnds();
  drawOverlay();
  if (state.ends.a && state.ends.b) drawStrip();
}

function updateEnds() {
  const { a, b } = state.ends;
  $('interp-ends').textContent = `A = ${a ? `(${fmt(a)})` : '–'} · B = ${b ? `(${fmt(b)})` : '–'}`;
}

function interpolationSteps() {
  return Math.min(40, Math.max(2, Math.round(Number($('interp-steps').value) || 10)));
}

async function drawStrip() {
  const steps = interpolationSteps();
  const path = interpolationPath(state.ends.a, state.ends.b, steps, $('interp-method').value);
  const images = await state.model.decode(path);
  const canvas = $('strip');
  const tile = 28;
  canvas.width = tile * steps; canvas.height = tile;
  canvas.style.width = '270px'; canvas.style.height = `${270 / steps}px`;
  for (let i = 0; i < steps; i++) drawScaled(canvas, images.subarray(i * PIXELS, (i + 1) * PIXELS), i * tile, 0, tile, tile);
}

function stopPlaying() {
  state.playing = false;
  $('play-button').textContent = 'Play';
}

async function play() {
  if (state.playing) { stopPlaying(); return; }
  if (!state.model) return;
  // Without both ends, play from the cursor to its mirror image through the origin.
  if (!state.ends.a) setEnd('a', state.cursor);
  if (!state.ends.b) setEnd('b', state.cursor.map(v => -v));
  await drawStrip();
  state.playing = true;
  $('play-button').textContent = 'Pause';
  const frames = 48;
  let i = 0;
  const model = state.model;
  while (state.playing && state.model === model) {
    const k = i % (2 * frames);
    const t = (k < frames ? k : 2 * frames - k) / frames;  // there and back
    const path = interpolationPath(state.ends.a, state.ends.b, frames + 1, $('interp-method').value);
    const at = Math.round(t * frames) * model.dim;
    await moveCursor(path.slice(at, at + model.dim));
    state.interpolationFrames++;
    i++;
    await new Promise(resolve => requestAnimationFrame(resolve));
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding drawings and pictures

function preprocessRgba(rgba, width, height) {
  const constants = state.config.preprocessing;
  const picture = readPicture(rgba, width, height, constants.work_side);
  return preprocess(picture.gray, picture.width, picture.height, state.layout, constants);
}

async function encodeRgba(rgba, width, height) {
  const input = preprocessRgba(rgba, width, height);
  const { mean, logvar } = await state.model.encode(input);
  const reconstruction = await state.model.decode(mean);
  state.encoded = { input, mean: Float32Array.from(mean), logvar: Float32Array.from(logvar), reconstruction: Float32Array.from(reconstruction) };
  drawScaled($('encoded-input'), input, 0, 0, 84, 84);
  drawScaled($('reconstruction'), reconstruction, 0, 0, 84, 84);
  $('encoded-z').textContent = `z = (${fmt(mean)})`;
  drawOverlay();
  return state.encoded;
}

async function encodeBlob(blob) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch {
    showMessage(`${blob.name || 'the pasted data'}: not an image the browser can decode (expected PNG, JPEG, GIF, BMP, WebP)`);
    return null;
  }
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext('2d', { colorSpace: 'srgb', willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0);
  const data = ctx.getImageData(0, 0, bitmap.width, bitmap.height, { colorSpace: 'srgb' }).data;
  showMessage('');
  return encodeRgba(data, bitmap.width, bitmap.height);
}

$('image-file').addEventListener('change', event => { if (event.target.files[0]) encodeBlob(event.target.files[0]); });
const dropZone = $('drop-zone');
for (const target of [dropZone, overlay]) {
  target.addEventListener('dragover', event => { event.preventDefault(); dropZone.classList.add('over'); });
  target.addEventListener('dragleave', () => dropZone.classList.remove('over'));
  target.addEventListener('drop', event => {
    event.preventDefault();
    dropZone.classList.remove('over');
    const file = event.dataTransfer.files[0];
    if (file) encodeBlob(file);
  });
}
document.addEventListener('paste', event => {
  const item = [...event.clipboardData.items].find(i => i.type.startsWith('image/'));
  if (item) encodeBlob(item.getAsFile());
});

const pad = $('pad');
const padCtx = pad.getContext('2d', { willReadFrequently: true });
let padDrawing = false, padEncoding = false, padDirty = false;

function clearPad() {
  padCtx.fillStyle = '#fff';
  padCtx.fillRect(0, 0, pad.width, pad.height);
}

async function encodePad() {
  // Follows the pen live, one encode at a time.
  if (padEncoding) { padDirty = true; return; }
  padEncoding = state.encoding = true;
  try {
    do {
      padDirty = false;
      await encodeRgba(padCtx.getImageData(0, 0, pad.width, pad.height).data, pad.width, pad.height);
    } while (padDirty);
  } finally {
    padEncoding = state.encoding = false;
  }
}

function padPoint(event) {
  const rect = pad.getBoundingClientRect();
  return [(event.clientX - rect.left) * pad.width / rect.width, (event.clientY - rect.top) * pad.height / rect.height];
}

pad.addEventListener('pointerdown', event => {
  if (!state.model) return;
  pad.setPointerCapture(event.pointerId);
  padDrawing = true;
  padCtx.strokeStyle = '#000'; padCtx.lineWidth = 16; padCtx.lineCap = padCtx.lineJoin = 'round';
  padCtx.beginPath();
  padCtx.moveTo(...padPoint(event));
  padCtx.lineTo(...padPoint(event));
  padCtx.stroke();
});
pad.addEventListener('pointermove', event => {
  if (!padDrawing) return;
  padCtx.lineTo(...padPoint(event));
  padCtx.stroke();
  encodePad();
});
pad.addEventListener('pointerup', () => { padDrawing = false; encodePad(); });
$('pad-clear').addEventListener('click', () => { clearPad(); state.encoded = null; drawOverlay(); });

// ---------------------------------------------------------------------------------------------
// Sampling, controls, keys

let sampleSeed = Number(params.get('seed') ?? 0);

function samplePrior() {
  if (!state.model) return;
  return moveCursor(priorSample(state.model.manifest.prior, state.model.dim, sampleSeed++));
}

$('sample-button').addEventListener('click', samplePrior);
$('fit-button').addEventListener('click', fitView);
$('grid-button').addEventListener('click', decodeGrid);
$('set-a').addEventListener('click', () => state.cursor && setEnd('a', state.cursor));
$('set-b').addEventListener('click', () => state.cursor && setEnd('b', state.cursor));
$('play-button').addEventListener('click', play);
$('interp-method').addEventListener('change', () => { drawOverlay(); if (state.ends.a && state.ends.b) drawStrip(); });
$('model-select').addEventListener('change', () => { const { source, label } = selectedModelSource(); loadModel(source, { label }); });
$('provider-select').addEventListener('change', () => {
  const { source, label } = selectedModelSource();
  loadModel(source, { label });
});
for (const id of ['open-bundle-folder', 'open-bundle-files']) {
  $(id).addEventListener('change', event => {
    const files = event.target.files;
    if (files.length) loadModel(fileSource(files));
    event.target.value = '';
  });
}

document.addEventListener('keydown', event => {
  if (event.target.tagName === 'INPUT' || event.target.tagName === 'SELECT' || !state.model) return;
  const actions = {
    s: samplePrior, g: decodeGrid, f: fitView, Home: fitView, ' ': play,
    a: () => state.cursor && setEnd('a', state.cursor), b: () => state.cursor && setEnd('b', state.cursor),
    '+': () => { const { width, height } = canvasSize(); zoomAbout(state.view.cx, state.view.cy, width / 2, height / 2, ZOOM_STEP); },
    '-': () => { const { width, height } = canvasSize(); zoomAbout(state.view.cx, state.view.cy, width / 2, height / 2, 1 / ZOOM_STEP); },
  };
  const action = actions[event.key];
  if (action) { event.preventDefault(); action(); }
});

// ---------------------------------------------------------------------------------------------
// Start-up

async function start() {
  clearPad();
  for (const id of ['preview', 'grid', 'strip', 'encoded-input', 'reconstruction']) clearCanvas($(id));
  try {
    const response = await fetch('config.json');
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    state.config = await response.json();
    setLimits(state.config.untrusted);  // the bounds on bundles, from the Python runtime
    state.timings.config = performance.now();
  } catch (error) {
    showMessage(`config.json could not be read (${error.message}); serve the folder that 'latent-atlas web --out' wrote`);
    return;
  }
  const select = $('model-select');
  for (const entry of state.config.models) select.add(new Option(entry.name, entry.name));
  if (params.get('provider')) $('provider-select').value = params.get('provider');
  const bundleUrl = params.get('bundle');
  if (bundleUrl) return loadModel(urlSource(bundleUrl));
  const wanted = params.get('model');
  if (wanted && state.config.models.some(m => m.name === wanted)) select.value = wanted;
  if (!state.config.models.length) { showMessage('This site holds no model bundles; open one with "Open bundle folder…"'); return; }
  const { source, label } = selectedModelSource();
  return loadModel(source, { label });
}

// A hook for tests and benchmarks: exact numbers without reading pixels back.
window.__atlas = {
  state,
  ready: start(),
  toScreen: (x, y) => { const r = overlay.getBoundingClientRect(); const [sx, sy] = toScreen(x, y); return [r.left + sx, r.top + sy]; },
  decode: async z => Array.from(await state.model.decode(Float32Array.from(z))),
  decodeGrid,
  moveCursor: point => moveCursor(Float32Array.from(point)),
  encodeRgba: (bytes, width, height) => encodeRgba(Uint8ClampedArray.from(bytes), width, height),
  preprocessRgba: (bytes, width, height) => Array.from(preprocessRgba(Uint8ClampedArray.from(bytes), width, height)),
  padPixels: () => Array.from(padCtx.getImageData(0, 0, pad.width, pad.height).data),
  loadModel: async name => { $('model-select').value = name; const { source, label } = selectedModelSource(); return loadModel(source, { label }); },
  interpolationPath: (a, b, steps, method) => Array.from(interpolationPath(a, b, steps, method)),
  webgpuAvailable,
};
