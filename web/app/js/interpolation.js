// Interpolation: the A and B endpoints, the strip of decodes between them, and playing the path there
// and back with the cursor.
import { interpolationPath } from './latent.js';
import { drawStrip as paintStrip, formatZ } from './pictures.js';
import { playStep } from './state.js';

const $ = id => document.getElementById(id);
const STRIP_WIDTH = 270;   // CSS pixels
const PLAY_FRAMES = 48;    // steps from A to B while playing

export function createInterpolation(app) {
  const { state } = app;
  const stepsField = $('interp-steps');

  /** The controls take the shared rules' steps range and methods (config.json "explorer"). */
  function configure() {
    [stepsField.min, stepsField.max] = state.rules.interpolation_steps;
    $('interp-method').replaceChildren(...state.rules.interpolation_methods.map(m => new Option(m, m)));
    $('interp-method').value = state.interpMethod;
  }

  function showEnds() {
    const { a, b } = state.ends;
    $('interp-ends').textContent = `A = ${a ? `(${formatZ(a)})` : '–'} · B = ${b ? `(${formatZ(b)})` : '–'}`;
  }

  function setEnd(which, point) {
    if (!point) return;
    state.setEnd(which, point);
    showEnds();
    app.map.drawOverlay();
    app.urlState.changed();
    if (state.hasBothEnds) drawStrip();
  }

  async function drawStrip() {
    const steps = state.interpolationSteps(stepsField.value, stepsField.defaultValue);
    const path = interpolationPath(state.ends.a, state.ends.b, steps, state.interpMethod);
    const model = state.model;
    const images = await state.work.track(model.decode(path));
    if (model !== state.model) return;  // a model switch came between: the strip belonged to the old one
    paintStrip($('strip'), images, steps, model.imageShape, STRIP_WIDTH);
  }

  function setMethod(method) {
    state.setInterpolationMethod(method);
    app.map.drawOverlay();
    if (state.hasBothEnds) drawStrip();
  }

  function stop() {
    state.playing = false;
    $('play-button').textContent = 'Play';
  }

  async function play() {
    if (state.playing) { stop(); return; }
    if (!state.model) return;
    state.fillEnds();
    showEnds();
    app.map.drawOverlay();
    await drawStrip();
    state.playing = true;
    $('play-button').textContent = 'Pause';
    const model = state.model;
    for (let i = 0; state.playing && state.model === model; i++) {
      const path = interpolationPath(state.ends.a, state.ends.b, PLAY_FRAMES + 1, state.interpMethod);
      const at = playStep(i, PLAY_FRAMES) * model.dim;
      await app.preview.move(path.slice(at, at + model.dim));
      state.interpolationFrames++;
      await new Promise(resolve => requestAnimationFrame(resolve));
    }
  }

  return { configure, showEnds, setEnd, setMethod, drawStrip, stop, play };
}
