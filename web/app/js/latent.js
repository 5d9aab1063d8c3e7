// Latent-space helpers, ported from runtime/latent.py: interpolation paths, grids, prior samples.

/** `steps` points from a to b, ends included; "slerp" as in runtime/latent.py's interpolation_path. */
export function interpolationPath(a, b, steps, method) {
  const dim = a.length;
  const out = new Float32Array(steps * dim);
  const lengthA = Math.hypot(...a), lengthB = Math.hypot(...b);
  let omega = 0, sinOmega = 0;
  if (method === 'slerp' && lengthA > 0 && lengthB > 0) {
    let dot = 0;
    for (let d = 0; d < dim; d++) dot += (a[d] / lengthA) * (b[d] / lengthB);
    omega = Math.acos(Math.min(1, Math.max(-1, dot)));
    sinOmega = Math.sin(omega);
  }
  for (let i = 0; i < steps; i++) {
    const t = steps === 1 ? 0 : i / (steps - 1);
    for (let d = 0; d < dim; d++) {
      out[i * dim + d] = sinOmega > 1e-6
        ? ((Math.sin((1 - t) * omega) * a[d] / lengthA + Math.sin(t * omega) * b[d] / lengthB) / sinOmega) * ((1 - t) * lengthA + t * lengthB)
        : (1 - t) * a[d] + t * b[d];
    }
  }
  return out;
}

export function linspace(low, high, n) {
  return Array.from({ length: n }, (_, i) => (n === 1 ? (low + high) / 2 : low + (high - low) * i / (n - 1)));
}

/** n x n latent points over ((x0, x1), (y0, y1)), row-major, top row = largest y; other dims at `base`. */
export function gridPoints(n, extent, base) {
  const dim = base.length;
  const xs = linspace(extent[0][0], extent[0][1], n), ys = linspace(extent[1][0], extent[1][1], n).reverse();
  const out = new Float32Array(n * n * dim);
  for (let row = 0; row < n; row++) {
    for (let col = 0; col < n; col++) {
      const at = (row * n + col) * dim;
      out.set(base, at);
      out[at] = xs[col];
      out[at + 1] = ys[row];
    }
  }
  return out;
}

/** A seeded uniform generator on (0, 1) (mulberry32): the same seed gives the same numbers. */
function uniformSampler(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
}

/** A seeded standard-normal generator (mulberry32 + Box-Muller): the same seed gives the same points. */
export function normalSampler(seed, uniform = uniformSampler(seed)) {
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** Lower-triangular L with L L^T = a, for a symmetric positive-definite matrix given as rows. */
export function cholesky(a) {
  const n = a.length;
  const l = a.map(() => new Array(n).fill(0));
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let sum = a[i][j];
      for (let k = 0; k < j; k++) sum -= l[i][k] * l[j][k];
      l[i][j] = i === j ? Math.sqrt(sum) : sum / l[j][j];
    }
  }
  return l;
}

/** One seeded draw from a bundle's prior (bundle.json "prior", defined by runtime/prior.py): N(0, I) when
 * absent; for a Gaussian mixture, a component picked by its weight, then mean + L eps. */
export function priorSample(prior, dim, seed) {
  const uniform = uniformSampler(seed);
  const normal = normalSampler(seed, uniform);
  if (!prior || !prior.kind || prior.kind === 'standard_normal') return Float32Array.from({ length: dim }, normal);
  if (prior.kind !== 'gaussian_mixture') throw new Error(`unknown prior kind ${prior.kind}`);
  let u = uniform(), m = 0;
  while (m < prior.weights.length - 1 && u >= prior.weights[m]) u -= prior.weights[m++];
  const l = cholesky(prior.covariances[m]);
  const eps = Array.from({ length: dim }, normal);
  return Float32Array.from(prior.means[m], (mean, i) => mean + l[i].reduce((sum, lik, k) => sum + lik * eps[k], 0));
}
