// Uncertainty: the encoded (or drawn) image's posterior q(z|x) on the map as its rules' 1-sigma and 2-sigma
// ellipses, and a handful of posterior samples decoded beside the mean's decode. The ellipses and the
// samples are explain.js's (runtime/explain.py's port); this module draws them.
import { posteriorEllipses, posteriorSamples } from './explain.js';
import { clearCanvas, drawStrip } from './pictures.js';

const $ = id => document.getElementById(id);
const SAMPLES_WIDTH = 270;  // CSS pixels of the mean + samples strip

export function createUncertainty(app) {
  const { state } = app;
  let seed = 0;

  /** [cx, cy, rx, ry] per sigma of the encoded image's posterior in the map's dims, or none. */
  function ellipses() {
    if (!state.uncertainty || !state.encoded) return [];
    return posteriorEllipses(state.encoded.mean, state.encoded.logvar, state.dims, state.rules.posterior_sigmas);
  }

  /** Decodes the rules' number of posterior samples; the strip shows the mean's decode, then theirs. */
  async function decodeSamples() {
    if (!state.model || !state.encoded) return null;
    const model = state.model, { mean, logvar, reconstruction } = state.encoded;
    const draws = posteriorSamples(mean, logvar, state.rules.posterior_samples, seed++);
    const images = await state.work.track(model.decode(draws.data));
    if (model !== state.model) return null;
    const strip = new Float32Array(reconstruction.length + images.length);
    strip.set(reconstruction);
    strip.set(images, reconstruction.length);
    drawStrip($('samples'), strip, draws.shape[0] + 1, model.imageShape, SAMPLES_WIDTH);
    state.samples = { z: Float32Array.from(draws.data), images: Float32Array.from(images) };
    return state.samples;
  }

  /** A new encoding: with uncertainty on, its samples are decoded at once. */
  function encoded() {
    if (state.uncertainty) return decodeSamples();
    return null;
  }

  function setOn(on) {
    state.uncertainty = Boolean(on);
    $('uncertainty').checked = state.uncertainty;
    app.map.drawOverlay();
    app.urlState?.changed();
    if (state.uncertainty) return decodeSamples();
    return null;
  }

  function clear() {
    state.samples = null;
    clearCanvas($('samples'));
  }

  return { ellipses, decodeSamples, encoded, setOn, clear };
}
