// Computes the map's density layers (explain.js: the prior's and the aggregate posterior's log-density)
// off the page's thread, so the hover frames never wait on them. Messages: {atlas: {means, logvars}} once
// per model; then {id, layer, xRange, yRange, cols, rows, dims, base, prior, dim, constants} -> {id, values}
// or {id, error}.
import { LayerGrid, aggregateLogDensity, priorLogDensity } from './explain.js';

let atlas = null;

onmessage = ({ data }) => {
  if ('atlas' in data) { atlas = data.atlas; return; }
  const { id, layer, xRange, yRange, cols, rows, dims, base, prior, dim, constants } = data;
  try {
    const grid = new LayerGrid(xRange, yRange, cols, rows, constants);
    const values = layer === 'prior' ? priorLogDensity(prior, dim, grid, dims, base)
      : aggregateLogDensity(atlas.means, atlas.logvars, grid, dims, base, constants);
    postMessage({ id, values }, [values.buffer]);
  } catch (error) {
    postMessage({ id, error: error.message });
  }
};
