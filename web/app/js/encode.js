// Encoding pictures (a file, a drop, a paste, the drawing pad's canvas): preprocessed as the runtime
// does (preprocess.js), encoded, its mean decoded again, and its point marked on the map.
import { showMessage } from './messages.js';
import { drawScaled, fitCanvas, formatZ } from './pictures.js';
import { preprocess, readPicture } from './preprocess.js';

const $ = id => document.getElementById(id);
const ENCODED_PIXELS = 84;  // the input and reconstruction canvases' longer side

export function createEncoder(app) {
  const { state } = app;

  /** RGBA bytes -> the model in use's input, C x H x W (its image_shape). */
  function preprocessRgba(rgba, width, height) {
    const constants = state.config.preprocessing, shape = state.model.imageShape;
    const picture = readPicture(rgba, width, height, constants.work_side, shape[0]);
    return preprocess(picture.planes, picture.width, picture.height, state.layout, constants, shape);
  }

  async function encodeRgba(rgba, width, height) {
    const input = preprocessRgba(rgba, width, height);
    const model = state.model;
    const { mean, logvar } = await state.work.track(model.encode(input));
    const reconstruction = await state.work.track(model.decode(mean));
    if (model !== state.model) return null;  // a model switch came between: the point belonged to the old one
    state.encoded = { input, mean: Float32Array.from(mean), logvar: Float32Array.from(logvar), reconstruction: Float32Array.from(reconstruction) };
    for (const [id, image] of [['encoded-input', input], ['reconstruction', reconstruction]]) {
      const canvas = $(id);
      fitCanvas(canvas, model.imageShape, ENCODED_PIXELS);
      drawScaled(canvas, image, 0, 0, canvas.width, canvas.height, model.imageShape);
    }
    $('encoded-z').textContent = `z = (${formatZ(mean)})`;
    app.map.drawOverlay();
    await app.uncertainty.encoded();
    return state.encoded;
  }

  async function encodeBlob(blob) {
    let bitmap;
    try {
      bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
    } catch {
      showMessage(`${blob.name || 'the pasted data'}: not an image the browser can decode (expected PNG, JPEG, GIF, BMP, WebP)`);
      return null;
    }
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const ctx = canvas.getContext('2d', { colorSpace: 'srgb', willReadFrequently: true });
    ctx.drawImage(bitmap, 0, 0);
    const data = ctx.getImageData(0, 0, bitmap.width, bitmap.height, { colorSpace: 'srgb' }).data;
    showMessage('');
    return encodeRgba(data, bitmap.width, bitmap.height);
  }

  /** The first image of a drop or paste, if any. */
  function encodeTransfer(files, items) {
    const file = files?.[0] ?? [...(items ?? [])].find(i => i.type.startsWith('image/'))?.getAsFile();
    if (file) encodeBlob(file);
  }

  function clearResult() {
    state.encoded = null;
    app.uncertainty.clear();
    app.map.drawOverlay();
  }

  return { preprocessRgba, encodeRgba, encodeBlob, encodeTransfer, clearResult };
}
