// A port of runtime/preprocessing.py's `preprocess`: any picture of one digit (or Fashion-MNIST
// object) -> Float32Array(28 * 28) in [0, 1], light-on-dark, cropped, fitted into the layout's box
// and placed the way the dataset did. The constants (box sizes, thresholds, centre) come from the
// site's config.json, which `latent-atlas web` writes from the Python module: one definition.
// The Lanczos resize repeats Pillow's float ("F" mode) resampling exactly, so both give the same
// pixels (tests/web compares them on the same pictures).

/** RGBA bytes (ImageData) of a picture -> {gray: float [0, 1], width, height}, as read_gray reads the
 * same picture from a file: Pillow's grey, and pictures over `workSide` shrunk the way Pillow shrinks
 * them (exactly for opaque ones; transparent ones, which Pillow shrinks premultiplied, within a grey level). */
export function readPicture(rgba, width, height, workSide) {
  const n = width * height;
  let opaque = true, colour = false;
  for (let i = 0; i < n; i++) {
    const r = rgba[4 * i], g = rgba[4 * i + 1], b = rgba[4 * i + 2];
    if (rgba[4 * i + 3] !== 255) opaque = false;
    if (r !== g || g !== b) colour = true;
  }
  if (opaque) {
    let luma = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const r = rgba[4 * i], g = rgba[4 * i + 1], b = rgba[4 * i + 2];
      // Pillow's convert("L"): ITU-R 601-2 luma in 16-bit fixed point, rounded.
      luma[i] = colour ? (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16 : r;
    }
    if (Math.max(width, height) > workSide) {
      const [w, h] = containSize(width, height, workSide);
      luma = resizeLanczos8(luma, width, height, w, h);
      width = w; height = h;
    }
    return { gray: Float32Array.from(luma, v => v / 255), width, height };
  }
  // Transparent pixels go over a background that contrasts with the opaque content (as in Python).
  const gray = new Float32Array(n), alpha = new Float32Array(n);
  let weight = 0, inkSum = 0;
  for (let i = 0; i < n; i++) {
    gray[i] = (0.299 * rgba[4 * i] + 0.587 * rgba[4 * i + 1] + 0.114 * rgba[4 * i + 2]) / 255;
    alpha[i] = rgba[4 * i + 3] / 255;
    weight += alpha[i];
    inkSum += gray[i] * alpha[i];
  }
  const background = (weight > 0 ? inkSum / weight : 0) < 0.5 ? 1 : 0;
  for (let i = 0; i < n; i++) gray[i] = gray[i] * alpha[i] + background * (1 - alpha[i]);
  return { gray, width, height };
}

/** Pillow's ImageOps.contain(image, (side, side)) size. */
function containSize(width, height, side) {
  if (width === height) return [side, side];
  return width > height ? [side, pyRound(height / width * side)] : [pyRound(width / height * side), side];
}

/** grey float [H, W] -> Float32Array(side * side): the model's input. A layout with crop: false (the
 * "resize" layout) takes the whole picture, grey as it is, resized to side x side. */
export function preprocess(gray, width, height, layout, constants) {
  const side = constants.image_side;
  if (Math.max(width, height) > constants.work_side) {
    const scale = constants.work_side / Math.max(width, height);
    const w = Math.max(1, pyRound(width * scale)), h = Math.max(1, pyRound(height * scale));
    gray = resizeLanczos(gray, width, height, w, h);
    width = w; height = h;
  }
  if (layout.crop === false) return resizeWhole(gray, width, height, side);
  const ink = inkOf(gray, width, height, constants.min_contrast);
  if (!ink) return new Float32Array(side * side);
  const cropped = crop(ink, width, height, constants.ink_threshold);
  const fitted = fitBox(cropped, layout.box);
  return place(fitted, layout, side, constants.centre);
}

function resizeWhole(gray, width, height, side) {
  if (width === side && height === side) return Float32Array.from(gray);
  const out = resizeLanczos(gray, width, height, side, side);
  for (let i = 0; i < out.length; i++) out[i] = Math.min(1, Math.max(0, out[i]));  // Lanczos overshoot
  return out;
}

function median(values) {
  const sorted = Float64Array.from(values).sort();
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function inkOf(gray, width, height, minContrast) {
  const band = Math.max(1, Math.floor(Math.min(width, height) / 50));
  const ring = [];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (y < band || y >= height - band || x < band || x >= width - band) ring.push(gray[y * width + x]);
    }
  }
  let background = median(ring);
  let darkest = Infinity, lightest = -Infinity;
  for (const v of gray) { if (v < darkest) darkest = v; if (v > lightest) lightest = v; }
  const darkInk = background - darkest > lightest - background ||
    (background - darkest === lightest - background && background > 0.5);
  let values = gray;
  if (darkInk) {
    values = gray.map(v => 1 - v);
    for (let i = 0; i < ring.length; i++) ring[i] = 1 - ring[i];
    background = 1 - background;
  }
  // Paper texture and sensor noise: the border's spread (MAD scaled to a standard deviation).
  const noise = 1.4826 * median(ring.map(v => Math.abs(v - background)));
  const floor = background + 4 * noise;
  let peak = -Infinity;
  for (const v of values) if (v > peak) peak = v;
  if (peak - floor < minContrast) return null;
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = Math.min(1, Math.max(0, (values[i] - floor) / (peak - floor)));
  return { data: out, width, height };
}

function crop(ink, width, height, threshold) {
  let top = height, bottom = -1, left = width, right = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (ink.data[y * width + x] > threshold) {
        if (y < top) top = y; if (y > bottom) bottom = y;
        if (x < left) left = x; if (x > right) right = x;
      }
    }
  }
  const w = right - left + 1, h = bottom - top + 1;
  const out = new Float32Array(w * h);
  for (let y = 0; y < h; y++) out.set(ink.data.subarray((top + y) * width + left, (top + y) * width + left + w), y * w);
  return { data: out, width: w, height: h };
}

function fitBox(digit, box) {
  const scale = box / Math.max(digit.height, digit.width);
  const w = Math.max(1, pyRound(digit.width * scale)), h = Math.max(1, pyRound(digit.height * scale));
  let data = digit.data;
  if (w !== digit.width || h !== digit.height) {
    data = resizeLanczos(data, digit.width, digit.height, w, h);
    for (let i = 0; i < data.length; i++) data[i] = Math.min(1, Math.max(0, data[i]));
  }
  let peak = 0;
  for (const v of data) if (v > peak) peak = v;
  if (peak > 0) data = data.map(v => v / peak);
  return { data, width: w, height: h };
}

function place(digit, layout, side, centre) {
  const { width, height, data } = digit;
  let top, left;
  if (layout.centre_of_mass) {
    let mass = 0, rowMoment = 0, colMoment = 0;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const v = data[y * width + x];
        mass += v; rowMoment += v * y; colMoment += v * x;
      }
    }
    top = pyRound(centre - rowMoment / mass);
    left = pyRound(centre - colMoment / mass);
  } else {
    top = Math.floor((side - height + 1) / 2);
    left = Math.floor((side - width + 1) / 2);
  }
  top = Math.min(Math.max(top, 0), side - height);
  left = Math.min(Math.max(left, 0), side - width);
  const out = new Float32Array(side * side);
  for (let y = 0; y < height; y++) out.set(data.subarray(y * width, (y + 1) * width), (top + y) * side + left);
  return out;
}

/** Python's round(): halves go to the even neighbour. */
export function pyRound(x) {
  const floor = Math.floor(x), diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

// ---- Pillow's Lanczos resampling of a float image (libImaging/Resample.c, "F" mode) ----

function sinc(x) {
  if (x === 0) return 1;
  x *= Math.PI;
  return Math.sin(x) / x;
}

function lanczos(x) {
  return -3 <= x && x < 3 ? sinc(x) * sinc(x / 3) : 0;
}

function coefficients(inSize, outSize) {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 3 * filterScale;
  const bounds = [], weights = [];
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    const k = new Float64Array(xmax);
    let sum = 0;
    for (let x = 0; x < xmax; x++) { k[x] = lanczos((x + xmin - center + 0.5) / filterScale); sum += k[x]; }
    if (sum !== 0) for (let x = 0; x < xmax; x++) k[x] /= sum;
    bounds.push(xmin); weights.push(k);
  }
  return { bounds, weights };
}

// 8-bit images: Pillow turns the weights into 22-bit fixed point and rounds each pass to 0..255.
const PRECISION_BITS = 32 - 8 - 2;

function fixedPoint(weights) {
  return weights.map(k => k.map(w => Math.trunc(w * (1 << PRECISION_BITS) + (w < 0 ? -0.5 : 0.5))));
}

function clip8(sum) {
  if (sum >= (1 << PRECISION_BITS) * 256) return 255;
  if (sum <= 0) return 0;
  return Math.floor(sum / (1 << PRECISION_BITS));
}

/** Uint8Array [h, w] -> Uint8Array [outH, outW], as Pillow resizes an "L" image with LANCZOS. */
export function resizeLanczos8(data, w, h, outW, outH) {
  let current = data, width = w;
  if (outW !== w) {
    const { bounds, weights } = coefficients(w, outW);
    const fixed = fixedPoint(weights);
    const next = new Uint8Array(outW * h);
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < outW; xx++) {
        const k = fixed[xx], xmin = bounds[xx];
        let s = 1 << (PRECISION_BITS - 1);
        for (let x = 0; x < k.length; x++) s += current[y * width + x + xmin] * k[x];
        next[y * outW + xx] = clip8(s);
      }
    }
    current = next; width = outW;
  }
  if (outH !== h) {
    const { bounds, weights } = coefficients(h, outH);
    const fixed = fixedPoint(weights);
    const next = new Uint8Array(width * outH);
    for (let yy = 0; yy < outH; yy++) {
      const k = fixed[yy], ymin = bounds[yy];
      for (let x = 0; x < width; x++) {
        let s = 1 << (PRECISION_BITS - 1);
        for (let y = 0; y < k.length; y++) s += current[(y + ymin) * width + x] * k[y];
        next[yy * width + x] = clip8(s);
      }
    }
    current = next;
  }
  return current;
}

/** Float32Array [h, w] -> Float32Array [outH, outW]; horizontal pass first, float32 in between. */
export function resizeLanczos(data, w, h, outW, outH) {
  let current = data, width = w;
  if (outW !== w) {
    const { bounds, weights } = coefficients(w, outW);
    const next = new Float32Array(outW * h);
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < outW; xx++) {
        const k = weights[xx], xmin = bounds[xx];
        let s = 0;
        for (let x = 0; x < k.length; x++) s += current[y * width + x + xmin] * k[x];
        next[y * outW + xx] = s;
      }
    }
    current = next; width = outW;
  }
  if (outH !== h) {
    const { bounds, weights } = coefficients(h, outH);
    const next = new Float32Array(width * outH);
    for (let yy = 0; yy < outH; yy++) {
      const k = weights[yy], ymin = bounds[yy];
      for (let x = 0; x < width; x++) {
        let s = 0;
        for (let y = 0; y < k.length; y++) s += current[(y + ymin) * width + x] * k[y];
        next[yy * width + x] = s;
      }
    }
    current = next;
  }
  return current === data ? Float32Array.from(data) : current;
}
