// The grid: n x n decodes over the map's visible region or the bundle's percentile box; a click on a
// tile moves the cursor there.
import { gridPoints } from './latent.js';
import { updateStatus } from './messages.js';
import { drawMosaic } from './pictures.js';
import { tileAt } from './state.js';

const $ = id => document.getElementById(id);
const GRID_PIXELS = 280;  // the grid canvas's side

export function createGrid(app) {
  const { state } = app;
  const canvas = $('grid');
  const sizeField = $('grid-n');

  /** The size and source controls take the shared rules' range and choices (config.json "explorer"). */
  function configure() {
    [sizeField.min, sizeField.max] = state.rules.grid_sizes;
    $('grid-source').replaceChildren(...Object.entries(state.rules.grid_sources).map(([value, name]) => new Option(name, value)));
  }

  /** Decodes the grid the controls ask for; returns the time it took, ms. */
  async function decode() {
    if (!state.model) return;
    const n = state.gridSize(sizeField.value, sizeField.defaultValue);
    const { extent, base, dims } = state.gridRequest(n, $('grid-source').value, app.map.visibleExtent());
    const points = gridPoints(n, extent, base, dims);
    const started = performance.now();
    const model = state.model;
    const images = await state.work.track(model.decode(points));
    if (model !== state.model) return;  // a model switch came between: the grid belonged to the old one
    const tile = Math.max(1, Math.floor(GRID_PIXELS / n));
    drawMosaic(canvas, images, n, tile, model.imageShape);
    const elapsed = performance.now() - started;
    state.grid = { n, extent, points, tile, tiles: n * n, ms: elapsed, images: Float32Array.from(images) };
    state.lastDecodeMs = elapsed;
    updateStatus(state);
    return elapsed;
  }

  function click(event) {
    if (!state.grid) return;
    const rect = canvas.getBoundingClientRect();
    const index = tileAt((event.clientX - rect.left) / rect.width, (event.clientY - rect.top) / rect.height, state.grid.n);
    if (index >= 0) app.preview.move(state.tilePoint(index));
  }

  return { configure, decode, click };
}
