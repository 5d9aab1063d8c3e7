// Export: the map with its layer, points and markers as PNG (the canvases composed) and as SVG (the layer
// as an embedded image, points, markers, ellipses and the A-B path as vectors), and the grid as PNG;
// each a download named after the model.
const $ = id => document.getElementById(id);
const SVG_NS = 'http://www.w3.org/2000/svg';

/** Offers `blob` as a download called `name`. */
function download(blob, name) {
  const link = document.createElement('a');
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 0);
}

const canvasBlob = canvas => new Promise(resolve => canvas.toBlob(resolve, 'image/png'));

export function createExport(app) {
  const { state } = app;
  const stem = () => (state.model?.manifest.name ?? 'map').replace(/[^A-Za-z0-9._-]+/g, '-');

  /** One canvas of the map as it shows: white, the layer, the points, the overlay. */
  function composed() {
    const out = document.createElement('canvas');
    const layers = ['map-layer', 'map-points', 'map-overlay'].map($);
    out.width = layers[1].width; out.height = layers[1].height;
    const ctx = out.getContext('2d');
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, out.width, out.height);
    for (const canvas of layers) if (canvas.width) ctx.drawImage(canvas, 0, 0, out.width, out.height);
    return out;
  }

  async function mapPng() {
    const blob = await canvasBlob(composed());
    download(blob, `${stem()}-map.png`);
    return blob;
  }

  /** The map as SVG text, in CSS pixels. */
  function mapSvg() {
    const { width, height } = app.map.size();
    const svg = document.createElementNS(SVG_NS, 'svg');
    const add = (parent, name, attributes) => {
      const node = document.createElementNS(SVG_NS, name);
      for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
      parent.append(node);
      return node;
    };
    svg.setAttribute('xmlns', SVG_NS);
    for (const [key, value] of Object.entries({ width, height, viewBox: `0 0 ${width} ${height}` })) svg.setAttribute(key, value);
    add(svg, 'rect', { width, height, fill: '#fff' });
    if (state.layerShown) add(svg, 'image', { href: $('map-layer').toDataURL('image/png'), width, height, preserveAspectRatio: 'none' });
    const points = add(svg, 'g', { 'fill-opacity': 0.55 });
    for (const { x, y, colour } of app.map.pointList()) add(points, 'rect', { x: (x - 1.2).toFixed(1), y: (y - 1.2).toFixed(1), width: 2.4, height: 2.4, fill: colour });
    const markers = add(svg, 'g', { fill: 'none' });
    for (const { kind, attributes, text } of app.map.svgShapes()) {
      const node = add(markers, kind, attributes);
      if (text) node.textContent = text;
    }
    return new XMLSerializer().serializeToString(svg);
  }

  function mapSvgDownload() {
    const text = mapSvg();
    download(new Blob([text], { type: 'image/svg+xml' }), `${stem()}-map.svg`);
    return text;
  }

  async function gridPng() {
    if (!state.grid) return null;
    const blob = await canvasBlob($('grid'));
    download(blob, `${stem()}-grid.png`);
    return blob;
  }

  return { composed, mapPng, mapSvg, mapSvgDownload, gridPng };
}
