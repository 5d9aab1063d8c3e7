// The landscape: a background layer of the map (none / the prior's log-density / the aggregate posterior's
// log-density / the decoder's entropy) over the visible region at the rules' coarse resolution, cached per
// view and computed without blocking the hover (the densities in a worker, the entropy decoded a few rows at
// a time); the atlas points coloured by class, reconstruction error or a known factor; a legend with the
// scale. The numbers are explain.js's (runtime/explain.py's port) and the rules config.json's "explorer".
import { LayerGrid, decoderEntropy, errorRange, layerRange, legendTicks, mapColours } from './explain.js';
import { showMessage } from './messages.js';
import { LayerCache, extraProblem, layerRequest, parsePoints } from './state.js';

const $ = id => document.getElementById(id);
const CACHED_LAYERS = 24;   // views whose layer is kept
const ENTROPY_ROWS = 2;     // layer rows decoded per call: short calls keep the hover's frames in between
const LEGEND_STEPS = 180;   // colours along a legend's bar

export function createLandscape(app) {
  const { state } = app;
  const cache = new LayerCache(CACHED_LAYERS);
  const worker = new Worker(new URL('./layer_worker.js', import.meta.url), { type: 'module' });
  const waiting = new Map();  // worker request id -> resolve
  let nextId = 0, wanted = null, pointColours = null;
  const problems = { layer: null, points: null };  // why a chosen layer or colouring is not shown

  /** The message box says why each chosen layer or point colouring is not shown (a line each). */
  function noteProblem(which, problem) {
    if (problems[which] === problem) return;
    problems[which] = problem;
    const lines = Object.values(problems).filter(Boolean);
    if (lines.length || problem === null) showMessage(lines.join('\n'));
  }

  worker.onmessage = ({ data }) => {
    waiting.get(data.id)?.(data);
    waiting.delete(data.id);
  };

  function configure() {
    $('layer-select').replaceChildren(...Object.entries(state.rules.layers).map(([value, name]) => new Option(name, value)));
  }

  /** A new model: its layers, colours and point choices; the worker gets its atlas posteriors. */
  function modelChanged() {
    cache.clear();
    pointColours = null;
    state.layerShown = null;
    const model = state.model, extra = model.atlas.extra;
    const factors = model.factorNames.map(name => state.rules.factor_prefix + name);
    $('points-select').replaceChildren(...[...state.rules.point_colourings, ...factors].map(p => new Option(p, p)));
    $('points-select').value = state.points;
    $('layer-select').value = state.layer;
    worker.postMessage({ atlas: extra.arrays ? {
      means: { data: model.atlas.z, shape: [model.atlas.count, model.dim] },
      logvars: { data: extra.arrays.z_logvar.data, shape: extra.arrays.z_logvar.shape },
    } : null });
  }

  /** Why the layer cannot be shown for this model, or null. */
  function layerProblem(layer) {
    return layer === 'aggregate' ? extraProblem(state.model.atlas.extra, 'the aggregate layer needs the atlas posteriors') : null;
  }

  async function compute(request) {
    const { layer, xRange, yRange, cols, rows } = request;
    const model = state.model, dims = [...state.dims], base = Array.from(state.cursor ?? state.base);
    if (layer !== 'entropy') {
      const id = nextId++;
      const reply = await new Promise(resolve => {
        waiting.set(id, resolve);
        worker.postMessage({ id, layer, xRange, yRange, cols, rows, dims, base, prior: model.manifest.prior ?? null,
          dim: model.dim, constants: state.config.explain });
      });
      if (reply.error) throw new Error(reply.error);
      return reply.values;
    }
    const values = new Float64Array(cols * rows), cellHeight = (yRange[1] - yRange[0]) / rows;
    for (let r0 = 0; r0 < rows; r0 += ENTROPY_ROWS) {
      if (wanted !== request.key || model !== state.model) return null;  // the view moved on
      const band = Math.min(ENTROPY_ROWS, rows - r0), top = yRange[1] - r0 * cellHeight;
      const grid = new LayerGrid(xRange, [top - band * cellHeight, top], cols, band, state.config.explain);
      const points = grid.points(model.dim, dims, base);
      const images = await state.work.track(model.decode(points.data));
      values.set(decoderEntropy({ data: images, shape: [band * cols, model.pixels] }), r0 * cols);
    }
    return values;
  }

  function paint(request, values) {
    const canvas = $('map-layer'), { width, height, ratio } = app.map.size();
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const ctx = canvas.getContext('2d');
    if (!request || !values) { ctx.clearRect(0, 0, canvas.width, canvas.height); return; }
    const [low, high] = layerRange(request.layer, values, state.rules);
    const rgb = mapColours(values, low, high, state.rules.layer_colour_maps[request.layer], state.rules);
    const cells = document.createElement('canvas');
    cells.width = request.cols; cells.height = request.rows;
    const image = cells.getContext('2d').createImageData(request.cols, request.rows);
    for (let i = 0; i < values.length; i++) {
      image.data.set(rgb.subarray(3 * i, 3 * i + 3), 4 * i);
      image.data[4 * i + 3] = 255;
    }
    cells.getContext('2d').putImageData(image, 0, 0);
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(cells, 0, 0, canvas.width, canvas.height);
    state.layerShown = { key: request.key, layer: request.layer, range: [low, high], cols: request.cols, rows: request.rows,
      xRange: request.xRange, yRange: request.yRange, values };
    showLegend();
  }

  /** The layer of the current view: from the cache, else computed (the map keeps its points meanwhile). */
  async function update() {
    if (!state.model) return;
    const size = app.map.size();
    const request = layerRequest(state.rules, state.layer, state.view, size, state.dims, state.cursor ?? state.base);
    if (request && request.key === state.layerShown?.key) return;  // shown already
    wanted = request?.key ?? null;
    state.layerShown = null;
    const problem = request ? layerProblem(request.layer) : null;
    noteProblem('layer', problem);
    if (!request || problem) { paint(null, null); showLegend(); return; }
    const cached = cache.get(request.key);
    if (cached) { paint(request, cached); return; }
    const model = state.model;
    try {
      const values = await compute(request);
      if (!values || model !== state.model) return;
      cache.set(request.key, values);
      if (wanted === request.key) paint(request, values);
    } catch (error) {
      showMessage(`the ${request.layer} layer could not be computed: ${error.message}`);
    }
  }

  function setLayer(layer) {
    state.setLayer(layer);
    $('layer-select').value = layer;
    app.urlState?.changed();
    return update();
  }

  /** RGB bytes per atlas point for the error or factor colouring, or null for class colours. */
  function colours() {
    if (!state.model) return null;
    if (pointColours?.model === state.model && pointColours.points === state.points) return pointColours;
    const parsed = parsePoints(state.points, state.rules, state.model.factorNames);
    const extra = state.model.atlas.extra;
    const problem = parsed.kind === 'class' ? null : extraProblem(extra, `colouring points by ${parsed.kind}`);
    noteProblem('points', problem);
    if (parsed.kind === 'class' || problem) return null;
    let values, range, colourMap;
    if (parsed.kind === 'error') {
      values = extra.arrays.recon_error.data;
      range = errorRange(values, state.rules);
      colourMap = state.rules.layer_colour_maps.error;
    } else {
      const f = extra.arrays.factors, count = f.shape[1];
      values = Float64Array.from({ length: f.shape[0] }, (_, i) => f.data[i * count + parsed.factor]);
      range = layerRange('factor', values, state.rules);
      colourMap = state.rules.layer_colour_maps.factor;
    }
    const rgb = mapColours(values, range[0], range[1], colourMap, state.rules);
    const css = Array.from({ length: values.length }, (_, i) => `rgb(${rgb[3 * i]},${rgb[3 * i + 1]},${rgb[3 * i + 2]})`);
    pointColours = { model: state.model, points: state.points, css, range, colourMap, title: parsed.kind === 'error' ? 'reconstruction error (nats)' : parsed.name };
    return pointColours;
  }

  function setPoints(points) {
    state.setPoints(points);
    $('points-select').value = points;
    app.map.buildLegend();
    app.map.drawPoints();
    app.urlState?.changed();
  }

  /** One scale: its title, a bar of the colour map and round ticks. */
  function scaleBlock(title, [low, high], colourMap) {
    const block = document.createElement('div');
    const bar = document.createElement('canvas');
    bar.width = LEGEND_STEPS; bar.height = 1;
    const ramp = Float64Array.from({ length: LEGEND_STEPS }, (_, i) => low + (high - low) * (i + 0.5) / LEGEND_STEPS);
    const rgb = mapColours(ramp, low, high, colourMap, state.rules);
    const image = bar.getContext('2d').createImageData(LEGEND_STEPS, 1);
    for (let i = 0; i < LEGEND_STEPS; i++) { image.data.set(rgb.subarray(3 * i, 3 * i + 3), 4 * i); image.data[4 * i + 3] = 255; }
    bar.getContext('2d').putImageData(image, 0, 0);
    const ticks = document.createElement('div');
    ticks.className = 'ticks';
    for (const [value, label] of legendTicks(low, high, state.rules.legend_ticks)) {
      const tick = document.createElement('span');
      tick.style.left = `${100 * (value - low) / (high - low)}%`;
      tick.textContent = label;
      ticks.append(tick);
    }
    block.append(title, bar, ticks);
    return block;
  }

  /** The legend of the layer's scale and of the points' colour scale, whichever are shown. */
  function showLegend() {
    const blocks = [];
    if (state.layerShown) {
      const { layer, range } = state.layerShown;
      blocks.push(scaleBlock(state.rules.layers[layer], range, state.rules.layer_colour_maps[layer]));
    }
    const points = state.model && state.points !== 'class' ? pointColours : null;
    if (points?.model === state.model) blocks.push(scaleBlock(`points: ${points.title}`, points.range, points.colourMap));
    $('scale-legend').replaceChildren(...blocks);
    $('scale-legend').hidden = !blocks.length;
  }

  return { configure, modelChanged, update, setLayer, colours, setPoints, showLegend };
}
