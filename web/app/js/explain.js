// A port of runtime/explain.py, function by function, and of the layer rules of runtime/explorer_rules.py
// (colour maps, ranges, legend ticks): what the explorer shows to explain a model. Plain numbers, no DOM.
// Arrays are {data, shape} as npz.js reads them (row-major, like numpy); the constants come from the site's
// config.json ("explain" and "explorer"), written from the Python modules, so nothing here is retyped.
// tests/web/test_explain_parity.py runs these and the Python functions on the same inputs in Chromium.
import { cholesky, normalSampler } from './latent.js';

const LOG_2PI = Math.log(2 * Math.PI);

function checkDims(dims, latentDim) {
  if (dims.length !== 2 || dims[0] === dims[1] || !dims.every(d => Number.isInteger(d) && d >= 0 && d < latentDim)) {
    throw new Error(`dims must be two different latent dims in [0, ${latentDim}), got (${dims.join(', ')})`);
  }
}

function vector(value, name, length = null) {
  const array = Float64Array.from(value);
  if ((length !== null && array.length !== length) || !array.every(Number.isFinite)) {
    const expected = length !== null ? `${length} finite numbers` : 'a vector of finite numbers';
    throw new Error(`${name} must be ${expected}, got shape [${array.length}]`);
  }
  return array;
}

// --- uncertainty ------------------------------------------------------------------------------------

/** [cx, cy, rx, ry] of the posterior's s-sigma ellipse over `dims` for each s in `sigmas` (axis-aligned). */
export function posteriorEllipses(mean, logvar, dims = [0, 1], sigmas = [1, 2]) {
  mean = vector(mean, 'mean');
  logvar = vector(logvar, 'logvar', mean.length);
  checkDims(dims, mean.length);
  const [i, j] = dims;
  const si = Math.exp(0.5 * logvar[i]), sj = Math.exp(0.5 * logvar[j]);
  return sigmas.map(s => [mean[i], mean[j], s * si, s * sj]);
}

/** n draws of N(mean, diag exp(logvar)), reparameterised with the page's seeded normal generator
 * (latent.js; not numpy's, so the draws differ from Python's while their distribution is the same):
 * {data: Float32Array(n * D), shape: [n, D]}. */
export function posteriorSamples(mean, logvar, n, seed = 0) {
  mean = vector(mean, 'mean');
  logvar = vector(logvar, 'logvar', mean.length);
  const d = mean.length, normal = normalSampler(seed), data = new Float32Array(n * d);
  for (let r = 0; r < n; r++) {
    for (let k = 0; k < d; k++) data[r * d + k] = mean[k] + Math.exp(0.5 * logvar[k]) * normal();
  }
  return { data, shape: [n, d] };
}

// --- neighbours -------------------------------------------------------------------------------------

/** [cols, rows] of the neighbour grid over a width x height box holding `count` points. */
export function gridShape(width, height, count, constants) {
  const { points_per_cell: perCell, max_index_side: maxSide } = constants;
  const cells = Math.max(1, Math.ceil(count / perCell));
  if (width <= 0 && height <= 0) return [1, 1];
  if (height <= 0) return [Math.min(cells, maxSide), 1];
  if (width <= 0) return [1, Math.min(cells, maxSide)];
  const cell = Math.sqrt(width * height * perCell / Math.max(count, 1));
  return [Math.min(maxSide, Math.max(1, Math.ceil(width / cell))), Math.min(maxSide, Math.max(1, Math.ceil(height / cell)))];
}

/** Exact k nearest atlas points (Euclidean over all D dims) of points {data, shape: [M, D]}, bucketed on a
 * uniform grid over `dims`; ties go to the lower index, as in Python. */
export class NeighbourIndex {
  constructor(points, dims = [0, 1], constants) {
    const [m, d] = points.shape;
    checkDims(dims, d);
    for (const v of points.data) if (!Number.isFinite(v)) throw new Error(`points must be a [M, D] array of finite numbers, got shape [${m}, ${d}]`);
    this.points = points.data;
    this.count = m;
    this.latentDim = d;
    this.dims = [dims[0], dims[1]];
    this.slack = constants.bound_slack;
    const low = [Infinity, Infinity], high = [-Infinity, -Infinity];
    for (let p = 0; p < m; p++) {
      for (let a = 0; a < 2; a++) {
        const v = this.points[p * d + dims[a]];
        if (v < low[a]) low[a] = v;
        if (v > high[a]) high[a] = v;
      }
    }
    this.low = m ? low : [0, 0];
    const extent = m ? [high[0] - low[0], high[1] - low[1]] : [0, 0];
    [this.cols, this.rows] = gridShape(extent[0], extent[1], m, constants);
    this.cell = [extent[0] > 0 ? extent[0] / this.cols : 1, extent[1] > 0 ? extent[1] / this.rows : 1];
    // Counting sort by cell (row-major): within a cell, points keep their index order.
    const cellOf = new Int32Array(m), counts = new Int32Array(this.rows * this.cols + 1);
    for (let p = 0; p < m; p++) {
      const [col, row] = this.cellOf(this.points[p * d + dims[0]], this.points[p * d + dims[1]]);
      cellOf[p] = row * this.cols + col;
      counts[cellOf[p] + 1]++;
    }
    for (let c = 1; c < counts.length; c++) counts[c] += counts[c - 1];
    this.starts = counts;
    this.order = new Int32Array(m);
    const next = counts.slice(0, -1);
    for (let p = 0; p < m; p++) this.order[next[cellOf[p]]++] = p;
  }

  cellOf(x, y) {
    const clip = (v, n) => Math.min(n - 1, Math.max(0, v));
    return [clip(Math.floor((x - this.low[0]) / this.cell[0]), this.cols), clip(Math.floor((y - this.low[1]) / this.cell[1]), this.rows)];
  }

  bound(zx, zy, col, row, r) {
    const sides = [];
    if (col - r > 0) sides.push(zx - (this.low[0] + (col - r) * this.cell[0]));
    if (col + r < this.cols - 1) sides.push(this.low[0] + (col + r + 1) * this.cell[0] - zx);
    if (row - r > 0) sides.push(zy - (this.low[1] + (row - r) * this.cell[1]));
    if (row + r < this.rows - 1) sides.push(this.low[1] + (row + r + 1) * this.cell[1] - zy);
    return sides.length ? Math.max(0, Math.min(...sides)) * (1 - this.slack) : Infinity;
  }

  /** [indices Int32Array(k), distances Float64Array(k)] of the k atlas points nearest z, nearest first. */
  query(z, k = 8) {
    const d = this.latentDim;
    z = vector(z, 'z', d);
    if (!Number.isInteger(k) || k < 1) throw new Error(`k must be a positive integer, got ${k}`);
    k = Math.min(k, this.count);
    if (k === 0) return [new Int32Array(0), new Float64Array(0)];
    const zx = z[this.dims[0]], zy = z[this.dims[1]];
    const [col, row] = this.cellOf(zx, zy);
    for (let r = 0; ; r = r ? 2 * r : 1) {
      const lo = Math.max(col - r, 0), hi = Math.min(col + r, this.cols - 1);
      const best = [];  // [squared, index], sorted: at most k
      let seen = 0;
      for (let y = Math.max(row - r, 0); y <= Math.min(row + r, this.rows - 1); y++) {
        for (let s = this.starts[y * this.cols + lo]; s < this.starts[y * this.cols + hi + 1]; s++) {
          const p = this.order[s];
          let squared = 0;
          for (let a = 0; a < d; a++) {
            const diff = this.points[p * d + a] - z[a];
            squared += diff * diff;
          }
          seen++;
          if (best.length === k && (squared > best[k - 1][0] || (squared === best[k - 1][0] && p > best[k - 1][1]))) continue;
          let at = best.length;
          while (at > 0 && (best[at - 1][0] > squared || (best[at - 1][0] === squared && best[at - 1][1] > p))) at--;
          best.splice(at, 0, [squared, p]);
          if (best.length > k) best.pop();
        }
      }
      const bound = this.bound(zx, zy, col, row, r);
      if (seen >= k && best[k - 1][0] <= bound * bound) {
        return [Int32Array.from(best, b => b[1]), Float64Array.from(best, b => Math.sqrt(b[0]))];
      }
    }
  }
}

// --- landscape layers -------------------------------------------------------------------------------

/** cols x rows cells over xRange x yRange of the two shown dims, values at the cells' centres; row 0 on top. */
export class LayerGrid {
  constructor(xRange, yRange, cols, rows, constants) {
    for (const [name, value] of [['cols', cols], ['rows', rows]]) {
      if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${value}`);
    }
    if (cols * rows > constants.max_layer_cells) {
      throw new Error(`a layer of ${cols} x ${rows} cells is above the limit of ${constants.max_layer_cells.toLocaleString('en-US')}`);
    }
    for (const [name, [lo, hi]] of [['x_range', xRange], ['y_range', yRange]]) {
      if (!(Number.isFinite(lo) && Number.isFinite(hi) && lo < hi)) throw new Error(`${name} must be (low, high) with finite low < high, got (${lo}, ${hi})`);
    }
    Object.assign(this, { xRange: [...xRange], yRange: [...yRange], cols, rows });
  }

  /** The cells' centres across, left to right. */
  xs() {
    const [lo, hi] = this.xRange;
    return Float64Array.from({ length: this.cols }, (_, i) => lo + (i + 0.5) * ((hi - lo) / this.cols));
  }

  /** The cells' centres up, top row first. */
  ys() {
    const [lo, hi] = this.yRange;
    return Float64Array.from({ length: this.rows }, (_, i) => lo + (this.rows - 0.5 - i) * ((hi - lo) / this.rows));
  }

  /** The cells' centres as latent points {data: Float32Array, shape: [rows * cols, D]}: what the entropy
   * layer decodes. Dims other than `dims` are held at `base` (zeros by default). */
  points(latentDim, dims = [0, 1], base = null) {
    checkDims(dims, latentDim);
    const b = base === null ? new Float64Array(latentDim) : vector(base, 'base', latentDim);
    const xs = this.xs(), ys = this.ys(), n = this.rows * this.cols, data = new Float32Array(n * latentDim);
    for (let r = 0; r < this.rows; r++) {
      for (let c = 0; c < this.cols; c++) {
        const at = (r * this.cols + c) * latentDim;
        data.set(b, at);
        data[at + dims[0]] = xs[c];
        data[at + dims[1]] = ys[r];
      }
    }
    return { data, shape: [n, latentDim] };
  }
}

function logSumExp(values) {
  let top = -Infinity;
  for (const v of values) if (v > top) top = v;
  if (top === -Infinity) return -Infinity;
  let sum = 0;
  for (const v of values) sum += Math.exp(v - top);
  return top + Math.log(sum);
}

/** log p(z) of bundle.json's prior (runtime/prior.py): N(0, I) when absent, else the Gaussian mixture. */
export function priorLogProb(prior, latentDim) {
  if (!prior || !prior.kind || prior.kind === 'standard_normal') {
    return z => { let s = 0; for (let k = 0; k < latentDim; k++) s += LOG_2PI + z[k] * z[k]; return -0.5 * s; };
  }
  if (prior.kind !== 'gaussian_mixture') throw new Error(`unknown prior kind ${prior.kind}`);
  const parts = prior.means.map((mean, m) => {
    const l = cholesky(prior.covariances[m]);
    const logDet = 2 * l.reduce((sum, row, i) => sum + Math.log(row[i]), 0);
    return { mean, l, constant: Math.log(prior.weights[m]) - 0.5 * (latentDim * LOG_2PI + logDet) };
  });
  const solved = new Float64Array(latentDim), terms = new Float64Array(parts.length);
  return z => {
    parts.forEach(({ mean, l, constant }, m) => {
      let squared = 0;
      for (let i = 0; i < latentDim; i++) {  // forward substitution: L^-1 (z - mean)
        let v = z[i] - mean[i];
        for (let k = 0; k < i; k++) v -= l[i][k] * solved[k];
        solved[i] = v / l[i][i];
        squared += solved[i] * solved[i];
      }
      terms[m] = constant - 0.5 * squared;
    });
    return logSumExp(terms);
  };
}

function cellPoint(grid, latentDim, dims, base) {
  checkDims(dims, latentDim);
  return base === null ? new Float64Array(latentDim) : vector(base, 'base', latentDim);
}

/** log p(z) of the bundle's prior at each cell's centre: Float64Array(rows * cols), row-major from the top. */
export function priorLogDensity(prior, latentDim, grid, dims = [0, 1], base = null) {
  const z = cellPoint(grid, latentDim, dims, base), logProb = priorLogProb(prior, latentDim);
  const xs = grid.xs(), ys = grid.ys(), out = new Float64Array(grid.rows * grid.cols);
  for (let r = 0; r < grid.rows; r++) {
    for (let c = 0; c < grid.cols; c++) {
      z[dims[0]] = xs[c];
      z[dims[1]] = ys[r];
      out[r * grid.cols + c] = logProb(z);
    }
  }
  return out;
}

/** log q(z) of the aggregate posterior, the mixture of the atlas' posteriors (means and logvars {data,
 * shape: [M, D]}), at each cell's centre: Float64Array(rows * cols). As in Python, each component factors
 * into an x part, a y part and a constant, so the sum is a product of scaled factors; cells where it
 * underflows are summed again in the log domain. */
export function aggregateLogDensity(means, logvars, grid, dims = [0, 1], base = null, constants) {
  const [m, d] = means.shape;
  if (m === 0 || logvars.shape[0] !== m || logvars.shape[1] !== d) {
    throw new Error(`means and logvars must be two [M, D] arrays with M >= 1, got shapes [${means.shape}] and [${logvars.shape}]`);
  }
  const b = cellPoint(grid, d, dims, base), [i, j] = dims;
  const { cols, rows } = grid, xs = grid.xs(), ys = grid.ys();
  const logX = new Float64Array(m * cols), logY = new Float64Array(m * rows);
  const topX = new Float64Array(cols).fill(-Infinity), topY = new Float64Array(rows).fill(-Infinity);
  for (let p = 0; p < m; p++) {
    let constant = -Math.log(m), sumLogvar = 0, others = 0;
    for (let k = 0; k < d; k++) {
      const lv = logvars.data[p * d + k];
      if (!Number.isFinite(lv) || !Number.isFinite(means.data[p * d + k])) throw new Error('means and logvars must be finite');
      sumLogvar += lv;
      if (k !== i && k !== j) others += (b[k] - means.data[p * d + k]) ** 2 * Math.exp(-lv);
    }
    constant -= 0.5 * (d * LOG_2PI + sumLogvar) + 0.5 * others;
    const mx = means.data[p * d + i], my = means.data[p * d + j];
    const ix = Math.exp(-logvars.data[p * d + i]), iy = Math.exp(-logvars.data[p * d + j]);
    for (let c = 0; c < cols; c++) {
      const v = -0.5 * (xs[c] - mx) ** 2 * ix;
      logX[p * cols + c] = v;
      if (v > topX[c]) topX[c] = v;
    }
    for (let r = 0; r < rows; r++) {
      const v = constant - 0.5 * (ys[r] - my) ** 2 * iy;
      logY[p * rows + r] = v;
      if (v > topY[r]) topY[r] = v;
    }
  }
  const scaled = new Float64Array(rows * cols), ex = new Float64Array(cols);
  for (let p = 0; p < m; p++) {
    for (let c = 0; c < cols; c++) ex[c] = Math.exp(logX[p * cols + c] - topX[c]);
    for (let r = 0; r < rows; r++) {
      const ey = Math.exp(logY[p * rows + r] - topY[r]);
      if (ey === 0) continue;  // adds exactly nothing
      const at = r * cols;
      for (let c = 0; c < cols; c++) scaled[at + c] += ey * ex[c];
    }
  }
  const out = new Float64Array(rows * cols), terms = new Float64Array(m);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const s = scaled[r * cols + c];
      if (s >= constants.underflow) {
        out[r * cols + c] = topY[r] + topX[c] + Math.log(s);
        continue;
      }
      for (let p = 0; p < m; p++) terms[p] = logY[p * rows + r] + logX[p * cols + c];
      out[r * cols + c] = logSumExp(terms);
    }
  }
  return out;
}

/** Mean per-pixel Bernoulli entropy in nats of each decoded image ({data, shape: [N, ...]}): Float64Array(N). */
export function decoderEntropy(images) {
  const n = images.shape[0], size = images.shape.slice(1).reduce((a, b) => a * b, 1);
  if (images.shape.length < 2 || n === 0 || size === 0) throw new Error(`images must be [N, ...] with N >= 1 pixels each, got shape [${images.shape}]`);
  const out = new Float64Array(n);
  for (let q = 0; q < n; q++) {
    let sum = 0;
    for (let k = 0; k < size; k++) {
      const raw = images.data[q * size + k];
      if (!Number.isFinite(raw)) throw new Error('images must be finite');
      const p = Math.min(1, Math.max(0, raw));
      sum -= (p > 0 ? p * Math.log(p) : 0) + (p < 1 ? (1 - p) * Math.log1p(-p) : 0);
    }
    out[q] = sum / size;
  }
  return out;
}

/** a - b of two decodes of the same length, as float32 in [-1, 1]. */
export function differenceImage(a, b) {
  if (a.length !== b.length) throw new Error(`the two images must have the same shape, got [${a.length}] and [${b.length}]`);
  return Float32Array.from(a, (v, k) => Math.min(1, Math.max(-1, Math.fround(v - b[k]))));
}

// --- layer rules (runtime/explorer_rules.py; `rules` is config.json "explorer") --------------------------

/** [cols, rows] of a layer over a map of width x height screen pixels (see Python's layer_shape). */
export function layerShape(layer, width, height, rules) {
  const pixels = rules.layer_cell_pixels[layer], limit = rules.max_layer_cells;
  let cols = Math.max(1, Math.floor(width / pixels)), rows = Math.max(1, Math.floor(height / pixels));
  if (cols * rows > limit) {
    const shrink = Math.sqrt(limit / (cols * rows));
    cols = Math.max(1, Math.floor(cols * shrink));
    rows = Math.max(1, Math.floor(rows * shrink));
  }
  return [cols, rows];
}

const rgb = colour => [1, 3, 5].map(k => parseInt(colour.slice(k, k + 2), 16));

/** RGB bytes (Uint8ClampedArray(3 n)) of `values` on rules.colour_maps[colourMap] spanning low..high. */
export function mapColours(values, low, high, colourMap, rules) {
  const stops = rules.colour_maps[colourMap].map(rgb), last = stops.length - 1;
  const out = new Uint8ClampedArray(values.length * 3);
  for (let q = 0; q < values.length; q++) {
    let t = high > low ? (values[q] - low) / (high - low) : 0;
    if (Number.isNaN(t)) t = 0;
    const position = Math.min(1, Math.max(0, t)) * last;
    const index = Math.min(Math.floor(position), last - 1), frac = position - index;
    for (let ch = 0; ch < 3; ch++) out[3 * q + ch] = Math.floor(stops[index][ch] * (1 - frac) + stops[index + 1][ch] * frac + 0.5);
  }
  return out;
}

/** [low, high] a layer's colours span over its visible cells (see Python's layer_range). */
export function layerRange(layer, values, rules) {
  let low = Infinity, high = -Infinity;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    if (v < low) low = v;
    if (v > high) high = v;
  }
  if (high === -Infinity) return [0, 1];
  if (layer === 'prior' || layer === 'aggregate') low = high - rules.log_density_span;
  return high > low ? [low, high] : [low, low + 1];
}

/** numpy's percentile (linear interpolation, numpy's own lerp) of `values` at q in [0, 100]. */
export function percentile(values, q) {
  const sorted = Float64Array.from(values).sort();
  const position = (q / 100) * (sorted.length - 1), below = Math.floor(position);
  const above = Math.min(below + 1, sorted.length - 1), t = position - below;
  const a = sorted[below], b = sorted[above], diff = b - a;
  return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
}

/** [low, high] of the error colouring: the atlas errors' rules.error_percentiles. */
export function errorRange(errors, rules) {
  const [low, high] = rules.error_percentiles.map(q => percentile(errors, q));
  return high > low ? [low, high] : [low, low + 1];
}

/** [[value, label], ...] of round ticks within [low, high] (see Python's legend_ticks). */
export function legendTicks(low, high, count) {
  if (!(Number.isFinite(low) && Number.isFinite(high) && high > low)) return [];
  const raw = (high - low) / count, power = 10 ** Math.floor(Math.log10(raw));
  let step = power;
  for (const m of [2, 5, 10]) if (Math.abs(Math.log(m * power / raw)) < Math.abs(Math.log(step / raw))) step = m * power;
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-12));
  const first = Math.ceil(low / step - 1e-9), last = Math.floor(high / step + 1e-9), ticks = [];
  for (let k = first; k <= last; k++) {
    const value = Number((k * step).toPrecision(12)) + 0;
    ticks.push([value, value.toFixed(decimals)]);
  }
  return ticks;
}
