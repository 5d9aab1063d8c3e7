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

  function drawPoints() {
    const ctx = sizeCanvas(pointsCanvas);
    sizeCanvas(overlay);
    if (!state.model) return;
    const { z, labels, count } = state.model.atlas;
    const dim = state.model.dim, [dx, dy] = state.dims;
    ctx.globalAlpha = 0.55;
    for (const { colour, label } of pointGroups(state.rules, state.model.classNames)) {
      ctx.fillStyle = colour;
      ctx.beginPath();
      for (let i = 0; i < count; i++) {
        if (label !== null && labels[i] !== label) continue;
        const [sx, sy] = screenOf(z[i * dim + dx], z[i * dim + dy]);
        ctx.rect(sx - 1.2, sy - 1.2, 2.4, 2.4);
      }
      ctx.fill();
    }
    ctx.globalAlpha = 1;
    drawOverlay();
  }

  function drawMarker(ctx, point, colour, label, radius = 6) {
    if (!point) return;
    const [sx, sy] = screenOf(...state.shown(point));
    ctx.strokeStyle = colour; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.arc(sx, sy, radius, 0, 2 * Math.PI); ctx.stroke();
    if (label) { ctx.fillStyle = colour; ctx.font = 'bold 12px system-ui'; ctx.fillText(label, sx + radius + 2, sy - radius); }
  }

  function drawOverlay() {
    const ctx = overlay.getContext('2d');
    const { width, height } = size();
    ctx.clearRect(0, 0, width, height);
    if (!state.model) return;
    const { a, b } = state.ends;
    if (a && b) {
      const path = interpolationPath(a, b, PATH_POINTS, state.interpMethod);
      ctx.strokeStyle = '#444'; ctx.setLineDash([4, 3]); ctx.lineWidth = 1.5;
      ctx.beginPath();
      for (let i = 0; i < PATH_POINTS; i++) {
        const [sx, sy] = screenOf(...state.shown(path.subarray(i * state.model.dim, (i + 1) * state.model.dim)));
        i ? ctx.lineTo(sx, sy) : ctx.moveTo(sx, sy);
      }
      ctx.stroke(); ctx.setLineDash([]);
    }
    drawMarker(ctx, a, '#0a7d32', 'A');
    drawMarker(ctx, b, '#b3261e', 'B');
    if (state.encoded) drawMarker(ctx, state.encoded.mean, '#6a1b9a', 'encoded', 7);
    const c = state.cursor;
    if (c) {
      const [sx, sy] = screenOf(...state.shown(c));
      ctx.strokeStyle = '#000'; ctx.lineWidth = 1.5;
      ctx.beginPath(); ctx.moveTo(sx - 9, sy); ctx.lineTo(sx + 9, sy); ctx.moveTo(sx, sy - 9); ctx.lineTo(sx, sy + 9); ctx.stroke();
    }
  }

  function buildLegend() {
    const rows = state.model ? legendRows(state.rules, state.model.classNames) : [];
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
    overlay, drawPoints, drawOverlay, buildLegend, fitView, zoomStep, pointerDown, pointerMove, pointerUp, wheel,
    visibleExtent: () => visibleExtent(state.view, size()),
    /** Page coordinates of a latent point (for tests). */
    pageOf(x, y) {
      const rect = overlay.getBoundingClientRect();
      const [sx, sy] = screenOf(x, y);
      return [rect.left + sx, rect.top + sy];
    },
  };
}
