// Two models side by side: a second bundle (a bundled model or a folder from disk) of the same latent size
// under the one cursor: both decodes and their difference image (explain.js), its atlas on the map (a
// toggle), and both bundles' headline metrics. A bundle of another latent size is refused in one line.
import { fileSource } from './bundle.js';
import { differenceImage, mapColours } from './explain.js';
import { showMessage } from './messages.js';
import { drawRgb, drawScaled, fitCanvas } from './pictures.js';
import { compareProblem, headlineRows } from './state.js';

const $ = id => document.getElementById(id);
const TILE = 84;  // each picture's longer side, canvas pixels

export function createCompare(app) {
  const { state } = app;

  function configure() {
    $('compare-select').replaceChildren(new Option('none', ''), ...state.config.models.map(m => new Option(m.name, m.name)));
  }

  function showPanel() {
    const on = Boolean(state.compare);
    $('compare-panel').hidden = !on;
    $('compare-select').value = on && state.config.models.some(m => m.name === state.compare.name) ? state.compare.name : '';
    if (!on) return;
    $('compare-a-name').textContent = state.modelLabel;
    $('compare-b-name').textContent = state.compare.label;
    const rows = headlineRows(state.rules, state.model.manifest.metrics, state.compare.model.manifest.metrics);
    const head = document.createElement('tr');
    for (const text of ['', state.modelLabel, state.compare.label]) head.append(Object.assign(document.createElement('th'), { textContent: text }));
    $('compare-metrics').replaceChildren(head, ...rows.map(cells => {
      const row = document.createElement('tr');
      for (const text of cells) row.append(Object.assign(document.createElement('td'), { textContent: text }));
      return row;
    }));
  }

  /** Opens `source` as the second model; `name` is what the view state records (a bundled name or a
   * location). Resolves to whether it is now compared; `report` takes the one-line reason when not. */
  async function open(source, name, label = name ?? source.label, report = showMessage) {
    if (!state.model) return false;
    let model;
    try {
      model = await app.loader.openModel(source);
    } catch (error) {
      report(error.message);
      return false;
    }
    const problem = compareProblem(state.model, model, label);
    if (problem) {
      await model.release();
      report(problem);
      return false;
    }
    await close();
    state.compare = { model, name, label };
    showPanel();
    app.map.drawPoints();
    await frame(state.cursor);
    return true;
  }

  async function close() {
    const previous = state.compare;
    state.compare = null;
    state.lastCompare = null;
    showPanel();
    if (previous) {
      await state.work.idle();
      await previous.model.release();
      app.map.drawPoints();
    }
  }

  /** After a switch of the first model: a second model of another latent size goes, with the message. */
  async function recheck() {
    if (!state.compare) return;
    const problem = compareProblem(state.model, state.compare.model, state.compare.label);
    if (problem) { showMessage(problem); await close(); } else showPanel();
  }

  /** The cursor's decode under the second model beside the first's, and their difference. */
  async function frame(z, firstImage = state.lastImage) {
    const compare = state.compare;
    if (!compare || !z || !firstImage) return;
    const image = await compare.model.decode(z);
    if (state.compare !== compare) return;
    const shape = state.model.imageShape;
    const difference = differenceImage(firstImage, image);
    state.lastCompare = { z: Float32Array.from(z), image: Float32Array.from(image), difference };
    for (const [id, pixels, s] of [['compare-a', firstImage, shape], ['compare-b', image, compare.model.imageShape]]) {
      fitCanvas($(id), s, TILE);
      drawScaled($(id), pixels, 0, 0, $(id).width, $(id).height, s);
    }
    // One colour per pixel: a colour model's difference is averaged over its channels.
    const [channels, h, w] = shape, plane = h * w;
    const perPixel = channels === 1 ? difference : Float32Array.from({ length: plane }, (_, i) =>
      (difference[i] + difference[i + plane] + difference[i + 2 * plane]) / 3);
    const [low, high] = state.rules.difference_range;
    drawRgb($('compare-diff'), mapColours(perPixel, low, high, state.rules.layer_colour_maps.difference, state.rules), shape, TILE);
  }

  function pick(name) {
    if (!name) { close(); app.urlState?.changed(); return Promise.resolve(false); }
    return open(app.sourceOf(name), name).finally(() => app.urlState?.changed());
  }

  function openFiles(files) {
    return open(fileSource(files), null);
  }

  function setOverlay(on) {
    state.compareOverlay = Boolean(on);
    app.map.drawPoints();
  }

  return { configure, open, close, recheck, frame, pick, openFiles, setOverlay };
}
