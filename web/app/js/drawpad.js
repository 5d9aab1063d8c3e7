// The drawing pad: black ink on white, encoded live as the pen moves, one encode at a time (the latest
// strokes win, as the cursor's frames do).
import { LatestOnlyQueue, padAvailable } from './state.js';

const INK_WIDTH = 16;

export function createDrawPad(app) {
  const { state } = app;
  const pad = document.getElementById('pad');
  const ctx = pad.getContext('2d', { willReadFrequently: true });
  const pixels = () => ctx.getImageData(0, 0, pad.width, pad.height).data;
  const encodes = new LatestOnlyQueue(() => app.encoder.encodeRgba(pixels(), pad.width, pad.height));
  let drawing = false;

  function clear() {
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, pad.width, pad.height);
  }

  function encode() {
    state.encoding = true;
    return encodes.push(true).finally(() => { state.encoding = encodes.busy; });
  }

  function at(event) {
    const rect = pad.getBoundingClientRect();
    return [(event.clientX - rect.left) * pad.width / rect.width, (event.clientY - rect.top) * pad.height / rect.height];
  }

  /** The pad is for grey models: on a colour one it is covered by a note that says so. */
  function configure() {
    const available = !state.model || padAvailable(state.model.imageShape);
    document.getElementById('pad-note').hidden = available;
    pad.style.opacity = available ? '' : '0.3';
  }

  function pointerDown(event) {
    if (!state.model || !padAvailable(state.model.imageShape)) return;
    pad.setPointerCapture(event.pointerId);
    drawing = true;
    ctx.strokeStyle = '#000'; ctx.lineWidth = INK_WIDTH; ctx.lineCap = ctx.lineJoin = 'round';
    ctx.beginPath();
    ctx.moveTo(...at(event));
    ctx.lineTo(...at(event));
    ctx.stroke();
  }

  function pointerMove(event) {
    if (!drawing) return;
    ctx.lineTo(...at(event));
    ctx.stroke();
    encode();
  }

  function pointerUp() {
    if (!drawing) return;
    drawing = false;
    encode();
  }

  function erase() {
    clear();
    app.encoder.clearResult();
  }

  return { pad, configure, clear, erase, pixels: () => Array.from(pixels()), pointerDown, pointerMove, pointerUp };
}
