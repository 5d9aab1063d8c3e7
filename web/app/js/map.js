// The latent map: the atlas points coloured by class (or one grey cloud for an unlabelled bundle), the
// legend, the markers, and the pointer: hover or drag to move the cursor, wheel to zoom, right/middle or
// Alt-drag to pan, Shift/Ctrl+click to set A/B. The view's arithmetic is state.js's.
import { interpolationPath } from './latent.js';
import { legendRows, pannedView, pointGroups, toLatent, toScreen, visibleExtent, zoomedView } from './state.js';

const $ = id => document.getElementById(id);
const PATH_POINTS = 32;  // points of the A-B path the overlay draws

export function createMap(app) {
  const { state } = app;
  const pointsCanvas = $('map-points');
  const overlay = $('map-overlay');
  let drag = null;

  function size() {
    const rect = overlay.getBoundingClientRect();
    return { width: rect.width, height: rect.height, ratio: devicePixelRatio || 1 };
  }

  const screenOf = (x, y) => toScreen(state.view, size(), x, y);

  function sizeCanvas(canvas) {
    const { width, height, ratio } = size();
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const ctx = canvas.getContext('2d');
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    return ctx;
  }

  /** The atlas points of `model` in one path per colour group; `ring`: hollow (the second model's). */
  function drawAtlas(ctx, model, ring) {
    const { z, labels, count } = model.atlas;
    const dim = model.dim, [dx, dy] = state.dims;
    const colours = ring ? null : app.landscape.colours();
    if (colours) {
      for (let i = 0; i < count; i++) {
        const [sx, sy] = screenOf(z[i * dim + dx], z[i * dim + dy]);
        ctx.fillStyle = colours.css[i];
        ctx.fillRect(sx - 1.2, sy - 1.2, 2.4, 2.4);
      }
      return;
    }
    for (const { colour, label } of pointGroups(state.rules, model.classNames)) {
      ctx.beginPath();
      for (let i = 0; i < count; i++) {
        if (label !== null && labels[i] !== label) continue;
        const [sx, sy] = screenOf(z[i * dim + dx], z[i * dim + dy]);
        ctx.rect(sx - 1.2, sy - 1.2, 2.4, 2.4);
      }
      if (ring) { ctx.strokeStyle = colour; ctx.lineWidth = 0.6; ctx.stroke(); } else { ctx.fillStyle = colour; ctx.fill(); }
    }
  }

  function drawPoints() {
    const ctx = sizeCanvas(pointsCanvas);
    sizeCanvas(overlay);
    if (!state.model) return;
    ctx.globalAlpha = 0.55;
    drawAtlas(ctx, state.model, false);
    if (state.compare && state.compareOverlay) drawAtlas(ctx, state.compare.model, true);
    ctx.globalAlpha = 1;
    app.landscape.update();
    app.landscape.showLegend();
    drawOverlay();
    app.urlState?.changed();
  }

  /** The overlay's marks in screen coordinates, as shapes both the canvas and the SVG export draw: the A-B
   * path, A, B, the encoded point and its posterior ellipses, the cursor's neighbours and the cursor. */
  function markerShapes() {
    if (!state.model) return [];
    const shapes = [];
    const at = point => screenOf(...state.shown(point));
    const marker = (point, colour, label, r = 6) => {
      if (!point) return;
      const [cx, cy] = at(point);
      shapes.push({ kind: 'circle', cx, cy, r, stroke: colour, width: 2 });
      if (label) shapes.push({ kind: 'text', x: cx + r + 2, y: cy - r, text: label, fill: colour });
    };
    const { a, b } = state.ends, dim = state.model.dim;
    if (a && b) {
      const path = interpolationPath(a, b, PATH_POINTS, state.interpMethod);
      const points = Array.from({ length: PATH_POINTS }, (_, i) => at(path.subarray(i * dim, (i + 1) * dim)));
      shapes.push({ kind: 'polyline', points, stroke: '#444', width: 1.5, dash: [4, 3] });
    }
    marker(a, '#0a7d32', 'A');
    marker(b, '#b3261e', 'B');
    if (state.encoded) marker(state.encoded.mean, '#6a1b9a', 'encoded', 7);
    app.uncertainty.ellipses().forEach(([x, y, rx, ry], i) => {
      const [cx, cy] = screenOf(x, y);
      shapes.push({ kind: 'ellipse', cx, cy, rx: rx * state.view.scale, ry: ry * state.view.scale, stroke: '#6a1b9a',
        width: 2 - i * 0.8, dash: i ? [5, 3] : null });
    });
    for (const i of state.nearest?.indices ?? []) {
      const [cx, cy] = at(state.model.atlas.z.subarray(i * dim, (i + 1) * dim));
      shapes.push({ kind: 'circle', cx, cy, r: 4, stroke: '#111', width: 1 });
    }
    if (state.cursor) {
      const [x, y] = at(state.cursor);
      shapes.push({ kind: 'polyline', points: [[x - 9, y], [x + 9, y]], stroke: '#000', width: 1.5 });
      shapes.push({ kind: 'polyline', points: [[x, y - 9], [x, y + 9]], stroke: '#000', width: 1.5 });
    }
    return shapes;
  }

  function drawShape(ctx, shape) {
    if (shape.kind === 'text') {
      ctx.fillStyle = shape.fill; ctx.font = 'bold 12px system-ui'; ctx.fillText(shape.text, shape.x, shape.y);
      return;
    }
    ctx.strokeStyle = shape.stroke; ctx.lineWidth = shape.width; ctx.setLineDash(shape.dash ?? []);
    ctx.beginPath();
    if (shape.kind === 'circle') ctx.arc(shape.cx, shape.cy, shape.r, 0, 2 * Math.PI);
    else if (shape.kind === 'ellipse') ctx.ellipse(shape.cx, shape.cy, shape.rx, shape.ry, 0, 0, 2 * Math.PI);
    else shape.points.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    ctx.stroke();
    ctx.setLineDash([]);
  }

  function drawOverlay() {
    const ctx = overlay.getContext('2d');
    const { width, height } = size();
    ctx.clearRect(0, 0, width, height);
    for (const shape of markerShapes()) drawShape(ctx, shape);
  }

  /** The same shapes as SVG elements: [{kind (element name), attributes}]. */
  function svgShapes() {
    return markerShapes().map(shape => {
      const stroke = { stroke: shape.stroke, 'stroke-width': shape.width, ...(shape.dash ? { 'stroke-dasharray': shape.dash.join(' ') } : {}) };
      if (shape.kind === 'text') return { kind: 'text', attributes: { x: shape.x, y: shape.y, fill: shape.fill, 'font-weight': 'bold', 'font-size': 12, 'font-family': 'system-ui' }, text: shape.text };
      if (shape.kind === 'circle') return { kind: 'circle', attributes: { cx: shape.cx, cy: shape.cy, r: shape.r, ...stroke } };
      if (shape.kind === 'ellipse') return { kind: 'ellipse', attributes: { cx: shape.cx, cy: shape.cy, rx: shape.rx, ry: shape.ry, ...stroke } };
      return { kind: 'polyline', attributes: { points: shape.points.map(p => p.join(',')).join(' '), ...stroke } };
    });
  }

  /** Every atlas point of the model in use as it is drawn: screen x, y and colour. */
  function pointList() {
    if (!state.model) return [];
    const { z, labels, count } = state.model.atlas, dim = state.model.dim, [dx, dy] = state.dims;
    const colours = app.landscape.colours(), groups = pointGroups(state.rules, state.model.classNames);
    return Array.from({ length: count }, (_, i) => {
      const [x, y] = screenOf(z[i * dim + dx], z[i * dim + dy]);
      const colour = colours ? colours.css[i] : (groups.find(g => g.label === null || g.label === labels[i])?.colour ?? state.rules.unlabelled_colour);
      return { x, y, colour };
    });
  }

  function buildLegend() {
    const rows = state.model && state.points === 'class' ? legendRows(state.rules, state.model.classNames) : [];
    $('legend').replaceChildren(...rows.map(([name, colour]) => {
      const row = document.createElement('div');
      const dot = document.createElement('span');
      dot.style.background = colour;
      row.append(dot, name);
      return row;
    }));
    $('legend').hidden = !rows.length;
  }

  function fitView() {
    if (!state.model) return;
    state.view = state.homeView(size());
    drawPoints();
  }

  function zoomAbout(latent, screen, factor) {
    state.view = zoomedView(state.view, size(), latent, screen, factor);
    drawPoints();
  }

  /** Zooms in (+1) or out (-1) one step about the map's centre. */
  function zoomStep(direction) {
    const { width, height } = size();
    zoomAbout([state.view.cx, state.view.cy], [width / 2, height / 2], state.rules.zoom_step ** direction);
  }

  function local(event) {
    const rect = overlay.getBoundingClientRect();
    return [event.clientX - rect.left, event.clientY - rect.top];
  }

  function pointAt(event) {
    return state.pointAt(...toLatent(state.view, size(), ...local(event)));
  }

  function pointerDown(event) {
    if (!state.model) return;
    overlay.setPointerCapture(event.pointerId);
    const panning = event.button === 1 || event.button === 2 || event.altKey;
    drag = { panning, x: event.clientX, y: event.clientY, view: { ...state.view } };
    if (panning) return;
    const point = pointAt(event);
    if (event.shiftKey) { app.interpolation.setEnd('a', point); drag = null; return; }
    if (event.ctrlKey || event.metaKey) { app.interpolation.setEnd('b', point); drag = null; return; }
    app.preview.move(point);
  }

  function pointerMove(event, follow) {
    if (!state.model) return;
    if (drag?.panning) {
      state.view = pannedView(drag.view, event.clientX - drag.x, event.clientY - drag.y);
      drawPoints();
      return;
    }
    if (drag || follow) app.preview.move(pointAt(event));
  }

  function pointerUp() {
    drag = null;
  }

  function wheel(event) {
    if (!state.model) return;
    event.preventDefault();
    const screen = local(event);
    const factor = event.deltaY < 0 ? state.rules.zoom_step : 1 / state.rules.zoom_step;
    zoomAbout(toLatent(state.view, size(), ...screen), screen, factor);
  }

  return {
    overlay, size, drawPoints, svgShapes, pointList, drawOverlay, buildLegend, fitView, zoomStep, pointerDown, pointerMove, pointerUp, wheel,
    visibleExtent: () => visibleExtent(state.view, size()),
    /** Page coordinates of a latent point (for tests). */
    pageOf(x, y) {
      const rect = overlay.getBoundingClientRect();
      const [sx, sy] = screenOf(x, y);
      return [rect.left + sx, rect.top + sy];
    },
  };
}
