// The browser explorer's rules (web/app/js/state.js), without a browser: `node --test web/tests`.
// The rules below are made up on purpose (not runtime/explorer_rules.py's values): the state must take
// whatever config.json says rather than numbers of its own.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  ExplorerState, FRAME_HISTORY, LatestOnlyQueue, LayerCache, ModelWork, checkDims, clampInt, compareProblem, extraProblem,
  headlineRows, layerRequest, legendRows, padAvailable, pannedView, parsePoints, playStep, pointGroups, serial, sliderRange,
  throttle, tileAt, toLatent, toScreen, viewOfRanges, visibleExtent, zoomedView,
} from '../app/js/state.js';

const RULES = {
  grid_sizes: [3, 7],
  grid_sources: { view: 'visible region', percentiles: 'percentile extent' },
  grid_percentiles: ['p05', 'p95'],
  interpolation_methods: ['linear', 'slerp'],
  interpolation_steps: [4, 9],
  view_percentiles: ['p01', 'p99'],
  home_margin: 0.5,
  zoom_step: 2,
  max_legend_rows: 3,
  class_colours: ['#111111', '#222222'],
  unlabelled_colour: '#999999',
  dim_slider: { margin: 0.25, prior_range: 5 },
  default_neighbours: 5,
  neighbour_counts: [2, 6],
  layers: { none: 'nothing', prior: 'the prior', entropy: 'blur' },
  layer_cell_pixels: { prior: 10, entropy: 25 },
  max_layer_cells: 30,
  point_colourings: ['class', 'error'],
  factor_prefix: 'f=',
  headline_metrics: [['loss', 'the loss', 'nats', 1], ['bpd', 'bits', 'b/d', 3]],
};
const LAYOUTS = { mnist: { box: 20 }, 'fashion-mnist': { box: 28 }, resize: { box: 28 } };
const CONFIG = { explorer: RULES, preprocessing: { layouts: LAYOUTS, default_layouts: { grey: 'mnist', colour: 'resize' } } };
const STATS = {
  mean: [0.5, -0.5, 0.25],
  min: [-3, -2, 0.25], max: [3, 4, 0.25],
  p01: [-2, -1, 0], p99: [2, 3, 0],
  p05: [-1, -0.5, 0], p95: [1, 2, 0],
};

function fakeModel({ classNames = ['zero', 'one'], stats = STATS, name = 'mnist' } = {}) {
  return { dim: 3, manifest: { name, dataset: { name, class_names: classNames }, latent_stats: stats } };
}

function configured() {
  const state = new ExplorerState();
  state.configure(CONFIG);
  return state;
}

/** A promise and the function that resolves it. */
function deferred() {
  let resolve, reject;
  const promise = new Promise((yes, no) => { resolve = yes; reject = no; });
  return { promise, resolve, reject };
}

const tick = () => new Promise(resolve => setTimeout(resolve, 0));

test('clampInt rounds into the range and takes the fallback for an emptied field', () => {
  assert.equal(clampInt('5.4', [3, 7], 4), 5);
  assert.equal(clampInt(1, [3, 7], 4), 3);
  assert.equal(clampInt(99, [3, 7], 4), 7);
  assert.equal(clampInt('', [3, 7], 4), 4);
  assert.equal(clampInt('abc', [3, 7], '6'), 6);
});

test('grid sizes and interpolation steps follow the configured ranges', () => {
  const state = configured();
  assert.equal(state.gridSize('2', '10'), 3);
  assert.equal(state.gridSize('', '10'), 7);
  assert.equal(state.interpolationSteps('20', '10'), 9);
  assert.equal(state.interpolationSteps('5', '10'), 5);
});

test('the latest-only queue runs the first item and then only the latest that waited', async () => {
  const runs = [], gates = [];
  const queue = new LatestOnlyQueue(async item => { runs.push(item); const gate = deferred(); gates.push(gate); await gate.promise; });
  assert.equal(queue.busy, false);
  const first = queue.push(1);
  assert.equal(queue.busy, true);
  const second = queue.push(2), third = queue.push(3);
  assert.equal(first, third);  // one drain: every push resolves once the queue has caught up
  assert.equal(second, third);
  gates[0].resolve();
  await tick();
  gates[1].resolve();
  await third;
  assert.deepEqual(runs, [1, 3]);
  assert.equal(queue.busy, false);
  const fourth = queue.push(4);
  assert.notEqual(fourth, third);  // a new drain once the last one ended
  gates[2].resolve();
  await fourth;
  assert.deepEqual(runs, [1, 3, 4]);
});

test('a failed run rejects its drain, drops what waited and leaves the queue usable', async () => {
  const runs = [];
  const gate = deferred();
  const queue = new LatestOnlyQueue(async item => { runs.push(item); if (item === 'bad') { await gate.promise; throw new Error('decode failed'); } });
  const drain = queue.push('bad');
  queue.push('stale');
  gate.resolve();
  await assert.rejects(drain, /decode failed/);
  assert.equal(queue.busy, false);
  await queue.idle();
  await queue.push('good');
  assert.deepEqual(runs, ['bad', 'good']);
});

test('model work is idle only once the frames and every tracked job have settled', async () => {
  const frame = deferred(), job = deferred(), failing = deferred();
  const work = new ModelWork(() => frame.promise);
  work.frames.push('z');
  work.track(job.promise);
  work.track(failing.promise).catch(() => {});
  let idle = false;
  const waited = work.idle().then(() => { idle = true; });
  frame.resolve();
  await tick();
  assert.equal(idle, false);
  failing.reject(new Error('grid failed'));
  await tick();
  assert.equal(idle, false);
  job.resolve();
  await waited;
  assert.equal(idle, true);
});

test('serial runs a switch only after the one before has finished, failed or not', async () => {
  const run = serial();
  const order = [];
  const gate = deferred();
  const first = run(async () => { await gate.promise; order.push('first'); throw new Error('broken bundle'); });
  const second = run(async () => { order.push('second'); return true; });
  await tick();
  assert.deepEqual(order, []);
  gate.resolve();
  await assert.rejects(first, /broken bundle/);
  assert.equal(await second, true);
  assert.deepEqual(order, ['first', 'second']);
});

test('screen and latent coordinates are each other\'s inverse, y pointing up', () => {
  const view = { cx: 1, cy: -2, scale: 50 }, size = { width: 400, height: 300 };
  assert.deepEqual(toScreen(view, size, 1, -2), [200, 150]);
  assert.deepEqual(toScreen(view, size, 2, -1), [250, 100]);
  assert.deepEqual(toLatent(view, size, 250, 100), [2, -1]);
  assert.deepEqual(visibleExtent(view, size), [[-3, 5], [-5, 1]]);
});

test('zooming keeps the latent point under the mouse; panning moves the view with the pointer', () => {
  const view = { cx: 0, cy: 0, scale: 10 }, size = { width: 200, height: 100 };
  const screen = [150, 20], latent = toLatent(view, size, ...screen);
  const zoomed = zoomedView(view, size, latent, screen, 2);
  assert.equal(zoomed.scale, 20);
  const back = toScreen(zoomed, size, ...latent);
  assert.ok(Math.abs(back[0] - screen[0]) < 1e-9 && Math.abs(back[1] - screen[1]) < 1e-9);
  assert.deepEqual(pannedView(view, 20, 10), { cx: -2, cy: 1, scale: 10 });
});

test('the home view fits the view percentiles box grown by the margin', () => {
  const state = configured();
  state.install(fakeModel(), { provider: 'wasm', numThreads: 1, label: 'mnist' });
  // p01..p99: x -2..2, y -1..3; the margin 0.5 on each side doubles both spans: 8 x 8.
  const view = state.homeView({ width: 400, height: 200 });
  assert.deepEqual(view, { cx: 0, cy: 1, scale: 25 });
});

test('a model switch resets what belongs to the old latent space and starts at the mean', () => {
  const state = configured();
  state.install(fakeModel(), { provider: 'wasm', numThreads: 2, label: 'first' });
  state.moveCursor([1, 2, 3]);
  state.setEnd('a', [1, 1, 1]);
  state.setEnd('b', [2, 2, 2]);
  state.grid = { n: 3 };
  state.encoded = { mean: [0, 0, 0] };
  state.playing = true;
  const start = state.install(fakeModel({ name: 'fashion-mnist', stats: { ...STATS, mean: undefined } }),
    { provider: 'webgpu', numThreads: 1, label: 'second' });
  assert.deepEqual(Array.from(start), [0, 0, 0]);  // no mean: the origin
  assert.equal(state.cursor, null);
  assert.equal(state.grid, null);
  assert.deepEqual(state.ends, { a: null, b: null });
  assert.equal(state.encoded, null);
  assert.equal(state.playing, false);
  assert.equal(state.layout, LAYOUTS['fashion-mnist']);
  assert.equal(state.provider, 'webgpu');
  assert.equal(state.modelLabel, 'second');
  const mean = state.install(fakeModel({ name: 'own-pictures' }), { provider: 'wasm', numThreads: 1, label: 'x' });
  assert.deepEqual(Array.from(mean), STATS.mean);
  assert.equal(state.layout, LAYOUTS.mnist);  // a dataset the site knows no layout for: a grey model's default
  const colour = fakeModel({ name: 'sprites' });
  colour.manifest.image_shape = [3, 64, 64];
  state.install(colour, { provider: 'wasm', numThreads: 1, label: 'x' });
  assert.equal(state.layout, LAYOUTS.resize);  // a colour model's default (made up: runtime's is "pad")
});

test('a point on the map keeps the cursor\'s other dims', () => {
  const state = configured();
  state.install(fakeModel(), { provider: 'wasm', numThreads: 1, label: 'mnist' });
  assert.deepEqual(Array.from(state.pointAt(1, 2)), [1, 2, 0]);
  state.moveCursor([0, 0, 0.75]);
  assert.deepEqual(Array.from(state.pointAt(-1, 3)), [-1, 3, 0.75]);
});

test('grid requests span the visible box or the grid percentiles, at the cursor\'s other dims', () => {
  const state = configured();
  state.install(fakeModel(), { provider: 'wasm', numThreads: 1, label: 'mnist' });
  state.moveCursor([0, 0, 0.5]);
  const visible = [[-1, 1], [-2, 2]];
  assert.deepEqual(state.gridRequest(5, 'view', visible).extent, visible);
  const request = state.gridRequest(5, 'percentiles', visible);
  assert.deepEqual(request.extent, [[-1, 1], [-0.5, 2]]);
  assert.deepEqual(Array.from(request.base), [0, 0, 0.5]);
  assert.throws(() => state.gridRequest(5, 'everywhere', visible), /grid source must be one of view, percentiles/);
});

test('a click on the grid finds its tile, nothing outside it', () => {
  assert.equal(tileAt(0, 0, 4), 0);
  assert.equal(tileAt(0.99, 0.3, 4), 7);
  assert.equal(tileAt(1, 0.5, 4), -1);
  assert.equal(tileAt(-0.01, 0.5, 4), -1);
  const state = configured();
  state.install(fakeModel(), { provider: 'wasm', numThreads: 1, label: 'mnist' });
  state.grid = { n: 2, points: Float32Array.from([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]) };
  assert.deepEqual(Array.from(state.tilePoint(2)), [2, 2, 2]);
});

test('endpoints: A and B are set by name; playing without them uses the cursor and its mirror', () => {
  const state = configured();
  state.install(fakeModel(), { provider: 'wasm', numThreads: 1, label: 'mnist' });
  assert.equal(state.hasBothEnds, false);
  assert.throws(() => state.setEnd('c', [0, 0, 0]), /"a" or "b"/);
  state.moveCursor([1, -2, 0.5]);
  state.fillEnds();
  assert.deepEqual(Array.from(state.ends.a), [1, -2, 0.5]);
  assert.deepEqual(Array.from(state.ends.b), [-1, 2, -0.5]);
  assert.equal(state.hasBothEnds, true);
  state.setEnd('b', [3, 3, 3]);
  state.fillEnds();  // both set: neither changes
  assert.deepEqual(Array.from(state.ends.b), [3, 3, 3]);
});

test('playing goes there and back', () => {
  assert.deepEqual(Array.from({ length: 9 }, (_, i) => playStep(i, 4)), [0, 1, 2, 3, 4, 3, 2, 1, 0]);
});

test('interpolation methods are the configured ones', () => {
  const state = configured();
  assert.equal(state.interpMethod, 'linear');
  state.setInterpolationMethod('slerp');
  assert.equal(state.interpMethod, 'slerp');
  assert.throws(() => state.setInterpolationMethod('cubic'), /one of linear, slerp/);
});

test('legend and point colours: per class, cycling the palette; an unlabelled bundle is one grey cloud', () => {
  assert.deepEqual(legendRows(RULES, ['a', 'b', 'c']), [['a', '#111111'], ['b', '#222222'], ['c', '#111111']]);
  assert.deepEqual(legendRows(RULES, ['a', 'b', 'c', 'd']), []);  // more than max_legend_rows
  assert.deepEqual(legendRows(RULES, []), []);
  assert.deepEqual(legendRows(RULES, undefined), []);
  assert.deepEqual(pointGroups(RULES, ['a', 'b', 'c']).map(g => [g.label, g.colour]),
    [[0, '#111111'], [1, '#222222'], [2, '#111111']]);
  for (const names of [[], undefined]) assert.deepEqual(pointGroups(RULES, names), [{ colour: '#999999', label: null }]);
});

test('frames keep the preview\'s point, a bounded history and the first image\'s time', () => {
  const state = configured();
  assert.equal(state.lastZ, null);
  for (let i = 0; i < FRAME_HISTORY + 5; i++) state.recordFrame([i, 0], [0.5], 1, i, 100 + i);
  assert.deepEqual(Array.from(state.lastZ), [FRAME_HISTORY + 4, 0]);
  assert.equal(state.frameTimes.length, FRAME_HISTORY);
  assert.equal(state.frameTimes[0], 5);
  assert.equal(state.firstImageMs, 100);
});

test('busy says whether a cursor frame is being decoded', async () => {
  const state = configured();
  assert.equal(state.busy, false);
  const gate = deferred();
  state.work = new ModelWork(() => gate.promise);
  const frame = state.work.frames.push('z');
  assert.equal(state.busy, true);
  gate.resolve();
  await frame;
  assert.equal(state.busy, false);
});

test('the map shows any two different dims; points, the home view and grids follow them', () => {
  const state = configured();
  state.install(fakeModel(), { provider: 'wasm', numThreads: 1, label: 'mnist' });
  state.moveCursor([0.5, 0.25, 0.75]);
  state.grid = { n: 2 };
  state.setDims(2, 0);
  assert.deepEqual(state.dims, [2, 0]);
  assert.equal(state.grid, null);  // the grid belonged to the old pair
  assert.deepEqual(Array.from(state.pointAt(7, 8)), [8, 0.25, 7]);
  assert.deepEqual(state.shown(Float32Array.of(1, 2, 3)), [3, 1]);
  assert.deepEqual(state.gridRequest(3, 'percentiles', null).extent, [[0, 0], [-1, 1]]);
  assert.deepEqual(state.gridRequest(3, 'percentiles', null).dims, [2, 0]);
  const view = state.homeView({ width: 100, height: 100 });
  assert.deepEqual([view.cx, view.cy], [0, 0]);  // the p01..p99 box of dims 2 (0..0) and 0 (-2..2)
  for (const [x, y] of [[1, 1], [0, 3], [-1, 0], [0.5, 1]]) assert.throws(() => state.setDims(x, y), /two different dims in \[0, 3\)/);
  assert.throws(() => checkDims(0, 2, 2), /got 0, 2/);
  // a model switch shows dims 0 and 1 again
  state.install(fakeModel(), { provider: 'wasm', numThreads: 1, label: 'mnist' });
  assert.deepEqual(state.dims, [0, 1]);
});

test('sliders: one per hidden dim, over the test set\'s range widened by the rules\' margin', () => {
  const state = configured();
  state.install(fakeModel(), { provider: 'wasm', numThreads: 1, label: 'mnist' });
  assert.deepEqual(state.sliderDims(), [{ dim: 2, range: [-5, 5] }]);  // dim 2 never moves: the prior's range
  state.setDims(1, 2);
  assert.deepEqual(state.sliderDims(), [{ dim: 0, range: [-4.5, 4.5] }]);
  assert.deepEqual(sliderRange(RULES, STATS, 1), [-3.5, 5.5]);
  state.moveCursor([1, 2, 3]);
  assert.deepEqual(Array.from(state.withDimValue(0, -4)), [-4, 2, 3]);
  assert.deepEqual(Array.from(state.cursor), [1, 2, 3]);  // only the returned point changes
});

test('the draw pad is offered on grey models only', () => {
  assert.equal(padAvailable([1, 28, 28]), true);
  assert.equal(padAvailable([1, 64, 48]), true);
  assert.equal(padAvailable([3, 64, 64]), false);
});

test('a layer is computed on coarse cells over the visible box, cached by view, dims and the other dims', () => {
  const view = { cx: 1, cy: 2, scale: 10 }, size = { width: 95, height: 40 };
  assert.equal(layerRequest(RULES, 'none', view, size, [0, 1], [0, 0, 0]), null);
  const request = layerRequest(RULES, 'prior', view, size, [0, 1], [5, 6, 7]);
  assert.deepEqual([request.cols, request.rows], [8, 3]);  // 10 pixels a cell (9 x 4), scaled down to 30 cells
  assert.deepEqual([request.xRange, request.yRange], visibleExtent(view, size));
  assert.equal(layerRequest(RULES, 'entropy', view, size, [0, 1], [5, 6, 7]).cols, 3);
  // The cursor's shown dims do not change the key; the others do, and so do the view and the dims.
  const key = request.key;
  assert.equal(layerRequest(RULES, 'prior', view, size, [0, 1], [-5, 9, 7]).key, key);
  assert.notEqual(layerRequest(RULES, 'prior', view, size, [0, 1], [5, 6, 8]).key, key);
  assert.notEqual(layerRequest(RULES, 'prior', { ...view, scale: 11 }, size, [0, 1], [5, 6, 7]).key, key);
  assert.notEqual(layerRequest(RULES, 'prior', view, size, [0, 2], [5, 6, 7]).key, key);
  assert.throws(() => layerRequest(RULES, 'volcano', view, size, [0, 1], [0, 0]), /one of none, prior, entropy, got volcano/);
  const cache = new LayerCache(2);
  cache.set('a', 1); cache.set('b', 2); cache.get('a'); cache.set('c', 3);
  assert.deepEqual([cache.get('a'), cache.get('b'), cache.get('c'), cache.size], [null, 2, 3, 2]);  // the oldest set goes
  cache.set('a', 4); cache.set('d', 5);
  assert.deepEqual([cache.get('a'), cache.get('c')], [4, null]);
});

test('points are coloured by class, error or a factor the bundle names', () => {
  assert.deepEqual(parsePoints('class', RULES), { kind: 'class' });
  assert.deepEqual(parsePoints('error', RULES), { kind: 'error' });
  assert.deepEqual(parsePoints('f=scale', RULES, ['shape', 'scale']), { kind: 'factor', factor: 1, name: 'scale' });
  assert.throws(() => parsePoints('f=colour', RULES, ['shape']), /coloured by class, error, f=shape; got f=colour/);
  assert.throws(() => parsePoints('labels', RULES), /got labels/);
  const state = configured();
  state.install({ ...fakeModel(), factorNames: ['size'] }, { provider: 'wasm', numThreads: 1, label: 'x' });
  state.setPoints('f=size');
  assert.equal(state.points, 'f=size');
  assert.throws(() => state.setPoints('f=hue'), /got f=hue/);
  assert.equal(state.points, 'f=size');  // a refused choice keeps the one before
  // A model without that factor goes back to the classes.
  state.install(fakeModel(), { provider: 'wasm', numThreads: 1, label: 'y' });
  assert.equal(state.points, 'class');
});

test('what needs atlas_extra.npz says why it is empty', () => {
  assert.equal(extraProblem({ arrays: {} }, 'thumbnails'), null);
  assert.equal(extraProblem({ problem: 'x.npz: broken' }, 'thumbnails'), 'thumbnails: x.npz: broken');
  assert.equal(extraProblem(null, 'the layer'), 'the layer: this bundle has no atlas_extra.npz');
});

test('a second model of another latent size is refused in one line; metrics of either are listed', () => {
  assert.equal(compareProblem({ dim: 2 }, { dim: 2 }, 'b'), null);
  assert.equal(compareProblem({ dim: 2 }, { dim: 4 }, 'other/'),
    'other/: latent size 4, but the model shown has 2; two models are compared under one cursor only at the same latent size');
  assert.deepEqual(headlineRows(RULES, { loss: 100.04, bpd: 'n/a' }, { loss: 98 }), [['the loss', '100.0 nats', '98.0 nats']]);
  assert.deepEqual(headlineRows(RULES, {}, { bpd: 1.23456 }), [['bits', '–', '1.235 b/d']]);
  assert.deepEqual(headlineRows(RULES, undefined, undefined), []);
});

test('a view state\'s ranges become a view that shows them whole; the page\'s view state', () => {
  const size = { width: 200, height: 100 };
  const view = viewOfRanges({ x: [-1, 3], y: [0, 1] }, size);
  assert.deepEqual(view, { cx: 1, cy: 0.5, scale: 50 });
  const [[x0, x1], [y0, y1]] = visibleExtent(view, size);
  assert.ok(x0 <= -1 && x1 >= 3 && y0 <= 0 && y1 >= 1);
  const state = configured();
  assert.equal(state.neighbours, RULES.default_neighbours);
  state.install(fakeModel(), { provider: 'wasm', numThreads: 1, label: 'mnist' });
  state.modelName = 'mnist';
  state.moveCursor([1, 2, 3]);
  state.setEnd('a', [0, 0, 0]);
  state.setLayer('prior');
  state.setNeighbours(99);
  state.view = view;
  const written = state.viewState(size, { n: 4, source: 'view' });
  assert.deepEqual(written, {
    model: 'mnist', compare: null, dims: [0, 1], cursor: [1, 2, 3], view: { x: [-1, 3], y: [-0.5, 1.5] }, a: [0, 0, 0], b: null,
    layer: 'prior', points: 'class', grid: { n: 4, source: 'view' }, uncertainty: false, neighbours: 6,
  });
  assert.throws(() => state.setLayer('aggregate'), /one of none, prior, entropy, got aggregate/);
});

test('throttle runs at once, then at most once a period with the latest arguments', () => {
  let time = 0;
  const timers = [], runs = [];
  const throttled = throttle(value => runs.push([time, value]), 100, { now: () => time, later: (f, ms) => timers.push([time + ms, f]) });
  throttled(1);
  throttled(2);
  throttled(3);
  assert.deepEqual(runs, [[0, 1]]);
  assert.equal(timers.length, 1);
  time = timers[0][0];
  timers.shift()[1]();
  assert.deepEqual(runs, [[0, 1], [100, 3]]);
  time = 150;
  throttled(4);  // within the period after the last run: waits for its end
  assert.deepEqual(timers.map(t => t[0]), [200]);
  time = 200;
  timers.shift()[1]();
  time = 500;
  throttled(5);  // long after: at once
  assert.deepEqual(runs.map(r => r[1]), [1, 3, 4, 5]);
});
