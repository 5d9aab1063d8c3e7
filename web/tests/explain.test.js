// web/app/js/explain.js without a browser (`node --test web/tests`): against brute force and closed forms.
// The constants and rules are made up on purpose (not config.json's): the port must take what it is given.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  LayerGrid, NeighbourIndex, aggregateLogDensity, decoderEntropy, differenceImage, errorRange, gridShape, layerRange,
  layerShape, legendTicks, mapColours, percentile, posteriorEllipses, posteriorSamples, priorLogDensity,
} from '../app/js/explain.js';

const CONSTANTS = { points_per_cell: 3, max_index_side: 50, bound_slack: 1e-9, underflow: 1e-280, max_layer_cells: 5000 };
const RULES = {
  colour_maps: { up: ['#000000', '#ff8000', '#ffffff'], both: ['#0000ff', '#ffffff', '#ff0000'] },
  log_density_span: 5, error_percentiles: [10, 90], layer_cell_pixels: { hills: 5 }, max_layer_cells: 100,
};
const LOG_2PI = Math.log(2 * Math.PI);

function random(seed) {
  let s = seed;
  return () => { s = (s * 16807) % 2147483647; return s / 2147483647; };
}

function close(actual, expected, rtol = 1e-9) {
  assert.equal(actual.length, expected.length);
  actual.forEach((v, k) => assert.ok(Math.abs(v - expected[k]) <= rtol * Math.abs(expected[k]) + 1e-12, `${k}: ${v} vs ${expected[k]}`));
}

test('ellipses are sigma multiples of the posterior std on the shown dims', () => {
  const e = posteriorEllipses([0.5, -1, 2], [Math.log(0.04), 0, Math.log(9)], [2, 0], [1, 2]);
  close(e[0], [2, 0.5, 3, 0.2]);
  close(e[1], [2, 0.5, 6, 0.4]);
  assert.throws(() => posteriorEllipses([0, 0], [0, 0], [1, 1]), /dims must be two different latent dims/);
  assert.throws(() => posteriorEllipses([0, NaN], [0, 0]), /mean must be a vector of finite numbers/);
});

test('posterior samples are seeded and have the posterior moments', () => {
  const { data, shape } = posteriorSamples([1, -2], [Math.log(0.25), Math.log(4)], 20000, 3);
  assert.deepEqual(shape, [20000, 2]);
  assert.deepEqual(data, posteriorSamples([1, -2], [Math.log(0.25), Math.log(4)], 20000, 3).data);
  for (const [k, mean, std] of [[0, 1, 0.5], [1, -2, 2]]) {
    let sum = 0, squares = 0;
    for (let r = 0; r < 20000; r++) { sum += data[2 * r + k]; squares += data[2 * r + k] ** 2; }
    const m = sum / 20000;
    assert.ok(Math.abs(m - mean) < 0.05 * std * 2);
    assert.ok(Math.abs(Math.sqrt(squares / 20000 - m * m) / std - 1) < 0.03);
  }
});

test('the neighbour index answers exactly as brute force, ties to the lower index', () => {
  const rnd = random(7), m = 2000, d = 4, data = new Float32Array(m * d);
  for (let k = 0; k < data.length; k++) data[k] = (rnd() - 0.5) * (k % d === 1 ? 8 : 2);
  const index = new NeighbourIndex({ data, shape: [m, d] }, [1, 3], CONSTANTS);
  assert.ok(index.cols * index.rows > 100);
  for (let q = 0; q < 60; q++) {
    const z = Array.from({ length: d }, () => (rnd() - 0.5) * (q < 50 ? 6 : 80));
    const brute = Array.from({ length: m }, (_, p) => [data.slice(p * d, p * d + d).reduce((s, v, a) => s + (v - z[a]) ** 2, 0), p])
      .sort((x, y) => x[0] - y[0] || x[1] - y[1]).slice(0, 8);
    const [indices, distances] = index.query(z, 8);
    assert.deepEqual(Array.from(indices), brute.map(b => b[1]));
    close(distances, brute.map(b => Math.sqrt(b[0])));
  }
  const square = new NeighbourIndex({ data: Float32Array.of(1, 0, 0, 1, -1, 0, 0, -1), shape: [4, 2] }, [0, 1], CONSTANTS);
  assert.deepEqual(Array.from(square.query([0, 0], 3)[0]), [0, 1, 2]);
  assert.deepEqual(Array.from(square.query([0, 0], 50)[0]), [0, 1, 2, 3]);
  assert.deepEqual(gridShape(0, 0, 10, CONSTANTS), [1, 1]);
  assert.deepEqual(gridShape(5, 0, 30, CONSTANTS), [10, 1]);
});

test('layer grids take cell centres, top row first', () => {
  const grid = new LayerGrid([0, 4], [-1, 1], 4, 2, CONSTANTS);
  close(grid.xs(), [0.5, 1.5, 2.5, 3.5]);
  close(grid.ys(), [0.5, -0.5]);
  const { data } = grid.points(3, [2, 0], [9, 9, 9]);
  close(Array.from(data.slice(0, 3)), [0.5, 9, 0.5]);
  assert.throws(() => new LayerGrid([1, 1], [0, 1], 2, 2, CONSTANTS), /x_range must be \(low, high\)/);
  assert.throws(() => new LayerGrid([0, 1], [0, 1], 100, 100, CONSTANTS), /above the limit/);
});

test('the prior layer is N(0, I) or the mixture, on the slice through base', () => {
  const grid = new LayerGrid([-2, 3], [-1, 1.5], 5, 3, CONSTANTS), xs = grid.xs(), ys = grid.ys();
  const normal = priorLogDensity(null, 3, grid, [0, 2], [0, 0.7, 0]);
  close(normal, Array.from({ length: 15 }, (_, k) => -1.5 * LOG_2PI - 0.5 * (xs[k % 5] ** 2 + ys[Math.floor(k / 5)] ** 2 + 0.49)));
  const mixture = { kind: 'gaussian_mixture', weights: [1], means: [[0.5, -0.5]], covariances: [[[4, 0], [0, 0.25]]] };
  const got = priorLogDensity(mixture, 2, grid);
  close(got, Array.from({ length: 15 }, (_, k) => -LOG_2PI - 0.5 * Math.log(1) - 0.5 * ((xs[k % 5] - 0.5) ** 2 / 4 + (ys[Math.floor(k / 5)] + 0.5) ** 2 / 0.25)));
});

test('the aggregate layer is the mixture of the posteriors, even far from every point', () => {
  const rnd = random(3), m = 300, d = 3;
  const means = Float32Array.from({ length: m * d }, () => (rnd() - 0.5) * 4);
  const logvars = Float32Array.from({ length: m * d }, () => -2 + rnd());
  for (const [xr, yr] of [[[-3, 3], [-2, 2.5]], [[60, 80], [-90, -70]]]) {
    const grid = new LayerGrid(xr, yr, 7, 5, CONSTANTS), xs = grid.xs(), ys = grid.ys(), base = [0, 0, 0.3];
    const got = aggregateLogDensity({ data: means, shape: [m, d] }, { data: logvars, shape: [m, d] }, grid, [1, 0], base, CONSTANTS);
    const want = [];
    for (let r = 0; r < 5; r++) {
      for (let c = 0; c < 7; c++) {
        const z = [ys[r], xs[c], 0.3];
        const terms = Array.from({ length: m }, (_, p) => -Math.log(m) - 0.5 * z.reduce((s, v, k) => s + LOG_2PI + logvars[p * d + k]
          + (v - means[p * d + k]) ** 2 / Math.exp(logvars[p * d + k]), 0));
        const top = Math.max(...terms);
        want.push(top + Math.log(terms.reduce((s, t) => s + Math.exp(t - top), 0)));
      }
    }
    assert.ok(got.every(Number.isFinite));
    close(got, want, 1e-10);
  }
});

test('entropy, difference, colours, ranges and ticks', () => {
  const h01 = -(0.1 * Math.log(0.1) + 0.9 * Math.log(0.9));
  close(decoderEntropy({ data: Float64Array.of(0, 1, 0.5, 0.5, 0.1, 0.9), shape: [3, 2] }), [0, Math.log(2), h01]);
  assert.deepEqual(Array.from(differenceImage(Float32Array.of(0, 1, 0.25), Float32Array.of(1, 0, 0.5))), [-1, 1, -0.25]);
  assert.deepEqual(Array.from(mapColours([-1, 0, 0.25, 1, NaN, -Infinity], 0, 1, 'up', RULES)),
    [0, 0, 0, 0, 0, 0, 128, 64, 0, 255, 255, 255, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(layerRange('aggregate', [-Infinity, -30, -2], RULES), [-7, -2]);
  assert.deepEqual(layerRange('entropy', [0.2, 0.2], RULES), [0.2, 1.2]);
  assert.deepEqual(layerRange('prior', [-Infinity], RULES), [0, 1]);
  assert.equal(percentile([1, 2, 3, 4], 50), 2.5);
  assert.deepEqual(errorRange(Array.from({ length: 101 }, (_, k) => k), RULES), [10, 90]);
  assert.deepEqual(legendTicks(-1, 1, 5), [[-1, '-1.0'], [-0.5, '-0.5'], [0, '0.0'], [0.5, '0.5'], [1, '1.0']]);
  assert.deepEqual(legendTicks(120, 980, 5).map(t => t[1]), ['200', '400', '600', '800']);
  assert.deepEqual(legendTicks(1, 1, 5), []);
  assert.deepEqual(layerShape('hills', 40, 30, RULES), [8, 6]);
  assert.deepEqual(layerShape('hills', 400, 100, RULES), [20, 5]);
  assert.deepEqual(layerShape('hills', 0, 3, RULES), [1, 1]);
});
