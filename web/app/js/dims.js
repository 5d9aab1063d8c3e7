// More than two latent dims: which two the map shows (x and y), and a slider for each of the others, as
// the desktop app has. Shown only for models with more than two dims. The rules are state.js's.
const $ = id => document.getElementById(id);
const SLIDER_TICKS = 1000;

export function createDims(app) {
  const { state } = app;
  const box = $('dims');
  let sliders = new Map();  // dim -> {input, label, range}

  const toTicks = ([low, high], value) => Math.round(Math.min(1, Math.max(0, (value - low) / (high - low))) * SLIDER_TICKS);
  const fromTicks = ([low, high], ticks) => low + (high - low) * ticks / SLIDER_TICKS;

  /** The controls for the model in use (after a load or a change of the shown dims). */
  function rebuild() {
    const dim = state.model?.dim ?? 0;
    box.hidden = dim <= 2;
    if (box.hidden) return;
    for (const [id, value] of [['dim-x', state.dims[0]], ['dim-y', state.dims[1]]]) {
      $(id).replaceChildren(...Array.from({ length: dim }, (_, d) => new Option(`z[${d}]`, d)));
      $(id).value = value;
    }
    sliders = new Map();
    const rows = state.sliderDims().map(({ dim: d, range }) => {
      const row = document.createElement('label');
      const label = document.createElement('span');
      const input = document.createElement('input');
      Object.assign(input, { type: 'range', min: 0, max: SLIDER_TICKS, step: 1 });
      input.dataset.dim = d;
      input.addEventListener('input', () => {
        app.preview.move(state.withDimValue(d, fromTicks(range, Number(input.value))));
        app.landscape.update();  // a layer of a model with more dims depends on the others' values
      });
      row.append(label, input);
      sliders.set(d, { input, label, range });
      return row;
    });
    $('dim-sliders').replaceChildren(...rows);
    show();
  }

  /** The sliders follow the cursor (a hover, a sample, a grid click). */
  function show() {
    if (box.hidden || !state.cursor) return;
    for (const [d, { input, label, range }] of sliders) {
      input.value = toTicks(range, state.cursor[d]);
      label.textContent = `z[${d}] = ${state.cursor[d].toFixed(2)}`;
    }
  }

  /** The x or y select changed: the map shows the new pair (a pick equal to the other axis is undone). */
  function pick() {
    const x = Number($('dim-x').value), y = Number($('dim-y').value);
    if (x === y) { rebuild(); return; }
    state.setDims(x, y);
    rebuild();
    app.neighbours.rebuild();
    app.map.fitView();
  }

  return { rebuild, show, pick };
}
