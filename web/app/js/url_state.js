// The address carries what the page shows (runtime/view_state.py's format, read and written by
// view_state.js): the model, a second model, the map's dims, the cursor, the view, A and B, the layer,
// the point colouring, the grid's n and source, uncertainty and k. Each change rewrites the address
// (history.replaceState, throttled); opening a link restores it. Whatever in a link is malformed or
// hostile is clamped or dropped by view_state.js with a one-line message each; the page shows them and
// opens what remains. The page's own parameters (provider, threads, seed, bundle) stay as they are.
import { showMessage } from './messages.js';
import { PAGE_PARAMS, throttle, viewOfRanges } from './state.js';
import { defaultState, fromQuery, toQuery } from './view_state.js';

const $ = id => document.getElementById(id);
const SCHEMA_URL = new URL('../view_state.schema.json', import.meta.url);
const WRITE_MS = 200;  // at most one address change per this many ms while the cursor moves

export function createUrlState(app) {
  const { state } = app;
  let schema = null, writing = false;

  /** The view-state schema (the site's view_state.schema.json); the grid fields take its defaults. */
  async function load() {
    const response = await fetch(SCHEMA_URL);
    if (!response.ok) throw new Error(`${SCHEMA_URL}: HTTP ${response.status}; build the site with 'latent-atlas web'`);
    schema = await response.json();
    const { n, source } = defaultState(schema).grid;
    $('grid-n').defaultValue = $('grid-n').value = n;
    $('grid-source').value = source;
  }

  function context(latentDim = null) {
    return { schema, rules: state.config.view_state, models: state.config.models.map(m => m.name), latentDim };
  }

  /** [view state, messages] of the address, for a model of `latentDim` dims (null: not known yet). */
  function read(latentDim = null) {
    const query = new URLSearchParams(location.search);
    for (const name of PAGE_PARAMS) query.delete(name);
    return fromQuery(query.toString(), context(latentDim));
  }

  function gridState() {
    return { n: state.gridSize($('grid-n').value, $('grid-n').defaultValue), source: $('grid-source').value };
  }

  function write() {
    if (!writing || !state.model) return;
    const kept = new URLSearchParams();
    for (const [key, value] of new URLSearchParams(location.search)) if (PAGE_PARAMS.includes(key)) kept.append(key, value);
    const own = kept.toString(), view = toQuery(state.viewState(app.map.size(), gridState()), context(state.model.dim));
    const query = [own, view].filter(Boolean).join('&');
    history.replaceState(history.state, '', `${location.pathname}${query ? `?${query}` : ''}${location.hash}`);
    state.urlWrites = (state.urlWrites ?? 0) + 1;
  }

  const changed = throttle(write, WRITE_MS);

  /** Puts a link's state on the page once its model is loaded; resolves when all of it is shown. */
  async function restore(messages) {
    const [view, more] = read(state.model.dim);
    const all = [...new Set([...messages, ...more])];
    const problems = [];
    if (view.dims[0] !== 0 || view.dims[1] !== 1) {
      state.setDims(...view.dims);
      app.dims.rebuild();
      app.neighbours.rebuild();
    }
    if (view.view) state.view = viewOfRanges(view.view, app.map.size());
    state.setLayer(view.layer);
    $('layer-select').value = view.layer;
    try {
      app.landscape.setPoints(view.points);
    } catch (error) {
      problems.push(`points: ${error.message}; class shown`);
    }
    state.setNeighbours(view.neighbours);
    $('neighbours-k').value = state.neighbours;
    $('grid-n').value = view.grid.n;
    $('grid-source').value = view.grid.source;
    for (const end of ['a', 'b']) if (view[end]) app.interpolation.setEnd(end, Float32Array.from(view[end]));
    app.map.buildLegend();
    app.map.drawPoints();
    if (view.cursor) await app.preview.move(Float32Array.from(view.cursor));
    if (view.compare) await app.compare.open(app.sourceOf(view.compare), view.compare, view.compare, text => problems.push(`compare: ${text}`));
    if (view.uncertainty) app.uncertainty.setOn(true);
    const shown = [...all, ...problems];
    if (shown.length) showMessage(`This link's view state was repaired:\n${shown.join('\n')}`);
    state.urlMessages = shown;
    writing = true;
    write();
  }

  /** A state that came without a model to restore it on (its model failed to load): its messages. */
  function abandon(messages) {
    state.urlMessages = messages;
    writing = true;
  }

  return { load, read, restore, abandon, changed };
}
