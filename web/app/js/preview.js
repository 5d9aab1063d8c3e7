// The cursor's preview: each move paints the map's cursor and coordinates at once and queues a decode;
// the queue (state.js) decodes the latest move only, so a fast mouse never queues stale frames. Prior
// samples move the cursor too.
import { priorSample } from './latent.js';
import { updateStatus } from './messages.js';
import { clearCanvas, drawScaled, fitCanvas, formatZ } from './pictures.js';
import { ModelWork } from './state.js';

const $ = id => document.getElementById(id);
const PREVIEW_PIXELS = 280;  // the preview canvas's longer side

/** `seed`: the first prior sample's (the page's ?seed=), each sample the next. */
export function createPreview(app, seed) {
  const { state } = app;
  let sampleSeed = seed;

  // A frame: from the move to the painted map cursor, coordinates, preview and status bar.
  async function decodeFrame({ model, z, started }) {
    if (model !== state.model) return;  // a model switch came between: its own start frame follows
    const decodeStart = performance.now();
    const image = await model.decode(z);
    const decodeMs = performance.now() - decodeStart;
    const canvas = $('preview');
    fitCanvas(canvas, model.imageShape, PREVIEW_PIXELS);
    drawScaled(canvas, image, 0, 0, canvas.width, canvas.height, model.imageShape);
    await app.compare.frame(z, image);
    state.recordFrame(z, image, decodeMs, performance.now() - started, performance.now());
    updateStatus(state);
  }

  state.work = new ModelWork(decodeFrame);

  /** Moves the cursor to a full latent point; resolves once its image (or a later one) is painted. */
  function move(point) {
    const started = performance.now();
    const z = state.moveCursor(point);
    app.neighbours.show(z);
    app.map.drawOverlay();
    app.dims.show();
    app.urlState.changed();
    $('coordinates').textContent = `z = (${formatZ(z)})`;
    return state.work.frames.push({ model: state.model, z, started });
  }

  /** One draw from the model's prior; the cursor jumps to it. */
  function sample() {
    if (!state.model) return;
    return move(priorSample(state.model.manifest.prior, state.model.dim, sampleSeed++));
  }

  function clear() {
    clearCanvas($('preview'));
    $('coordinates').textContent = 'z = –';
  }

  return { move, sample, clear };
}
