"""The explorer's issue-47 features in real Chromium, against the Python runtime on the same bundle: more
than two latent dims, uncertainty, neighbours, layers, two models, URL state and export. Few page loads,
each exercising several features."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from latent_atlas import runtime

from .conftest import open_page, start_server, stop_server

EXACT = 1e-4  # through the test hook: float32 outputs of the same ONNX graph
pytestmark = pytest.mark.browser


def hook(page, expression: str):
    return page.evaluate(f"(() => {{ const a = window.__atlas, s = a.state; return {expression}; }})()")


def wait_idle(page):
    page.wait_for_function("!window.__atlas.state.busy && window.__atlas.state.lastZ")


@pytest.fixture(scope="module")
def site_3d(bundle_3d):
    process, url = start_server(str(bundle_3d), "mnist")
    yield url
    stop_server(process)


def test_three_dims_pick_the_maps_pair_and_slide_the_third(browser_context, site_3d, bundle_3d):
    model = runtime.load(bundle_3d, providers="cpu")
    page = open_page(browser_context, site_3d, "?provider=wasm")
    try:
        assert page.is_hidden("#message"), page.inner_text("#message")
        assert page.is_visible("#dims")
        assert page.locator("#dim-sliders input").count() == 1
        # The slider sets z[2]; the map's pair keeps the cursor's values.
        wait_idle(page)
        before = hook(page, "Array.from(s.cursor)")
        page.locator("#dim-sliders input").fill("900")
        page.wait_for_function(f"Math.abs(window.__atlas.state.cursor[2] - ({before[2]})) > 0.1")
        wait_idle(page)
        z = np.array(hook(page, "Array.from(s.lastZ)"), dtype=np.float32)
        assert np.allclose(z[:2], before[:2], atol=1e-6)
        low, high = hook(page, "s.sliderDims()[0].range")
        assert z[2] == pytest.approx(low + 0.9 * (high - low), abs=1e-5)
        assert np.abs(np.array(hook(page, "Array.from(s.lastImage)")).reshape(28, 28) - model.decode(z)).max() <= EXACT
        # The map shows z[0] against z[2]: hover sets those two and keeps z[1]; the slider is now z[1]'s.
        page.select_option("#dim-y", "2")
        assert hook(page, "s.dims") == [0, 2]
        assert page.locator("#dim-sliders input").get_attribute("data-dim") == "1"
        x, y = hook(page, "a.toScreen(0.4, -0.7)")
        page.mouse.move(x, y)
        page.wait_for_function("Math.abs(window.__atlas.state.lastZ[2] + 0.7) < 0.05 && !window.__atlas.state.busy")
        z2 = np.array(hook(page, "Array.from(s.lastZ)"))
        assert z2[0] == pytest.approx(0.4, abs=0.05) and z2[1] == pytest.approx(z[1], abs=1e-6)
        # Choosing the other axis's dim is undone, not a broken pair.
        page.select_option("#dim-x", "2")
        assert hook(page, "s.dims") == [0, 2] and page.input_value("#dim-x") == "0"
        # A grid over the percentile box spans the shown pair.
        page.fill("#grid-n", "3")
        page.select_option("#grid-source", "percentiles")
        page.click("#grid-button")
        page.wait_for_function("window.__atlas.state.grid && window.__atlas.state.grid.n === 3")
        points = np.array(hook(page, "Array.from(s.grid.points)")).reshape(9, 3)
        stats = model.latent_stats
        assert np.allclose(points[0], [stats["p05"][0], z[1], stats["p95"][2]], atol=1e-5)
        assert page.errors == []
    finally:
        page.close()


def colour_pictures() -> dict[str, Image.Image]:
    """Colour pictures of several aspects, one with transparency, one grey, one large enough to be shrunk."""
    rng = np.random.default_rng(1)
    wide = Image.fromarray(rng.integers(0, 256, (30, 70, 3), dtype=np.uint8))
    ImageDraw.Draw(wide).ellipse((20, 5, 50, 25), fill=(250, 40, 30))
    tall = Image.new("RGB", (40, 90), (20, 90, 200))
    ImageDraw.Draw(tall).rectangle((8, 20, 30, 70), fill=(240, 220, 10))
    clear = Image.new("RGBA", (50, 50), (0, 0, 0, 0))
    ImageDraw.Draw(clear).ellipse((5, 5, 45, 45), fill=(200, 30, 160, 255))
    grey = Image.new("L", (36, 36), 200)
    ImageDraw.Draw(grey).line((4, 30, 30, 4), fill=20, width=5)
    big = Image.fromarray(np.clip(np.linspace(0, 255, 1100)[None, :, None] + rng.normal(0, 6, (160, 1100, 3)), 0, 255).astype(np.uint8))
    return {"wide": wide, "tall": tall, "transparent": clear, "grey": grey, "big": big}


@pytest.mark.parametrize("shape, layouts", [((3, 32, 24), ("pad", "crop", "resize")), ((1, 32, 40), ("mnist", "pad", "crop")),
                                            ((1, 28, 28), ("pad",))])
def test_preprocessing_for_any_image_shape_matches_python(page, shape, layouts):
    """preprocess.js against runtime/preprocessing.py for colour and grey models of other sizes and layouts."""
    from latent_atlas.runtime.preprocessing import preprocess

    for name, image in colour_pictures().items():
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        rgba = base64.b64encode(np.asarray(image.convert("RGBA"), dtype=np.uint8).tobytes()).decode()
        results = page.evaluate("""async ([rgba, width, height, shape, layouts]) => {
            const { preprocess, readPicture } = await import('./js/preprocess.js');
            const constants = window.__atlas.state.config.preprocessing;
            const bytes = Uint8ClampedArray.from(atob(rgba), c => c.charCodeAt(0));
            const picture = readPicture(bytes, width, height, constants.work_side, shape[0]);
            return layouts.map(layout => Array.from(preprocess(picture.planes, picture.width, picture.height,
                                                               constants.layouts[layout], constants, shape)));
        }""", [rgba, image.width, image.height, list(shape), list(layouts)])
        for layout, got in zip(layouts, results):
            expected = preprocess(buffer.getvalue(), layout, shape)
            if shape[0] == 3:
                expected = expected.transpose(2, 0, 1)  # the model's channels-first input
            assert np.abs(np.array(got, dtype=np.float32).reshape(expected.shape) - expected).max() <= 2e-3, (name, layout)
    refused = page.evaluate("""async () => {
        const { preprocess } = await import('./js/preprocess.js');
        const constants = window.__atlas.state.config.preprocessing;
        try { preprocess([new Float32Array(4), new Float32Array(4), new Float32Array(4)], 2, 2, constants.layouts.mnist, constants, [3, 8, 8]); }
        catch (error) { return error.message; }
    }""")
    assert "a colour model (3x8x8) takes a whole-picture layout" in refused
