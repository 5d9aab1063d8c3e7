"""The README's picture of the browser explorer, taken from real Chromium.

Always taken and checked; written to $LATENT_ATLAS_SCREENSHOTS/web.png when that is set
(`make screenshots` points it at docs/screenshots/)."""

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
