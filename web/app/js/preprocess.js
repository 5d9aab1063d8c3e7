// A port of runtime/preprocessing.py's `preprocess`: any picture of one digit (or Fashion-MNIST
// object) -> the model's input in [0, 1], light-on-dark, cropped, fitted into the layout's box and
// placed the way the dataset did; or, with a whole-picture layout ("resize", "pad", "crop"), the whole
// picture brought to the model's field. Models of any image shape [C, H, W]: the box and the centre scale
// with the field; a colour model (C = 3) keeps the picture's colour (a grey picture gives three equal
// channels) and takes a whole-picture layout; a grey model gets a colour picture's luma. The result is
// channels first (C x H x W), as the encoder takes it. The constants (box sizes, thresholds, centre)
// come from the site's config.json, which `latent-atlas web` writes from the Python module: one definition.
// The Lanczos resize repeats Pillow's float ("F" mode) resampling exactly, so both give the same
// pixels (tests/web compares them on the same pictures).

/** RGBA bytes (ImageData) of a picture -> {planes: [float [0, 1] per channel], width, height}, as
 * read_gray (channels 1) or read_colour (channels 3) reads the same picture from a file: Pillow's grey or
 * RGB, and pictures over `workSide` shrunk the way Pillow shrinks them (exactly for opaque ones;
 * transparent ones, which Pillow shrinks premultiplied, within a grey level). */
export function readPicture(rgba, width, height, workSide, channels = 1) {
  return channels === 3 ? readColour(rgba, width, height, workSide) : readGray(rgba, width, height, workSide);
}

function readGray(rgba, width, height, workSide) {
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
    return { planes: [Float32Array.from(luma, v => v / 255)], width, height };
  }
  const { luma, alpha, background } = overBackground(rgba, n);
  for (let i = 0; i < n; i++) luma[i] = luma[i] * alpha[i] + background * (1 - alpha[i]);
  return { planes: [luma], width, height };
}

// Transparent pixels go over a background that contrasts with the opaque content's luma (as in Python).
function overBackground(rgba, n) {
  const luma = new Float32Array(n), alpha = new Float32Array(n);
  let weight = 0, inkSum = 0;
  for (let i = 0; i < n; i++) {
    luma[i] = (0.299 * rgba[4 * i] + 0.587 * rgba[4 * i + 1] + 0.114 * rgba[4 * i + 2]) / 255;
    alpha[i] = rgba[4 * i + 3] / 255;
    weight += alpha[i];
    inkSum += luma[i] * alpha[i];
  }
  return { luma, alpha, background: (weight > 0 ? inkSum / weight : 0) < 0.5 ? 1 : 0 };
}

function readColour(rgba, width, height, workSide) {
  const n = width * height;
  let opaque = true;
  for (let i = 0; i < n; i++) if (rgba[4 * i + 3] !== 255) { opaque = false; break; }
  if (opaque) {
    let bytes = [0, 1, 2].map(c => Uint8Array.from({ length: n }, (_, i) => rgba[4 * i + c]));
    if (Math.max(width, height) > workSide) {
      const [w, h] = containSize(width, height, workSide);
      bytes = bytes.map(plane => resizeLanczos8(plane, width, height, w, h));
      width = w; height = h;
    }
    return { planes: bytes.map(plane => Float32Array.from(plane, v => v / 255)), width, height };
  }
  const { alpha, background } = overBackground(rgba, n);
  const planes = [0, 1, 2].map(c => Float32Array.from({ length: n }, (_, i) => {
    const value = Math.fround(rgba[4 * i + c] / 255);
    return value * alpha[i] + background * (1 - alpha[i]);
  }));
  return { planes, width, height };
}

/** Pillow's ImageOps.contain(image, (side, side)) size. */
function containSize(width, height, side) {
  if (width === height) return [side, side];
  return width > height ? [side, pyRound(height / width * side)] : [pyRound(width / height * side), side];
}

/** The seed models' image shape, [C, H, W] (runtime/image_shape.py SEED_IMAGE_SHAPE). */
const SEED_SHAPE = [1, 28, 28];

/** planes (readPicture's: one grey or three RGB, float [H, W]) -> Float32Array(C * H * W): the model's
 * input for `shape` [C, H, W]. A layout with crop: false takes the whole picture, brought to the field by
 * its `fit` ("stretch", "pad" or "crop"); a colour model takes only such a layout. */
export function preprocess(planes, width, height, layout, constants, shape = SEED_SHAPE) {
  const [channels, fieldHeight, fieldWidth] = shape;
  if (planes.length !== channels) throw new Error(`a ${channels}-channel model needs a picture read with ${channels} channel(s), got ${planes.length}`);
  if (channels !== 1 && layout.crop !== false) {
    throw new Error(`an ink layout finds light ink on a dark ground in grey pictures; a colour model (${shape.join('x')}) takes a whole-picture layout`);
  }
  if (Math.max(width, height) > constants.work_side) {
    const scale = constants.work_side / Math.max(width, height);
    const w = Math.max(1, pyRound(width * scale)), h = Math.max(1, pyRound(height * scale));
    planes = planes.map(plane => resizeLanczos(plane, width, height, w, h));
    width = w; height = h;
  }
  if (layout.crop === false) return concat(fill(planes, width, height, layout.fit ?? 'stretch', fieldHeight, fieldWidth));
  const ink = inkOf(planes[0], width, height, constants.min_contrast);
  if (!ink) return new Float32Array(fieldHeight * fieldWidth);
  const cropped = crop(ink, width, height, constants.ink_threshold);
  const side = constants.image_side;  // the seed's: the layouts' box and centre scale from it
  const fitted = fitBox(cropped, pyRound(layout.box * Math.min(fieldHeight, fieldWidth) / side));
  return place(fitted, layout, fieldHeight, fieldWidth, constants.centre * fieldHeight / side, constants.centre * fieldWidth / side);
}

function concat(planes) {
  const out = new Float32Array(planes.reduce((sum, plane) => sum + plane.length, 0));
  planes.forEach((plane, c) => out.set(plane, c * planes[0].length));
  return out;
}

/** Lanczos to w x h with the overshoot clipped, as Python's _resize. */
function resizeClipped(plane, width, height, w, h) {
  const out = resizeLanczos(plane, width, height, w, h);
  for (let i = 0; i < out.length; i++) out[i] = Math.min(1, Math.max(0, out[i]));
  return out;
}

/** The whole picture (each plane [height, width]) brought to fieldWidth x fieldHeight, as Python's _fill. */
function fill(planes, width, height, fit, fieldHeight, fieldWidth) {
  if (width === fieldWidth && height === fieldHeight) return planes.map(plane => Float32Array.from(plane));
  if (fit === 'crop') {
    let [x0, y0, w, h] = [0, 0, width, height];
    if (width * fieldHeight > height * fieldWidth) {  // wider than the field: keep the middle columns
      w = Math.max(1, pyRound(height * fieldWidth / fieldHeight));
      x0 = Math.floor((width - w) / 2);
    } else {
      h = Math.max(1, pyRound(width * fieldHeight / fieldWidth));
      y0 = Math.floor((height - h) / 2);
    }
    planes = planes.map(plane => window_(plane, width, x0, y0, w, h));
    width = w; height = h;
  } else if (fit === 'pad') {
    const scale = Math.min(fieldWidth / width, fieldHeight / height);
    const w = Math.min(fieldWidth, Math.max(1, pyRound(width * scale))), h = Math.min(fieldHeight, Math.max(1, pyRound(height * scale)));
    const top = Math.floor((fieldHeight - h + 1) / 2), left = Math.floor((fieldWidth - w + 1) / 2);
    return planes.map(plane => {
      const fitted = w !== width || h !== height ? resizeClipped(plane, width, height, w, h) : plane;
      const out = new Float32Array(fieldWidth * fieldHeight).fill(median(ringOf(plane, width, height)));
      for (let y = 0; y < h; y++) out.set(fitted.subarray(y * w, (y + 1) * w), (top + y) * fieldWidth + left);
      return out;
    });
  }
  return planes.map(plane => resizeClipped(plane, width, height, fieldWidth, fieldHeight));
}

/** The w x h box at (x0, y0) of a plane `width` wide. */
function window_(plane, width, x0, y0, w, h) {
  const out = new Float32Array(w * h);
  for (let y = 0; y < h; y++) out.set(plane.subarray((y0 + y) * width + x0, (y0 + y) * width + x0 + w), y * w);
  return out;
}

/** The picture's outer ring (a fiftieth of the shorter side, at least one pixel), as Python's _border. */
function ringOf(plane, width, height) {
  const band = Math.max(1, Math.floor(Math.min(width, height) / 50));
  const ring = [];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (y < band || y >= height - band || x < band || x >= width - band) ring.push(plane[y * width + x]);
    }
  }
  return ring;
}

function median(values) {
  const sorted = Float64Array.from(values).sort();
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function inkOf(gray, width, height, minContrast) {
  const ring = ringOf(gray, width, height);
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

function place(digit, layout, fieldHeight, fieldWidth, centreRow, centreCol) {
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
    top = pyRound(centreRow - rowMoment / mass);
    left = pyRound(centreCol - colMoment / mass);
  } else {
    top = Math.floor((fieldHeight - height + 1) / 2);
    left = Math.floor((fieldWidth - width + 1) / 2);
  }
  top = Math.min(Math.max(top, 0), fieldHeight - height);
  left = Math.min(Math.max(left, 0), fieldWidth - width);
  const out = new Float32Array(fieldHeight * fieldWidth);
  for (let y = 0; y < height; y++) out.set(data.subarray(y * width, (y + 1) * width), (top + y) * fieldWidth + left);
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
