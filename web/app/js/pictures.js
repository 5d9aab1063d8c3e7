// Decoded images onto canvases: one canvas pixel per model pixel, then scaled up without smoothing,
// so previews and tiles stay crisp. An image is what the decoder gives, C x H x W per image (channels
// first, as ONNX lays it out) in [0, 1]; `shape` is the bundle's image_shape [C, H, W], C being 1 (grey)
// or 3 (colour).

/** The shape of the bundles that do not state one: grey 28 x 28 (runtime/image_shape.py SEED_IMAGE_SHAPE). */
export const SEED_SHAPE = Object.freeze([1, 28, 28]);

/** Values per image of a shape. */
export const pixelCount = ([c, h, w]) => c * h * w;

/** A latent vector as the page prints it. */
export const formatZ = values => Array.from(values, v => v.toFixed(3)).join(', ');

const byte = v => Math.round(Math.min(1, Math.max(0, v)) * 255);

/** One CHW image (from `pixels[offset]`) into RGBA bytes `data` of rows `rowPixels` wide, at (x0, y0). */
export function writeRgba(data, rowPixels, x0, y0, pixels, offset, [c, h, w]) {
  const plane = h * w;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const at = 4 * ((y0 + y) * rowPixels + x0 + x), p = offset + y * w + x;
      const r = byte(pixels[p]);
      data[at] = r;
      data[at + 1] = c === 3 ? byte(pixels[p + plane]) : r;
      data[at + 2] = c === 3 ? byte(pixels[p + 2 * plane]) : r;
      data[at + 3] = 255;
    }
  }
}

/** `count` images laid out `cols` to a row, into a new canvas of one pixel per model pixel. */
function mosaicCanvas(images, count, cols, shape) {
  const [, h, w] = shape;
  const rows = Math.ceil(count / cols);
  const mosaic = document.createElement('canvas');
  mosaic.width = cols * w;
  mosaic.height = rows * h;
  const context = mosaic.getContext('2d');
  const image = context.createImageData(mosaic.width, mosaic.height);
  const size = pixelCount(shape);
  for (let i = 0; i < count; i++) writeRgba(image.data, mosaic.width, (i % cols) * w, Math.floor(i / cols) * h, images, i * size, shape);
  context.putImageData(image, 0, 0);
  return mosaic;
}

/** One image into the box (x, y, w, h) of `canvas`. */
export function drawScaled(canvas, pixels, x, y, w, h, shape = SEED_SHAPE) {
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(mosaicCanvas(pixels, 1, 1, shape), x, y, w, h);
}

/** A row of `count` images into `canvas` (one pixel per model pixel), shown `cssWidth` CSS pixels wide. */
export function drawStrip(canvas, images, count, shape, cssWidth) {
  const [, h, w] = shape;
  canvas.width = w * count;
  canvas.height = h;
  canvas.style.width = `${cssWidth}px`;
  canvas.style.height = `${cssWidth * h / (w * count)}px`;
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(mosaicCanvas(images, count, count, shape), 0, 0);
}

/** n x n decoded images -> one canvas, tile pixels per model-pixel row: the tiles are written into one
 * image and scaled once (400 separate draws cost more than the decode). */
export function drawMosaic(canvas, images, n, tile, shape = SEED_SHAPE) {
  const [, h, w] = shape;
  const tileWidth = Math.max(1, Math.round(tile * w / h));
  canvas.width = tileWidth * n;
  canvas.height = tile * n;
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(mosaicCanvas(images, n * n, n, shape), 0, 0, canvas.width, canvas.height);
}

/** Sizes `canvas` to hold one image of `shape` within a box of `side` pixels, keeping its aspect. */
export function fitCanvas(canvas, shape, side) {
  const [, h, w] = shape;
  const scale = side / Math.max(h, w);
  canvas.width = Math.round(w * scale);
  canvas.height = Math.round(h * scale);
}

export function clearCanvas(canvas) {
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
}

/** Atlas thumbnails (atlas_extra.npz: uint8 [M, h, w] grey or [M, h, w, 3] colour) of `indices`, in a row
 * into `canvas` (one pixel per thumbnail pixel, `gap` pixels apart); scaled by CSS to `cssHeight`. */
export function drawThumbnails(canvas, thumbnails, indices, gap, cssHeight) {
  const [, h, w] = thumbnails.shape, colour = thumbnails.shape.length === 4;
  const size = h * w * (colour ? 3 : 1), data = thumbnails.data;
  canvas.width = Math.max(1, indices.length * (w + gap) - gap);
  canvas.height = h;
  canvas.style.height = `${cssHeight}px`;
  canvas.style.width = `${cssHeight * canvas.width / h}px`;
  const ctx = canvas.getContext('2d');
  const image = ctx.createImageData(canvas.width, h);
  indices.forEach((index, slot) => {
    const x0 = slot * (w + gap), offset = index * size;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const at = 4 * (y * canvas.width + x0 + x), p = offset + (y * w + x) * (colour ? 3 : 1);
        image.data[at] = data[p];
        image.data[at + 1] = data[colour ? p + 1 : p];
        image.data[at + 2] = data[colour ? p + 2 : p];
        image.data[at + 3] = 255;
      }
    }
  });
  ctx.putImageData(image, 0, 0);
}

/** RGB bytes (3 per pixel, an h x w image's, as explain.js mapColours gives them) into `canvas`, fitted
 * into a box of `box` pixels. */
export function drawRgb(canvas, rgb, [, h, w], box) {
  const scratch = document.createElement('canvas');
  scratch.width = w; scratch.height = h;
  const context = scratch.getContext('2d');
  const image = context.createImageData(w, h);
  for (let i = 0; i < w * h; i++) {
    image.data.set(rgb.subarray(3 * i, 3 * i + 3), 4 * i);
    image.data[4 * i + 3] = 255;
  }
  context.putImageData(image, 0, 0);
  fitCanvas(canvas, [1, h, w], box);
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(scratch, 0, 0, canvas.width, canvas.height);
}
