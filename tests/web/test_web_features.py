"""The explorer's issue-47 features in real Chromium, against the Python runtime on the same bundle: more
than two latent dims, uncertainty, neighbours, layers, two models, URL state and export. Few page loads,
each exercising several features."""

from __future__ import annotations

import numpy as np
import pytest

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
