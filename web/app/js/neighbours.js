// Real neighbours: the k test images whose latent means are nearest the cursor (exact, in the full latent
// space: explain.js's NeighbourIndex, runtime/explain.py's port), their thumbnails from the bundle's
// atlas_extra.npz and their labels. Without the file the panel says why, and still names the labels.
import { NeighbourIndex } from './explain.js';
import { drawThumbnails } from './pictures.js';
import { extraProblem } from './state.js';

const $ = id => document.getElementById(id);
const GAP = 2;            // thumbnail pixels between two thumbnails
const STRIP_HEIGHT = 30;  // CSS pixels

export function createNeighbours(app) {
  const { state } = app;
  let index = null, indexed = null;  // the index, and the model it was built for

  /** The index over the atlas' means, bucketed on the map's dims (after a load or a change of dims). */
  function rebuild() {
    index = null;
    state.nearest = null;
    if (!state.model || !state.model.atlas.count) return;
    const { z, count } = state.model.atlas;
    index = new NeighbourIndex({ data: z, shape: [count, state.model.dim] }, state.dims, state.config.explain);
    indexed = state.model;
    $('neighbours-k').value = state.neighbours;
  }

  /** The cursor's neighbours, found and shown (each cursor frame). */
  function show(z) {
    if (!index || indexed !== state.model || !state.neighbours) return;  // (a switch rebuilds it)
    const [indices, distances] = index.query(z, state.neighbours);
    state.nearest = { indices: Array.from(indices), distances: Array.from(distances) };
    const { extra, labels } = state.model.atlas;
    const names = state.model.classNames;
    const problem = extraProblem(extra, 'no thumbnails');
    if (!problem) drawThumbnails($('neighbours-strip'), extra.arrays.thumbnails, state.nearest.indices, GAP, STRIP_HEIGHT);
    $('neighbours-strip').style.display = problem ? 'none' : '';  // (CSS gives canvases display: block)
    const shown = state.nearest.indices.map(i => (names.length ? names[labels[i]] ?? labels[i] : `#${i}`)).join(' · ');
    $('neighbours-labels').textContent = problem ? `${problem}; labels: ${shown}` : shown;
  }

  function setK(value) {
    state.setNeighbours(value);
    $('neighbours-k').value = state.neighbours;
    if (state.cursor) show(state.cursor);
    app.map.drawOverlay();
    app.urlState?.changed();
  }

  function configure() {
    [$('neighbours-k').min, $('neighbours-k').max] = state.rules.neighbour_counts;
    $('neighbours-k').value = state.neighbours;
  }

  return { rebuild, show, setK, configure };
}
