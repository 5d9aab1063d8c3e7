"""The README's picture of the browser explorer and one per feature that explains the model, taken from
real Chromium.

Always taken and checked; written to $LATENT_ATLAS_SCREENSHOTS/web.png and web/{uncertainty, neighbours,
landscape, compare}.png when that is set (`make screenshots` points it at docs/screenshots/)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

SCREENSHOTS_ENV = "LATENT_ATLAS_SCREENSHOTS"


def test_screenshot_of_the_explorer(open_explorer, tmp_path):
    page = open_explorer("?provider=wasm")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.fill("#grid-n", "8")
    page.click("#grid-button")
    page.wait_for_function("window.__atlas.state.grid !== null")
    for point, modifier in (((-1.6, 1.1), "Shift"), ((1.4, -1.0), "Control")):
        x, y = page.evaluate(f"window.__atlas.toScreen({point[0]}, {point[1]})")
        page.keyboard.down(modifier)
        page.mouse.click(x, y)
        page.keyboard.up(modifier)
    box = page.locator("#pad").bounding_box()
    page.mouse.move(box["x"] + 0.3 * box["width"], box["y"] + 0.25 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + 0.7 * box["width"], box["y"] + 0.25 * box["height"], steps=6)
    page.mouse.move(box["x"] + 0.45 * box["width"], box["y"] + 0.85 * box["height"], steps=8)
    page.mouse.up()
    page.wait_for_function("window.__atlas.state.encoded !== null && !window.__atlas.state.encoding")
    x, y = page.evaluate("window.__atlas.toScreen(0.6, 1.3)")
    page.mouse.move(x, y)
    page.wait_for_function("!window.__atlas.state.busy && Math.abs(window.__atlas.state.lastZ[0] - 0.6) < 0.05")
    png = page.screenshot()
    with Image.open(io.BytesIO(png)) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    assert pixels.shape[:2] == (800, 1280)
    assert pixels.std() > 20  # a real page, not a blank one
    target = os.environ.get(SCREENSHOTS_ENV)
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        (Path(target) / "web.png").write_bytes(png)


def feature_picture(page, name: str, target: Path | None, clip: dict | None = None) -> np.ndarray:
    png = page.screenshot(clip=clip) if clip else page.screenshot()
    with Image.open(io.BytesIO(png)) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    if target:
        (target / "web").mkdir(parents=True, exist_ok=True)
        (target / "web" / f"{name}.png").write_bytes(png)
    return pixels


def test_screenshots_of_the_features_that_explain_the_model(open_explorer):
    """web/uncertainty.png, neighbours.png, landscape.png and compare.png: one picture per feature, each
    checked to show it (the feature's own canvas is not blank)."""
    target = Path(os.environ[SCREENSHOTS_ENV]) if os.environ.get(SCREENSHOTS_ENV) else None
    page = open_explorer("?provider=wasm")
    page.set_viewport_size({"width": 1280, "height": 860})

    # Uncertainty: a drawn 4 with its ellipses on the map and its posterior samples.
    page.check("#uncertainty")
    box = page.locator("#pad").bounding_box()
    strokes = [((0.3, 0.2), (0.25, 0.55), (0.7, 0.55)), ((0.6, 0.25), (0.6, 0.85))]
    for stroke in strokes:
        page.mouse.move(box["x"] + stroke[0][0] * box["width"], box["y"] + stroke[0][1] * box["height"])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=8)
        page.mouse.up()
    page.wait_for_function("window.__atlas.state.encoded !== null && !window.__atlas.state.encoding && window.__atlas.state.samples !== null")
    page.evaluate("window.__atlas.state.samples = null")
    page.click("#samples-button")
    page.wait_for_function("window.__atlas.state.samples !== null")
    # Zoomed in on the encoded point, so that its 2-sigma ellipse spans a fifth of the map.
    page.evaluate("""(() => { const a = window.__atlas, s = a.state, [cx, cy, rx, ry] = a.ellipses()[1];
        s.view = { cx, cy, scale: 120 / Math.max(rx, ry) }; a.redraw(); })()""")
    pixels = feature_picture(page, "uncertainty", target)
    assert len(page.evaluate("window.__atlas.ellipses()")) == 2 and pixels.std() > 20

    # Neighbours: the cursor among the 1s and 7s, its eight nearest test images.
    page.keyboard.press("f")
    x, y = page.evaluate("window.__atlas.toScreen(0.9, -0.6)")
    page.mouse.move(x, y)
    page.wait_for_function("!window.__atlas.state.busy && window.__atlas.state.nearest !== null")
    page.locator("#neighbours-strip").scroll_into_view_if_needed()
    pixels = feature_picture(page, "neighbours", target)
    strip = page.evaluate("""(() => { const c = document.getElementById('neighbours-strip');
        return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); })()""")
    assert np.array(strip, dtype=np.float32).std() > 20  # real thumbnails, not an empty strip

    # Landscape: the decoder's entropy behind the points coloured by reconstruction error, with the scales.
    page.uncheck("#uncertainty")
    page.select_option("#layer-select", "entropy")
    page.wait_for_function("window.__atlas.state.layerShown && window.__atlas.state.layerShown.layer === 'entropy'", timeout=120_000)
    page.select_option("#points-select", "error")
    pixels = feature_picture(page, "landscape", target)
    layer = page.evaluate("""(() => { const c = document.getElementById('map-layer');
        return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data.filter((_, i) => i % 97 === 0)); })()""")
    assert np.array(layer, dtype=np.float32).std() > 20 and page.is_visible("#scale-legend")

    # Compare: MNIST against the binarized model under one cursor, both atlases on the map.
    page.select_option("#layer-select", "none")
    page.select_option("#points-select", "class")
    page.select_option("#compare-select", "mnist-binarized")
    page.wait_for_function("window.__atlas.state.compare !== null")
    x, y = page.evaluate("window.__atlas.toScreen(-0.3, 0.9)")
    page.mouse.move(x, y)
    page.wait_for_function("!window.__atlas.state.busy && window.__atlas.state.lastCompare !== null")
    page.locator("#compare-panel").scroll_into_view_if_needed()
    pixels = feature_picture(page, "compare", target)
    assert page.is_visible("#compare-panel") and "test −ELBO" in page.inner_text("#compare-metrics")
    assert pixels.shape[:2] == (860, 1280) and page.errors == []
