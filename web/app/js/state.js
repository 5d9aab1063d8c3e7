// The explorer's state and rules, as desktop_app/state.py is the desktop's: the cursor, the view, the A/B
// endpoints, grid requests, what a model switch resets and the decode queue's policy. No DOM, no
// onnxruntime: `node --test web/tests` runs it. The ranges, margin and colours come from the site's
// config.json ("explorer", written from runtime/explorer_rules.py): nothing here retypes them.
import { layerShape } from './explain.js';

/** How many cursor frames the benchmarks' history keeps. */
export const FRAME_HISTORY = 2000;

/** value as an integer within [low, high]; `fallback` when it is not a number (an emptied field). */
export function clampInt(value, [low, high], fallback) {
  const number = value === '' || value === null || value === undefined ? NaN : Number(value);
  return Math.min(high, Math.max(low, Math.round(Number.isFinite(number) ? number : fallback)));
}

/** Runs `run(item)` for the latest item only: an item pushed while one runs replaces any that waits, so
 * a fast mouse never queues stale frames. push() resolves once the queue has caught up (this item or a
 * later one has run); a failed run rejects that promise and drops what waited. */
export class LatestOnlyQueue {
  #run;
  #waiting = null;
  #draining = null;

  constructor(run) {
    this.#run = run;
  }

  get busy() {
    return this.#draining !== null;
  }

  push(item) {
    this.#waiting = item;
    this.#draining ??= this.#drain();
    return this.#draining;
  }

  /** Settles when nothing runs or waits. */
  idle() {
    return (this.#draining ?? Promise.resolve()).catch(() => {});
  }

  async #drain() {
    try {
      while (this.#waiting !== null) {
        const item = this.#waiting;
        this.#waiting = null;
        await this.#run(item);
      }
    } catch (error) {
      this.#waiting = null;
      throw error;
    } finally {
      this.#draining = null;
    }
  }
}

/** Work on a model (the cursor's frames, grids, strips, encodings): its sessions are released only once
 * all of it has settled. */
export class ModelWork {
  #running = new Set();

  constructor(decodeFrame) {
    this.frames = new LatestOnlyQueue(decodeFrame);
  }

  /** One piece of work; returns its promise. */
  track(promise) {
    this.#running.add(promise);
    const done = () => this.#running.delete(promise);
    promise.then(done, done);
    return promise;
  }

  /** Settles when no frame and no tracked work is running. */
  async idle() {
    while (this.frames.busy || this.#running.size) {
      await Promise.allSettled([this.frames.idle(), ...this.#running]);
    }
  }
}

/** Runs tasks one after another: a model switch starts once the one before it has finished. */
export function serial() {
  let last = Promise.resolve();
  return task => {
    const result = last.then(task);
    last = result.catch(() => {});
    return result;
  };
}

/** The screen <-> latent mapping of a map `size` ({width, height} in CSS pixels) for a view {cx, cy, scale}. */
export function toScreen(view, size, x, y) {
  return [size.width / 2 + (x - view.cx) * view.scale, size.height / 2 - (y - view.cy) * view.scale];
}

export function toLatent(view, size, px, py) {
  return [view.cx + (px - size.width / 2) / view.scale, view.cy - (py - size.height / 2) / view.scale];
}

/** ((x0, x1), (y0, y1)): the latent box the map shows. */
export function visibleExtent(view, size) {
  const [x0, y1] = toLatent(view, size, 0, 0), [x1, y0] = toLatent(view, size, size.width, size.height);
  return [[x0, x1], [y0, y1]];
}

/** The view zoomed by `factor` about the screen point (px, py), which keeps showing latent (x, y). */
export function zoomedView(view, size, [x, y], [px, py], factor) {
  const scale = view.scale * factor;
  return { scale, cx: x - (px - size.width / 2) / scale, cy: y + (py - size.height / 2) / scale };
}

/** The view a pan by (dx, dy) screen pixels from `view` shows. */
export function pannedView(view, dx, dy) {
  return { ...view, cx: view.cx - dx / view.scale, cy: view.cy + dy / view.scale };
}

/** The box of two percentile keys of latent_stats, in the map's two dims (0 and 1 unless given). */
export function percentileBox(stats, [lowKey, highKey], [dx, dy] = [0, 1]) {
  return [[stats[lowKey][dx], stats[highKey][dx]], [stats[lowKey][dy], stats[highKey][dy]]];
}

/** A slider's range for one of the dims the map does not show: the test set's min..max widened by the
 * rules' margin on each side, or the prior's range for a dim the test set never moves (as the desktop's). */
export function sliderRange(rules, stats, dim) {
  const { margin, prior_range: prior } = rules.dim_slider;
  const low = stats.min[dim], high = stats.max[dim];
  if (!(high - low > 1e-6)) return [-prior, prior];
  const pad = margin * (high - low);
  return [low - pad, high + pad];
}

/** Whether the map may show dims (x, y) of a model with `dim` latent dims: two different ones within it. */
export function checkDims(x, y, dim) {
  if (!Number.isInteger(x) || !Number.isInteger(y) || x === y || x < 0 || y < 0 || x >= dim || y >= dim) {
    throw new Error(`the map needs two different dims in [0, ${dim}), got ${x}, ${y}`);
  }
}

/** Colour models have no draw pad (its black ink on white is a grey picture): only C = 1 models draw. */
export const padAvailable = shape => shape[0] === 1;

/** (name, colour) rows of the legend: none for an unlabelled bundle or more classes than fit. */
export function legendRows(rules, classNames) {
  const names = classNames ?? [];
  if (names.length > rules.max_legend_rows) return [];
  return names.map((name, i) => [name, rules.class_colours[i % rules.class_colours.length]]);
}

/** The atlas points in groups of one colour: [{colour, label}] per class, or one group of every point
 * (label null) in the unlabelled colour when the bundle has no class names. */
export function pointGroups(rules, classNames) {
  if (!classNames?.length) return [{ colour: rules.unlabelled_colour, label: null }];
  return classNames.map((_, c) => ({ colour: rules.class_colours[c % rules.class_colours.length], label: c }));
}

/** The tile (row-major index) under a fraction (fx, fy) of an n x n grid, or -1 outside it. */
export function tileAt(fx, fy, n) {
  const col = Math.floor(fx * n), row = Math.floor(fy * n);
  return col < 0 || row < 0 || col >= n || row >= n ? -1 : row * n + col;
}

/** Frame i of playing a path of `frames` steps there and back: the step index, 0..frames. */
export function playStep(i, frames) {
  const k = i % (2 * frames);
  return k < frames ? k : 2 * frames - k;
}

// ---- issue 47: what the page asks runtime/explain.py's port (explain.js) for, and its view state ----

/** The page's own query parameters, which are not part of the view state (view_state.js reads the rest). */
export const PAGE_PARAMS = ['provider', 'threads', 'seed', 'bundle'];

/** The cells a layer is computed on: the visible box at the layer's coarse resolution (explain.js layerShape,
 * runtime/explorer_rules.py's layer_shape), and the key its cache keeps it under: the view, the map's size, its dims and the
 * values of the other dims (a 2-D model's layer does not change with the cursor). null for no layer. */
export function layerRequest(rules, layer, view, size, dims, point) {
  if (layer === 'none') return null;
  if (!(layer in rules.layer_cell_pixels)) throw new Error(`a layer is one of ${Object.keys(rules.layers).join(', ')}, got ${layer}`);
  const [cols, rows] = layerShape(layer, size.width, size.height, rules);
  const [xRange, yRange] = visibleExtent(view, size);
  const others = Array.from(point, (v, d) => (dims.includes(d) ? null : v)).filter(v => v !== null);
  const key = JSON.stringify([layer, view.cx, view.cy, view.scale, size.width, size.height, dims, others]);
  return { layer, key, xRange, yRange, cols, rows };
}

/** Layers by their cache key; the oldest goes once `capacity` are kept. */
export class LayerCache {
  #entries = new Map();

  constructor(capacity) {
    this.capacity = capacity;
  }

  get(key) {
    return this.#entries.get(key) ?? null;
  }

  set(key, value) {
    this.#entries.delete(key);
    this.#entries.set(key, value);
    while (this.#entries.size > this.capacity) this.#entries.delete(this.#entries.keys().next().value);
  }

  clear() {
    this.#entries.clear();
  }

  get size() {
    return this.#entries.size;
  }
}

/** "class" | "error" | "factor:NAME" -> {kind, factor (index), name}; or an Error naming the choices. */
export function parsePoints(points, rules, factorNames = []) {
  if (points === 'class' || points === 'error') return { kind: points };
  if (typeof points === 'string' && points.startsWith(rules.factor_prefix)) {
    const name = points.slice(rules.factor_prefix.length);
    const factor = factorNames.indexOf(name);
    if (factor >= 0) return { kind: 'factor', factor, name };
  }
  const choices = [...rules.point_colourings, ...factorNames.map(n => rules.factor_prefix + n)];
  throw new Error(`points are coloured by ${choices.join(', ')}; got ${points}`);
}

/** Why the explorer cannot show something that needs a bundle's atlas_extra.npz, or null when it can. */
export function extraProblem(extra, what) {
  if (extra?.arrays) return null;
  return `${what}: ${extra?.problem ?? 'this bundle has no atlas_extra.npz'}`;
}

/** Why `other` cannot be compared with `model` (a one-line message), or null when it can. */
export function compareProblem(model, other, label) {
  if (other.dim !== model.dim) {
    return `${label}: latent size ${other.dim}, but the model shown has ${model.dim}; two models are compared under one cursor only at the same latent size`;
  }
  return null;
}

/** [label, first model's value, second's] of the rules' headline metrics either bundle.json records. */
export function headlineRows(rules, first, second) {
  const shown = (metrics, key, unit, decimals) => (typeof metrics?.[key] === 'number' ? `${metrics[key].toFixed(decimals)} ${unit}` : '–');
  return rules.headline_metrics
    .filter(([key]) => typeof first?.[key] === 'number' || typeof second?.[key] === 'number')
    .map(([key, label, unit, decimals]) => [label, shown(first, key, unit, decimals), shown(second, key, unit, decimals)]);
}

/** The view that shows latent box {x: [x0, x1], y: [y0, y1]} whole in a map of `size`. */
export function viewOfRanges({ x: [x0, x1], y: [y0, y1] }, size) {
  return { cx: (x0 + x1) / 2, cy: (y0 + y1) / 2, scale: Math.min(size.width / (x1 - x0), size.height / (y1 - y0)) };
}

/** `run` at most once per `ms`: a call within the wait is run at its end, with the latest arguments. */
export function throttle(run, ms, { now = () => performance.now(), later = setTimeout } = {}) {
  let last = -Infinity, pending = null;
  return (...args) => {
    const wait = last + ms - now();
    if (wait <= 0 && pending === null) {
      last = now();
      run(...args);
      return;
    }
    if (pending !== null) { pending.args = args; return; }
    pending = { args };
    later(() => {
      const { args: latest } = pending;
      pending = null;
      last = now();
      run(...latest);
    }, Math.max(0, wait));
  };
}

const list = values => (values ? Array.from(values, Number) : null);

export class ExplorerState {
  constructor() {
    this.config = null;                   // the site's config.json
    this.rules = null;                    // its "explorer": runtime/explorer_rules.py
    this.model = null;                    // the Model in use
    this.modelLabel = '';
    this.provider = null;                 // the execution provider running it
    this.numThreads = 1;
    this.layout = null;                   // the preprocessing layout of its dataset
    this.view = { cx: 0, cy: 0, scale: 100 };
    this.cursor = null;                   // Float32Array [dim]
    this.base = null;                     // the dims other than the map's two, held at the prior mean
    this.dims = [0, 1];                   // the two latent dims the map shows (x, y)
    this.interpMethod = null;             // the interpolation method chosen
    this.lastImage = null;                // the last decoded preview, Float32Array(C * H * W)
    this.lastZ = null;                    // the latent point of that preview
    this.lastDecodeMs = null;
    this.frameTimes = [];                 // each cursor frame, move to painted preview, ms
    this.firstImageMs = null;             // when the first decoded image was painted, ms after navigation start
    this.grid = null;                     // {n, extent, points, tile, tiles, ms, images}
    this.ends = { a: null, b: null };
    this.playing = false;
    this.interpolationFrames = 0;
    this.encoded = null;                  // {input, mean, logvar, reconstruction}
    this.encoding = false;                // the drawing pad's encode is running
    this.loads = 0;                       // finished model loads, successful or not
    this.timings = {};                    // when the last load's steps finished, ms after navigation start
    this.work = null;                     // the ModelWork of the page (set by whoever decodes)
    this.modelName = null;                // the view state's `model`: a bundled name or a bundle location
    this.layer = 'none';                  // the map's background layer
    this.points = 'class';                // what colours the atlas points
    this.uncertainty = false;             // posterior ellipses and samples of the encoded image
    this.neighbours = 0;                  // k real neighbours under the cursor (the rules' default)
    this.samples = null;                  // the last posterior samples' decodes
    this.compare = null;                  // {model, name, label} of the second model, or null
    this.compareOverlay = true;           // the second model's atlas drawn on the map
    this.lastCompare = null;              // {image, difference} of the cursor under the second model
    this.nearest = null;                  // {indices, distances} of the cursor's real neighbours
  }

  /** Takes the site's config.json, read at start-up. */
  configure(config) {
    this.config = config;
    this.rules = config.explorer;
    this.interpMethod = this.rules.interpolation_methods[0];
    this.neighbours = this.rules.default_neighbours;
  }

  /** The view state (view_state.js's JSON form) of what the page shows in a map of `size`. */
  viewState(size, grid) {
    const [x, y] = visibleExtent(this.view, size);
    return {
      model: this.modelName, compare: this.compare?.name ?? null, dims: [...this.dims], cursor: list(this.cursor),
      view: { x, y }, a: list(this.ends.a), b: list(this.ends.b), layer: this.layer, points: this.points,
      grid, uncertainty: this.uncertainty, neighbours: this.neighbours,
    };
  }

  setLayer(layer) {
    if (!(layer in this.rules.layers)) throw new Error(`a layer is one of ${Object.keys(this.rules.layers).join(', ')}, got ${layer}`);
    this.layer = layer;
  }

  /** Colours the points by `points` (checked against the model's factors); returns the parsed choice. */
  setPoints(points) {
    const parsed = parsePoints(points, this.rules, this.model?.factorNames ?? []);
    this.points = points;
    return parsed;
  }

  setNeighbours(k) {
    this.neighbours = clampInt(k, this.rules.neighbour_counts, this.rules.default_neighbours);
  }

  /** A cursor frame is being decoded (tests and benchmarks wait on this). */
  get busy() {
    return Boolean(this.work?.frames.busy);
  }

  /** The preprocessing layout of a bundle's dataset; when the site knows no other, the default for the
   * model's channels (runtime/preprocessing.py default_layout: grey pictures as MNIST's, colour ones whole). */
  layoutFor(manifest) {
    const { layouts, default_layouts: defaults } = this.config.preprocessing;
    const channels = (manifest.image_shape ?? [1])[0];
    return layouts[manifest.dataset.layout ?? manifest.dataset.name] ?? layouts[channels === 1 ? defaults.grey : defaults.colour];
  }

  /** Puts a loaded model in use. Cursor, grid, endpoints, encoding and playing belong to the old model's
   * latent space and go. Returns where the cursor starts: the test set's mean, else the origin. */
  install(model, { provider, numThreads, label }) {
    this.model = model;
    this.provider = provider;
    this.numThreads = numThreads;
    this.modelLabel = label;
    this.layout = this.layoutFor(model.manifest);
    this.base = new Float32Array(model.dim);
    this.dims = [0, 1];
    this.cursor = null;
    this.grid = null;
    this.ends = { a: null, b: null };
    this.encoded = null;
    this.playing = false;
    this.samples = null;
    this.nearest = null;
    this.lastCompare = null;
    if (this.points !== 'class') {
      try { parsePoints(this.points, this.rules, model.factorNames ?? []); } catch { this.points = 'class'; }
    }
    return Float32Array.from(model.manifest.latent_stats.mean ?? this.base);
  }

  /** Takes the model off the page (its late encoder check failed on the first load). */
  unload() {
    this.model = this.provider = this.cursor = null;
  }

  /** The view that fits the VIEW_PERCENTILES box plus the home margin into a map of `size`. */
  homeView(size) {
    const [[x0, x1], [y0, y1]] = percentileBox(this.model.manifest.latent_stats, this.rules.view_percentiles, this.dims);
    const grow = 1 + 2 * this.rules.home_margin;
    const spanX = Math.max(x1 - x0, 1e-6) * grow, spanY = Math.max(y1 - y0, 1e-6) * grow;
    return { cx: (x0 + x1) / 2, cy: (y0 + y1) / 2, scale: Math.min(size.width / spanX, size.height / spanY) };
  }

  /** A full latent point: the cursor's (else the base's) dims with the map's two set to (x, y). */
  pointAt(x, y) {
    const point = Float32Array.from(this.cursor ?? this.base);
    point[this.dims[0]] = x; point[this.dims[1]] = y;
    return point;
  }

  /** The map's (x, y) of a full latent point. */
  shown(point) {
    return [point[this.dims[0]], point[this.dims[1]]];
  }

  /** The map shows dims (x, y) from now on; the other dims keep the cursor's values. The grid belongs to
   * the old pair and goes. */
  setDims(x, y) {
    checkDims(x, y, this.model.dim);
    this.dims = [x, y];
    this.grid = null;
  }

  /** The cursor with one dim set to `value` (a slider moved). */
  withDimValue(dim, value) {
    const point = Float32Array.from(this.cursor ?? this.base);
    point[dim] = value;
    return point;
  }

  /** The dims the map does not show, each with its slider range: [{dim, range}]. */
  sliderDims() {
    const stats = this.model.manifest.latent_stats;
    return Array.from({ length: this.model.dim }, (_, dim) => dim)
      .filter(dim => !this.dims.includes(dim))
      .map(dim => ({ dim, range: sliderRange(this.rules, stats, dim) }));
  }

  /** The cursor moves (before its image is decoded). */
  moveCursor(point) {
    this.cursor = Float32Array.from(point);
    return this.cursor;
  }

  /** A decoded cursor frame was painted: the preview, its point and the frame's timings. */
  recordFrame(z, image, decodeMs, frameMs, now) {
    this.lastImage = Float32Array.from(image);
    this.lastZ = Float32Array.from(z);
    this.lastDecodeMs = decodeMs;
    this.frameTimes.push(frameMs);
    if (this.frameTimes.length > FRAME_HISTORY) this.frameTimes.shift();
    this.firstImageMs ??= now;  // since navigation started: the page's load time
  }

  gridSize(value, fallback) {
    return clampInt(value, this.rules.grid_sizes, fallback);
  }

  interpolationSteps(value, fallback) {
    return clampInt(value, this.rules.interpolation_steps, fallback);
  }

  /** A grid of n x n over `source` ("view": `visible`, the map's box; "percentiles": the bundle's box),
   * the other dims at the cursor's values: {n, extent, base}. */
  gridRequest(n, source, visible) {
    if (!(source in this.rules.grid_sources)) {
      throw new Error(`grid source must be one of ${Object.keys(this.rules.grid_sources).join(', ')}, got ${source}`);
    }
    const extent = source === 'percentiles'
      ? percentileBox(this.model.manifest.latent_stats, this.rules.grid_percentiles, this.dims) : visible;
    return { n, extent, dims: [...this.dims], base: Float32Array.from(this.cursor ?? this.base) };
  }

  /** The latent point of a grid's tile. */
  tilePoint(index) {
    const dim = this.model.dim;
    return this.grid.points.slice(index * dim, (index + 1) * dim);
  }

  setInterpolationMethod(method) {
    if (!this.rules.interpolation_methods.includes(method)) {
      throw new Error(`interpolation method must be one of ${this.rules.interpolation_methods.join(', ')}, got ${method}`);
    }
    this.interpMethod = method;
  }

  setEnd(which, point) {
    if (!(which in this.ends)) throw new Error(`an endpoint is "a" or "b", got ${which}`);
    this.ends[which] = Float32Array.from(point);
  }

  get hasBothEnds() {
    return Boolean(this.ends.a && this.ends.b);
  }

  /** Before playing without both ends: A is the cursor, B its mirror image through the origin. */
  fillEnds() {
    if (!this.ends.a) this.setEnd('a', this.cursor);
    if (!this.ends.b) this.setEnd('b', this.cursor.map(v => -v));
  }
}
