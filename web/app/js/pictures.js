// Decoded images onto canvases: one canvas pixel per model pixel, then scaled up without smoothing,
// so previews and tiles stay crisp.
export const SIDE = 28;
export const PIXELS = SIDE * SIDE;

const scratch = document.createElement('canvas');
scratch.width = scratch.height = SIDE;
const scratchContext = scratch.getContext('2d');
const scratchImage = scratchContext.createImageData(SIDE, SIDE);

/** A latent vector as the page prints it. */
export const formatZ = values => Array.from(values, v => v.toFixed(3)).join(', ');

/** One image (PIXELS values in [0, 1]) into the box (x, y, w, h) of `canvas`. */
export function drawScaled(canvas, pixels, x, y, w, h) {
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
export function drawMosaic(canvas, images, n, tile) {
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

export function clearCanvas(canvas) {
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
}
