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
        # This bundle has no atlas_extra.npz: the neighbours panel, the aggregate layer and the error
        # colouring say why, and the neighbours' labels still show.
        labels = page.inner_text("#neighbours-labels")
        assert labels.startswith("no thumbnails: this bundle has no atlas_extra.npz") and "labels: " in labels
        assert page.is_hidden("#neighbours-strip")
        page.select_option("#layer-select", "aggregate")
        assert "the aggregate layer needs the atlas posteriors: this bundle has no atlas_extra.npz" in page.inner_text("#message")
        page.select_option("#points-select", "error")
        assert "colouring points by error: this bundle has no atlas_extra.npz" in page.inner_text("#message")
        # The other layers work on 3 dims: the prior at the cursor's third value.
        page.select_option("#layer-select", "prior")
        page.wait_for_function("window.__atlas.state.layerShown && window.__atlas.state.layerShown.layer === 'prior'")
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


def layer_grid(shown):
    from latent_atlas.runtime.explain import LayerGrid

    return LayerGrid(tuple(shown["xRange"]), tuple(shown["yRange"]), shown["cols"], shown["rows"])


def wait_layer(page, layer):
    page.wait_for_function(f"window.__atlas.state.layerShown && window.__atlas.state.layerShown.layer === '{layer}'",
                           timeout=120_000)
    return hook(page, "({...s.layerShown, values: Array.from(s.layerShown.values)})")


def test_uncertainty_neighbours_layers_compare_export_and_the_address(open_explorer, mnist):
    """One page: each issue-47 feature against runtime/explain.py on the same bundle and inputs; then the
    address it wrote opens the same view in a second page."""
    from latent_atlas.runtime.explain import (NeighbourIndex, aggregate_log_density, decoder_entropy,
                                              difference_image, posterior_ellipses, prior_log_density)

    page = open_explorer("?provider=wasm")
    page.set_viewport_size({"width": 1100, "height": 700})
    extra = mnist.atlas_extra
    z_atlas, labels = mnist.bundle.read_atlas()

    # Uncertainty: an encoded image's 1- and 2-sigma ellipses and its posterior samples.
    page.check("#uncertainty")
    image = np.zeros((28, 28), np.uint8)
    image[6:22, 12:16] = 255  # a "1"
    rgba = np.repeat(image[..., None], 4, axis=2)
    rgba[..., 3] = 255
    page.evaluate(f"window.__atlas.encodeRgba({rgba.ravel().tolist()}, 28, 28)")
    page.wait_for_function("window.__atlas.state.samples !== null")
    encoded = hook(page, "({mean: Array.from(s.encoded.mean), logvar: Array.from(s.encoded.logvar)})")
    ellipses = hook(page, "a.ellipses()")
    expected = posterior_ellipses(encoded["mean"], encoded["logvar"], (0, 1), (1, 2))
    assert np.allclose(ellipses, expected, atol=1e-6)
    samples = hook(page, "({z: Array.from(s.samples.z), images: Array.from(s.samples.images)})")
    z_samples = np.array(samples["z"], np.float32).reshape(8, 2)
    assert np.abs(np.array(samples["images"]).reshape(8, 28, 28) - mnist.decode(z_samples)).max() <= EXACT
    assert hook(page, "document.getElementById('samples').width") == 9 * 28  # the mean's decode, then 8 samples

    # Neighbours: the exact k nearest atlas means of the cursor, their thumbnails and labels.
    page.evaluate("window.__atlas.moveCursor([0.3, -0.4])")
    wait_idle(page)
    nearest = hook(page, "s.nearest.indices")
    indices, _ = NeighbourIndex(z_atlas).query(np.array([0.3, -0.4]), 8)
    assert nearest == indices.tolist()
    assert page.inner_text("#neighbours-labels").split(" · ") == [mnist.class_names[labels[i]] for i in indices]
    assert hook(page, "document.getElementById('neighbours-strip').width") == 8 * (extra.thumbnails.shape[2] + 2) - 2
    page.fill("#neighbours-k", "3")
    page.dispatch_event("#neighbours-k", "change")
    assert len(hook(page, "s.nearest.indices")) == 3

    # Layers: the prior, the aggregate posterior and the decoder's entropy over the visible region.
    page.select_option("#layer-select", "prior")
    shown = wait_layer(page, "prior")
    grid = layer_grid(shown)
    values = np.array(shown["values"]).reshape(grid.rows, grid.cols)
    assert np.allclose(values, prior_log_density(mnist.prior, grid), atol=1e-6)
    assert page.is_visible("#scale-legend") and "prior log-density" in page.inner_text("#scale-legend")
    page.select_option("#layer-select", "aggregate")
    shown = wait_layer(page, "aggregate")
    values = np.array(shown["values"]).reshape(grid.rows, grid.cols)
    assert np.allclose(values, aggregate_log_density(z_atlas, extra.z_logvar, layer_grid(shown)), atol=1e-6)
    page.select_option("#layer-select", "entropy")
    shown = wait_layer(page, "entropy")
    grid = layer_grid(shown)
    decoded = mnist.decode(grid.points(2))
    expected = decoder_entropy(decoded).reshape(grid.rows, grid.cols)
    assert np.abs(np.array(shown["values"]).reshape(grid.rows, grid.cols) - expected).max() <= 1e-4
    # A view seen before is taken from the cache: no second computation.
    page.select_option("#layer-select", "prior")
    assert hook(page, "s.layerShown && s.layerShown.layer") == "prior"  # at once, from the cache

    # Points by reconstruction error, with its scale in the legend and no class legend.
    page.select_option("#points-select", "error")
    assert "reconstruction error" in page.inner_text("#scale-legend")
    assert page.locator("#legend div").count() == 0

    # A second model: both decodes, their difference, its atlas and both bundles' metrics.
    binarized = runtime.load("mnist-binarized", providers="cpu")
    page.select_option("#compare-select", "mnist-binarized")
    page.wait_for_function("window.__atlas.state.compare !== null")
    page.evaluate("window.__atlas.moveCursor([-0.5, 0.8])")
    page.wait_for_function("window.__atlas.state.lastCompare && Math.abs(window.__atlas.state.lastCompare.z[0] + 0.5) < 1e-6")
    wait_idle(page)
    compared = hook(page, "({image: Array.from(s.lastCompare.image), difference: Array.from(s.lastCompare.difference)})")
    second = binarized.decode([-0.5, 0.8])
    assert np.abs(np.array(compared["image"]).reshape(28, 28) - second).max() <= EXACT
    expected = difference_image(mnist.decode([-0.5, 0.8]), second)
    assert np.abs(np.array(compared["difference"]).reshape(28, 28) - expected).max() <= 2 * EXACT
    metrics = page.inner_text("#compare-metrics")
    assert "test −ELBO" in metrics and f"{mnist.bundle.manifest.metrics['test_neg_elbo']:.2f}" in metrics
    assert f"{binarized.bundle.manifest.metrics['test_neg_elbo']:.2f}" in metrics

    # Export: the SVG holds every point and the markers; the PNG is the composed map.
    svg = page.evaluate("window.__atlas.mapSvg()")
    assert svg.startswith("<svg") and svg.count("<rect") >= len(z_atlas) and "<ellipse" in svg and "<image" in svg
    png = bytes(page.evaluate("window.__atlas.mapPngBytes()"))
    with Image.open(io.BytesIO(png)) as picture:
        assert picture.size[0] >= 400 and np.asarray(picture.convert("RGB")).std() > 10
    with page.expect_download() as download:
        page.click("#export-svg")
    assert download.value.suggested_filename == "mnist-map.svg"

    # The address holds the view; a second page opened on it shows the same.
    page.wait_for_function("window.location.search.includes('compare=mnist-binarized')")
    page.wait_for_timeout(400)  # the throttled last write
    query = page.evaluate("location.search")
    assert "layer=prior" in query and "points=error" in query and "neighbours=3" in query and "uncertainty=1" in query
    expected_state = hook(page, "({cursor: Array.from(s.cursor), view: {...s.view}})")
    again = open_explorer(query)
    again.set_viewport_size({"width": 1100, "height": 700})
    again.wait_for_function("window.__atlas.state.compare !== null && window.__atlas.state.lastZ")
    restored = hook(again, "({cursor: Array.from(s.cursor), layer: s.layer, points: s.points, k: s.neighbours, "
                           "compare: s.compare.name, messages: s.urlMessages})")
    assert np.allclose(restored["cursor"], expected_state["cursor"], atol=1e-5)
    assert (restored["layer"], restored["points"], restored["k"], restored["compare"]) == ("prior", "error", 3, "mnist-binarized")
    assert restored["messages"] == []
    assert page.errors == [] and again.errors == []


@pytest.fixture(scope="module")
def mnist():
    return runtime.load("mnist", providers="cpu")


HOSTILE = {
    "huge cursor": ("?provider=wasm&cursor=1e300,-1e300&dims=0,7", ["cursor: numbers beyond", "dims: expected two different latent dims"]),
    "unknown model and keys": ("?provider=wasm&model=nope&colour=red&layer=volcano",
                               ["model: no bundled model is called nope", "colour: not a view-state key", "layer: expected one of"]),
    "huge string": ("?provider=wasm&points=" + "x" * 5000, ["points: expected class, error or factor:NAME"]),
    "oversize query": ("?provider=wasm&a=" + ",".join(["1"] * 20000), ["more than the 32768 characters"]),
    "wrong sizes": ("?provider=wasm&cursor=1,2,3&view=5,1,0,1&neighbours=1000&compare=../x",
                    ["cursor: expected 2 numbers", "view: a range is empty", "neighbours: expected 1..32; clamped",
                     "compare: ../x/bundle.json: missing (HTTP 404)"]),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_address_is_repaired_with_messages_not_a_broken_page(open_explorer, case):
    query, words = HOSTILE[case]
    page = open_explorer(query)
    page.wait_for_function("window.__atlas.state.urlMessages !== undefined")
    message = page.inner_text("#message")
    for word in words:
        assert word in message, (case, message)
    assert "model mnist" in page.inner_text("#status")
    page.evaluate("window.__atlas.moveCursor([0.2, 0.1])")
    wait_idle(page)
    assert page.errors == []


@pytest.fixture(scope="module")
def colour_site(colour_bundle):
    process, url = start_server(str(colour_bundle))
    yield url
    stop_server(process)


def canvas_rgb(page, element_id: str) -> np.ndarray:
    width, height = page.evaluate(f"[document.getElementById('{element_id}').width, document.getElementById('{element_id}').height]")
    data = page.evaluate(f"Array.from(document.getElementById('{element_id}').getContext('2d').getImageData(0, 0, {width}, {height}).data)")
    return np.array(data, dtype=np.float32).reshape(height, width, 4)[..., :3] / 255


def test_a_colour_model_shows_colour_tiles_and_encodes_colour_pictures_as_python(browser_context, colour_site, colour_bundle):
    model = runtime.load(colour_bundle, providers="cpu")
    channels, height, width = model.image_shape
    page = open_page(browser_context, colour_site, "?provider=wasm")
    try:
        assert page.is_hidden("#message"), page.inner_text("#message")
        wait_idle(page)
        # The preview: the decoder's CHW output, painted as RGB.
        z = np.array(hook(page, "Array.from(s.lastZ)"), dtype=np.float32)
        expected = model.decode(z)  # [H, W, 3]
        assert expected.shape == (height, width, 3)
        image = np.array(hook(page, "Array.from(s.lastImage)"), dtype=np.float32).reshape(channels, height, width)
        assert np.abs(image.transpose(1, 2, 0) - expected).max() <= EXACT
        preview = canvas_rgb(page, "preview")
        scale = preview.shape[0] / height
        centres = ((np.arange(height) + 0.5) * scale).astype(int)
        assert np.abs(preview[np.ix_(centres, centres)] - expected).max() <= 1 / 255 + 1e-6
        # A grid of colour tiles.
        page.fill("#grid-n", "3")
        page.click("#grid-button")
        page.wait_for_function("window.__atlas.state.grid && window.__atlas.state.grid.n === 3")
        points = np.array(hook(page, "Array.from(s.grid.points)"), dtype=np.float32).reshape(9, 2)
        tile = hook(page, "s.grid.tile")
        grid = canvas_rgb(page, "grid")
        centres = (np.arange(height) * tile / height + tile / (2 * height)).astype(int)
        assert np.abs(grid[np.ix_(centres, centres)] - model.decode(points[0])).max() <= 1 / 255 + 1e-6
        with page.expect_download() as download:
            page.click("#export-grid")
        with Image.open(download.value.path()) as png:
            assert png.size == (3 * tile, 3 * tile)
        # Colour thumbnails of the real neighbours.
        thumbnails = canvas_rgb(page, "neighbours-strip")
        first = hook(page, "s.nearest.indices[0]")
        assert np.abs(thumbnails[:, :width] - model.atlas_extra.thumbnail(first)).max() <= 1 / 255 + 1e-6
        # No draw pad on a colour model; a colour picture is encoded as Python encodes it.
        assert page.is_visible("#pad-note")
        picture = Image.new("RGB", (50, 40), (30, 120, 220))
        ImageDraw.Draw(picture).ellipse((10, 8, 40, 34), fill=(240, 60, 20))
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        page.set_input_files("#image-file", files=[{"name": "sprite.png", "mimeType": "image/png", "buffer": buffer.getvalue()}])
        page.wait_for_function("window.__atlas.state.encoded !== null")
        encoded = hook(page, "({input: Array.from(s.encoded.input), mean: Array.from(s.encoded.mean)})")
        layout = model.bundle.manifest.dataset.layout
        python_input = runtime.preprocess(buffer.getvalue(), layout=layout, image_shape=model.image_shape)
        assert np.abs(np.array(encoded["input"]).reshape(channels, height, width).transpose(1, 2, 0) - python_input).max() <= EXACT
        assert np.abs(np.array(encoded["mean"]) - model.encode(buffer.getvalue()).mean).max() <= EXACT
        assert page.errors == []
    finally:
        page.close()


@pytest.fixture(scope="module")
def factor_bundle(tmp_path_factory, mnist):
    """The MNIST bundle with one known factor, "width" (a made-up number per atlas point: its mean's first
    coordinate), as a sprites bundle names its factors in dataset.factor_names."""
    import json
    import shutil

    from latent_atlas.runtime import bundle as bundle_format

    target = tmp_path_factory.mktemp("factor") / "mnist-factor"
    shutil.copytree(mnist.bundle.path, target)
    extra = mnist.atlas_extra
    z, _ = mnist.bundle.read_atlas()
    bundle_format.write_npz(target / bundle_format.ATLAS_EXTRA, thumbnails=extra.thumbnails, z_logvar=extra.z_logvar,
                            recon_error=extra.recon_error, factors=z[:, :1].astype(np.float32))
    manifest = json.loads((target / bundle_format.MANIFEST).read_text())
    manifest["name"] = "mnist-factor"
    manifest["dataset"]["factor_names"] = ["width"]
    manifest["files"] = bundle_format.file_entries(target, tuple(manifest["files"]))
    (target / bundle_format.MANIFEST).write_text(json.dumps(manifest))
    return target


def test_points_coloured_by_a_known_factor_and_kept_in_the_address(browser_context, factor_bundle):
    from latent_atlas.runtime.explorer_rules import COLOUR_MAPS, map_colours

    process, url = start_server(str(factor_bundle))
    try:
        page = open_page(browser_context, url, "?provider=wasm&points=factor:width")
        page.wait_for_function("window.__atlas.state.urlMessages !== undefined")
        assert hook(page, "s.points") == "factor:width" and page.is_hidden("#message")
        assert "points: width" in page.inner_text("#scale-legend")
        # Each point's colour is the factor's on the sequential map over the factor's range.
        z, _ = runtime.load(factor_bundle, providers="cpu").bundle.read_atlas()
        colours = hook(page, "a.pointColours().slice(0, 50)")
        expected = map_colours(z[:50, 0], float(z[:, 0].min()), float(z[:, 0].max()), "sequential")
        assert [f"rgb({r},{g},{b})" for r, g, b in expected] == colours and len(COLOUR_MAPS["sequential"]) > 2
        page.wait_for_function("window.location.search.includes('points=factor:width')")
        # A factor the bundle does not name is repaired to the classes, with its message.
        other = open_page(browser_context, url, "?provider=wasm&points=factor:hue")
        other.wait_for_function("window.__atlas.state.urlMessages !== undefined")
        assert "points: points are coloured by class, error, factor:width; got factor:hue; class shown" in other.inner_text("#message")
        assert page.errors == [] and other.errors == []
    finally:
        stop_server(process)
