// The cursor's preview: each move paints the map's cursor and coordinates at once and queues a decode;
// the queue (state.js) decodes the latest move only, so a fast mouse never queues stale frames.
import { updateStatus } from './messages.js';
import { drawScaled, formatZ } from './pictures.js';
import { ModelWork } from './state.js';

const $ = id => document.getElementById(id);

export function createPreview(app) {
  const { state } = app;

  // A frame: from the move to the painted map cursor, coordinates, preview and status bar.
  async function decodeFrame({ model, z, started }) {
    if (model !== state.model) return;  // a model switch came between: its own start frame follows
    const decodeStart = performance.now();
    const image = await model.decode(z);
    const decodeMs = performance.now() - decodeStart;
    drawScaled($('preview'), image, 0, 0, 280, 280);
    state.recordFrame(z, image, decodeMs, performance.now() - started, performance.now());
    updateStatus(state);
  }

  state.work = new ModelWork(decodeFrame);

  /** Moves the cursor to a full latent point; resolves once its image (or a later one) is painted. */
  function move(point) {
    const started = performance.now();
    const z = state.moveCursor(point);
    app.map.drawOverlay();
    $('coordinates').textContent = `z = (${formatZ(z)})`;
    return state.work.frames.push({ model: state.model, z, started });
  }

  function clear() {
    $('coordinates').textContent = 'z = –';
  }

  return { move, clear };
}
