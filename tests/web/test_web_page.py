"""The explorer in real headless Chromium against the Python runtime on the same bundle and inputs."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image, ImageDraw

from latent_atlas import runtime
from latent_atlas.runtime.bundle import write_npz
from latent_atlas.runtime.latent import interpolation_path

EXACT = 1e-4          # through the test hook: float32 outputs of the same ONNX graph
CANVAS = 1 / 255 + 1e-6  # through the canvas: one 8-bit step
# Every test here drives Chromium; the WebGPU one takes its context through request.getfixturevalue, which
# the fixture-based marking (tests/conftest.py) cannot see.
pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def mnist():
    return runtime.load("mnist", providers="cpu")


@pytest.fixture(scope="module")
def fashion():
    return runtime.load("fashion-mnist", providers="cpu")


def hook(page, expression: str):
    return page.evaluate(f"(() => {{ const a = window.__atlas, s = a.state; return {expression}; }})()")


def wait_idle(page):
    page.wait_for_function("!window.__atlas.state.busy && window.__atlas.state.lastZ")


def test_the_bundled_mnist_model_loads_cross_origin_isolated(page):
    status = page.inner_text("#status")
    assert "model mnist" in status and "provider wasm" in status and "cross-origin isolated" in status
    assert page.is_hidden("#message")
    assert hook(page, "crossOriginIsolated") is True
    assert page.locator("#legend div").count() == 10
    assert page.errors == []


def preview_pixels(page) -> np.ndarray:
    """The 28x28 preview read back from its canvas: the centre of each 10x10 block, in [0, 1]."""
    data = page.evaluate("""Array.from(document.getElementById('preview').getContext('2d')
        .getImageData(0, 0, 280, 280).data)""")
    rgba = np.array(data, dtype=np.float32).reshape(280, 280, 4)
    return rgba[5::10, 5::10, 0] / 255


def test_hovering_a_point_shows_what_the_python_runtime_decodes(page, mnist):
    target = (0.8, -1.2)
    x, y = hook(page, f"a.toScreen({target[0]}, {target[1]})")
    page.mouse.move(x - 30, y - 30)
    page.mouse.move(x, y, steps=5)
    page.wait_for_function(f"Math.abs(window.__atlas.state.lastZ[0] - {target[0]}) < 0.05 && "
                           f"Math.abs(window.__atlas.state.lastZ[1] - {target[1]}) < 0.05 && !window.__atlas.state.busy")
    z = np.array(hook(page, "Array.from(s.lastZ)"), dtype=np.float32)
    expected = mnist.decode(z)
    hooked = np.array(hook(page, "Array.from(s.lastImage)"), dtype=np.float32).reshape(28, 28)
    assert np.abs(hooked - expected).max() <= EXACT
    assert np.abs(preview_pixels(page) - expected).max() <= CANVAS
    assert f"{z[0]:.3f}" in page.inner_text("#coordinates")
    assert "last decode" in page.inner_text("#status")


def test_wheel_zooms_about_the_mouse_right_drag_pans_and_f_fits_the_view(page):
    home = hook(page, "({...s.view})")
    x, y = hook(page, "a.toScreen(1.0, 0.5)")
    page.mouse.move(x, y)
    page.mouse.wheel(0, -120)
    page.wait_for_function(f"window.__atlas.state.view.scale > {home['scale']} * 1.1")
    assert np.allclose(hook(page, "a.toScreen(1.0, 0.5)"), (x, y), atol=0.5)  # the point under the mouse stays
    page.mouse.down(button="right")
    page.mouse.move(x + 60, y + 25, steps=4)
    page.mouse.up(button="right")
    assert np.allclose(hook(page, "a.toScreen(1.0, 0.5)"), (x + 60, y + 25), atol=0.5)
    page.locator("#map-overlay").focus()
    page.keyboard.press("f")
    assert hook(page, "({...s.view})") == pytest.approx(home)


def test_sampling_from_the_prior_decodes_the_sampled_point(page, mnist):
    wait_idle(page)
    before = hook(page, "Array.from(s.lastZ)")
    page.click("#sample-button")
    page.wait_for_function(f"window.__atlas.state.lastZ[0] !== {before[0]} && !window.__atlas.state.busy")
    z = np.array(hook(page, "Array.from(s.lastZ)"), dtype=np.float32)
    assert np.abs(z).max() < 6  # a standard normal draw
    assert np.abs(np.array(hook(page, "Array.from(s.lastImage)")).reshape(28, 28) - mnist.decode(z)).max() <= EXACT


def test_a_bundles_fitted_prior_is_what_the_page_samples_from(page):
    """latent.js's priorSample against runtime/prior.py's mixture: the same distribution (draws' moments)."""
    from latent_atlas.runtime.prior import GaussianMixture

    mixture = GaussianMixture([0.5, 0.3, 0.2], [[-2.0, 0.0], [2.0, 1.0], [0.0, -3.0]],
                              [[[0.3, 0.1], [0.1, 0.2]], [[0.5, 0.0], [0.0, 0.1]], [[0.2, -0.05], [-0.05, 0.4]]])
    draws = page.evaluate("""async (prior) => {
        const { priorSample } = await import('./js/latent.js');
        const out = [];
        for (let seed = 0; seed < 20000; seed++) out.push(...priorSample(prior, 2, seed));
        return { mixture: out, normal: Array.from(priorSample(undefined, 2, 7)) };
    }""", mixture.to_json())
    z = np.array(draws["mixture"]).reshape(-1, 2)
    reference = mixture.sample(200_000, seed=0)
    np.testing.assert_allclose(z.mean(0), reference.mean(0), atol=0.05)
    np.testing.assert_allclose(np.cov(z.T), np.cov(reference.T), atol=0.1)
    # each draw sits in a component: within 5 standard deviations of one of the means
    assert (np.min(np.linalg.norm(z[:, None] - mixture.means[None], axis=-1), axis=1) < 5 * np.sqrt(0.5)).all()
    assert len(draws["normal"]) == 2 and np.abs(draws["normal"]).max() < 6  # no prior: N(0, I), as before


def test_the_grid_renders_n_by_n_tiles_and_a_click_moves_the_cursor(page, mnist):
    page.fill("#grid-n", "7")
    page.select_option("#grid-source", "percentiles")
    page.click("#grid-button")
    page.wait_for_function("window.__atlas.state.grid && window.__atlas.state.grid.n === 7")
    grid = hook(page, "({tiles: s.grid.tiles, tile: s.grid.tile, points: Array.from(s.grid.points), images: Array.from(s.grid.images)})")
    assert grid["tiles"] == 49
    points = np.array(grid["points"], dtype=np.float32).reshape(49, 2)
    stats = mnist.latent_stats
    assert np.allclose(points[0], [stats["p05"][0], stats["p95"][1]], atol=1e-6)   # top-left: x low, y high
    assert np.allclose(points[-1], [stats["p95"][0], stats["p05"][1]], atol=1e-6)
    images = np.array(grid["images"], dtype=np.float32).reshape(49, 28, 28)
    assert np.abs(images - mnist.decode(points)).max() <= EXACT
    # The canvas shows the 49 tiles, each the decoded digit scaled up.
    side = 7 * grid["tile"]
    canvas = np.array(page.evaluate(f"Array.from(document.getElementById('grid').getContext('2d').getImageData(0, 0, {side}, {side}).data)"),
                      dtype=np.float32).reshape(side, side, 4)[..., 0] / 255
    tile = grid["tile"]
    for index in (0, 24, 48):
        row, col = divmod(index, 7)
        block = canvas[row * tile:(row + 1) * tile, col * tile:(col + 1) * tile]
        centres = (np.arange(28) * tile / 28 + tile / 56).astype(int)
        assert np.abs(block[np.ix_(centres, centres)] - images[index]).max() <= CANVAS
    # Click the tile at row 2, column 5: the cursor moves to its point.
    page.locator("#grid").scroll_into_view_if_needed()
    box = page.locator("#grid").bounding_box()
    page.mouse.click(box["x"] + (5 + 0.5) * box["width"] / 7, box["y"] + (2 + 0.5) * box["height"] / 7)
    page.wait_for_function(f"Math.abs(window.__atlas.state.cursor[0] - {points[2 * 7 + 5][0]}) < 1e-6")
    wait_idle(page)
    assert np.allclose(hook(page, "Array.from(s.cursor)"), points[2 * 7 + 5], atol=1e-6)


def test_a_drawn_stroke_lands_where_the_python_runtime_encodes_the_same_drawing(page, mnist):
    page.locator("#pad").scroll_into_view_if_needed()
    box = page.locator("#pad").bounding_box()
    left, top, w, h = box["x"], box["y"], box["width"], box["height"]
    # A "7": a bar across the top and a long diagonal down.
    page.mouse.move(left + 0.25 * w, top + 0.22 * h)
    page.mouse.down()
    page.mouse.move(left + 0.75 * w, top + 0.22 * h, steps=8)
    page.mouse.move(left + 0.42 * w, top + 0.85 * h, steps=12)
    page.mouse.up()
    page.wait_for_function("window.__atlas.state.encoded !== null")
    page.wait_for_function("!window.__atlas.state.encoding")
    rgba = np.array(hook(page, "a.padPixels()"), dtype=np.uint8).reshape(196, 196, 4)
    encoded = hook(page, "({input: Array.from(s.encoded.input), mean: Array.from(s.encoded.mean)})")
    python_input = runtime.preprocess(rgba)
    assert np.abs(np.array(encoded["input"]).reshape(28, 28) - python_input).max() <= 1e-3
    mean = np.array(encoded["mean"])
    python_mean = mnist.encode(rgba).mean
    assert np.linalg.norm(mean - python_mean) <= 0.02
    assert mnist.class_names[int(mnist.nearest_class(python_mean))] == "7"
    assert page.inner_text("#encoded-z").startswith("z = (")


def pictures() -> dict[str, Image.Image]:
    """Pictures as users give them: dark ink on paper, light ink on dark, colour, transparency, odd sizes."""
    rng = np.random.default_rng(0)
    paper = Image.new("RGB", (240, 300), (236, 232, 220))
    pen = ImageDraw.Draw(paper)
    pen.ellipse((60, 50, 180, 250), outline=(30, 30, 40), width=22)
    noisy = np.clip(np.asarray(paper, dtype=np.float32) + rng.normal(0, 4, (300, 240, 1)), 0, 255).astype(np.uint8)
    dark = Image.new("L", (90, 70), 10)
    ImageDraw.Draw(dark).line((20, 10, 70, 60), fill=250, width=9)
    colour = Image.new("RGB", (128, 128), "white")
    ImageDraw.Draw(colour).line((64, 12, 60, 116), fill=(200, 20, 60), width=14)
    clear = Image.new("RGBA", (150, 150), (0, 0, 0, 0))
    ImageDraw.Draw(clear).arc((20, 20, 130, 130), 30, 330, fill=(0, 0, 0, 255), width=16)
    small = Image.new("L", (31, 29), 255)
    ImageDraw.Draw(small).rectangle((8, 4, 20, 25), outline=0, width=3)
    # A phone-sized photo: shrunk to 1024 first, in 8 bits, as Pillow does.
    lit = np.linspace(195, 215, 1600, dtype=np.float32)[None, :, None] * np.ones((1200, 1, 3), np.float32)
    photo = Image.fromarray(np.clip(lit + rng.normal(0, 3, (1200, 1600, 3)), 0, 255).astype(np.uint8))
    ImageDraw.Draw(photo).line((700, 200, 900, 250, 760, 1000), fill=(40, 35, 60), width=60)
    return {"paper": Image.fromarray(noisy), "dark": dark, "colour": colour, "transparent": clear, "small": small,
            "photo": photo}


def upload(page, image: Image.Image, name: str):
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    page.evaluate("window.__atlas.state.encoded = null")
    page.set_input_files("#image-file", files=[{"name": f"{name}.png", "mimeType": "image/png", "buffer": buffer.getvalue()}])
    page.wait_for_function("window.__atlas.state.encoded !== null")
    return buffer.getvalue()


@pytest.mark.parametrize("name", list(pictures()))
def test_pictures_are_preprocessed_and_encoded_as_in_python(page, mnist, name):
    image = pictures()[name]
    data = upload(page, image, name)
    encoded = hook(page, "({input: Array.from(s.encoded.input), mean: Array.from(s.encoded.mean), recon: Array.from(s.encoded.reconstruction)})")
    expected = runtime.preprocess(data, layout="mnist")
    assert expected.max() == 1.0  # the picture has ink
    assert np.abs(np.array(encoded["input"]).reshape(28, 28) - expected).max() <= EXACT
    result = mnist.encode(data)
    assert np.abs(np.array(encoded["mean"]) - result.mean).max() <= EXACT
    assert np.abs(np.array(encoded["recon"]).reshape(28, 28) - mnist.decode(result.mean)).max() <= EXACT


@pytest.mark.parametrize("name", ["paper", "transparent", "small", "photo"])
def test_the_resize_layout_takes_the_whole_picture_as_in_python(page, mnist, name):
    # A model trained on your own framed pictures (--layout resize): no crop, no inversion, plain resize.
    page.evaluate("window.__atlas.state.layout = window.__atlas.state.config.preprocessing.layouts.resize")
    try:
        data = upload(page, pictures()[name], name)
        encoded = np.array(hook(page, "Array.from(s.encoded.input)")).reshape(28, 28)
    finally:
        page.evaluate("window.__atlas.state.layout = window.__atlas.state.config.preprocessing.layouts.mnist")
    expected = runtime.preprocess(data, layout="resize")
    assert np.abs(encoded - expected).max() <= EXACT
    assert np.abs(expected - runtime.preprocess(data, layout="mnist")).max() > 0.5  # the layouts differ


def test_interpolation_plays_along_the_path_between_a_and_b(page):
    a, b = (-1.5, 1.0), (1.2, -0.8)
    for point, modifier in ((a, "Shift"), (b, "Control")):
        x, y = hook(page, f"a.toScreen({point[0]}, {point[1]})")
        page.keyboard.down(modifier)
        page.mouse.click(x, y)
        page.keyboard.up(modifier)
    page.wait_for_function("window.__atlas.state.ends.a && window.__atlas.state.ends.b")
    ends = hook(page, "[Array.from(s.ends.a), Array.from(s.ends.b)]")
    assert np.allclose(ends, [a, b], atol=0.02)
    for method in ("linear", "slerp"):
        path = np.array(hook(page, f"a.interpolationPath(s.ends.a, s.ends.b, 9, '{method}')")).reshape(9, 2)
        assert np.abs(path - interpolation_path(np.array(ends[0]), np.array(ends[1]), 9, method)).max() <= 1e-5
    page.select_option("#interp-method", "linear")
    page.click("#play-button")
    page.wait_for_function("window.__atlas.state.interpolationFrames >= 12")
    assert page.inner_text("#play-button") == "Pause"
    positions = []
    for _ in range(3):
        page.wait_for_timeout(60)
        positions.append(hook(page, "Array.from(s.cursor)"))
    page.click("#play-button")
    page.wait_for_function("!window.__atlas.state.playing")
    # Every frame lies on the segment from A to B, and the cursor moved while playing.
    start, end = np.array(ends[0]), np.array(ends[1])
    for position in positions:
        t = np.dot(np.array(position) - start, end - start) / np.dot(end - start, end - start)
        assert -1e-4 <= t <= 1 + 1e-4
        assert np.linalg.norm(start + t * (end - start) - position) <= 1e-4
    assert len({tuple(p) for p in positions}) > 1
    strip = hook(page, "[document.getElementById('strip').width, document.getElementById('strip').height]")
    assert strip == [28 * 10, 28]


def test_the_binarized_model_runs_like_the_others(page):
    """Issue 14's third bundled model: a model of binarized pixels whose decoder gives pixel probabilities."""
    binarized = runtime.load("mnist-binarized", providers="cpu")
    loads = hook(page, "s.loads")
    page.select_option("#model-select", "mnist-binarized")
    page.wait_for_function(f"window.__atlas.state.loads > {loads} && !window.__atlas.state.busy")
    assert page.is_hidden("#message") and "model mnist-binarized" in page.inner_text("#status")
    page.evaluate("window.__atlas.moveCursor([-0.4, 1.1])")
    wait_idle(page)
    image = np.array(hook(page, "Array.from(s.lastImage)")).reshape(28, 28)
    assert np.abs(image - binarized.decode([-0.4, 1.1])).max() <= EXACT


def test_switching_to_fashion_mnist(page, fashion):
    loads = hook(page, "s.loads")
    page.select_option("#model-select", "fashion-mnist")
    page.wait_for_function(f"window.__atlas.state.loads > {loads} && !window.__atlas.state.busy")
    assert page.is_hidden("#message")
    assert "model fashion-mnist" in page.inner_text("#status")
    assert "T-shirt/top" in page.inner_text("#legend")
    page.evaluate("window.__atlas.moveCursor([0.3, 0.7])")
    wait_idle(page)
    image = np.array(hook(page, "Array.from(s.lastImage)")).reshape(28, 28)
    assert np.abs(image - fashion.decode([0.3, 0.7])).max() <= EXACT
    # Its pictures are placed the Fashion-MNIST way (longer side 28, box centred), as in Python.
    picture = Image.new("L", (60, 40), 255)
    ImageDraw.Draw(picture).rectangle((5, 5, 50, 30), fill=0)
    data = upload(page, picture, "shirt")
    encoded = np.array(hook(page, "Array.from(s.encoded.input)")).reshape(28, 28)
    assert np.abs(encoded - runtime.preprocess(data, layout="fashion-mnist")).max() <= EXACT


def broken_bundles(source, root):
    """name -> (folder of a broken copy of the MNIST bundle, words its message must contain)."""
    cases = {}

    def copy(name):
        target = root / name
        shutil.copytree(source, target)
        return target

    missing = copy("missing")
    (missing / "decoder.onnx").unlink()
    cases["missing file"] = (missing, "missing decoder.onnx")

    wider = copy("wider")
    manifest = json.loads((wider / "bundle.json").read_text())
    manifest["latent_dim"] = 3
    for key, values in manifest["latent_stats"].items():
        values.append(0.0)
    del manifest["files"]["atlas.npz"]
    (wider / "bundle.json").write_text(json.dumps(manifest))
    with np.load(source / "atlas.npz") as atlas:
        z, labels = atlas["z_mean"], atlas["labels"]
    write_npz(wider / "atlas.npz", z_mean=np.concatenate([z, np.zeros((len(z), 1), np.float32)], axis=1), labels=labels)
    cases["wrong latent size"] = (wider, "do not take latent size 3")

    stranger = copy("stranger")
    (stranger / "bundle.json").write_text(json.dumps({"model": "resnet50", "classes": 1000}))
    cases["not a latent-atlas model"] = (stranger, "not a latent-atlas bundle")

    garbage = copy("garbage")
    (garbage / "encoder.onnx").write_bytes(b"this is not an onnx file" * 10)
    manifest = json.loads((garbage / "bundle.json").read_text())
    del manifest["files"]["encoder.onnx"]
    (garbage / "bundle.json").write_text(json.dumps(manifest))
    cases["not an onnx file"] = (garbage, "encoder.onnx: onnxruntime-web cannot load it")

    tampered = copy("tampered")
    (tampered / "atlas.npz").write_bytes((source / "atlas.npz").read_bytes()[:-10] + b"0123456789")
    cases["modified file"] = (tampered, "atlas.npz: SHA-256 does not match")
    return cases


def test_broken_bundles_show_their_message_and_keep_the_model(page, mnist, tmp_path):
    for case, (folder, words) in broken_bundles(mnist.bundle.path, tmp_path).items():
        loads = hook(page, "s.loads")
        page.set_input_files("#open-bundle-files", files=[str(p) for p in sorted(folder.iterdir())])
        page.wait_for_function(f"window.__atlas.state.loads > {loads}")
        assert page.is_visible("#message"), case
        message = page.inner_text("#message")
        assert words in message, (case, message)
        assert "model mnist" in page.inner_text("#status"), case  # the model in use stays
    # A bundle picked correctly from disk loads.
    loads = hook(page, "s.loads")
    page.set_input_files("#open-bundle-files", files=[str(p) for p in sorted(mnist.bundle.path.iterdir())])
    page.wait_for_function(f"window.__atlas.state.loads > {loads}")
    assert page.is_hidden("#message")
    assert "model mnist" in page.inner_text("#status")


def test_a_missing_bundle_url_shows_a_message_not_a_blank_page(open_explorer):
    page = open_explorer("?provider=wasm&bundle=models/nowhere/")
    assert "models/nowhere/bundle.json: missing (HTTP 404)" in page.inner_text("#message")
    assert "no model loaded" in page.inner_text("#status")


def test_a_first_load_paints_before_the_encoder_and_still_refuses_a_broken_one(open_explorer, mnist):
    # The first load creates the encoder after the first image (the cold load's critical path); a bundle
    # whose encoder then fails is taken off the page with its message, as if it had failed at once.
    manifest = json.loads((mnist.bundle.path / "bundle.json").read_text())
    del manifest["files"]["encoder.onnx"]  # past the checksum check, as a hand-edited bundle would be
    routes = {
        "**/models/mnist/bundle.json": lambda route: route.fulfill(body=json.dumps(manifest), content_type="application/json"),
        "**/models/mnist/encoder.onnx": lambda route: route.fulfill(body=b"not an onnx file" * 10),
    }
    page = open_explorer("?provider=wasm", routes)
    assert "models/mnist/encoder.onnx: onnxruntime-web cannot load it" in page.inner_text("#message")
    assert hook(page, "s.firstImageMs") is not None  # the decoder's image came first
    assert "no model loaded" in page.inner_text("#status")
    assert hook(page, "s.model") is None and page.locator("#legend div").count() == 0
    assert page.errors == []

    # An intact bundle's first load ends with both sessions checked: encoding works at once.
    page = open_explorer("?provider=wasm")
    encoded = hook(page, "s.model.encode(new Float32Array(784)).then(r => Array.from(r.mean))")
    expected = mnist.encode(np.zeros((1, 28, 28), np.float32)).mean[0]
    assert np.abs(np.array(encoded) - expected).max() <= EXACT


def check_webgpu(page, mnist):
    loads = hook(page, "s.loads")
    page.select_option("#provider-select", "webgpu")
    page.wait_for_function(f"window.__atlas.state.loads > {loads} && !window.__atlas.state.busy")
    assert page.is_hidden("#message"), page.inner_text("#message")
    assert "provider webgpu" in page.inner_text("#status")
    image = np.array(page.evaluate("window.__atlas.decode([0.5, -1.0])")).reshape(28, 28)
    assert np.abs(image - mnist.decode([0.5, -1.0])).max() <= EXACT
    x, y = hook(page, "a.toScreen(-0.4, 0.9)")
    page.mouse.move(x, y)
    page.wait_for_function("Math.abs(window.__atlas.state.lastZ[0] + 0.4) < 0.05 && !window.__atlas.state.busy")
    z = np.array(hook(page, "Array.from(s.lastZ)"), dtype=np.float32)
    assert np.abs(np.array(hook(page, "Array.from(s.lastImage)")).reshape(28, 28) - mnist.decode(z)).max() <= EXACT


def test_webgpu_decodes_like_python_when_an_adapter_exists(page, mnist, request, site_url):
    """On the GPU Chromium offers, else on its software adapter (SwiftShader); skipped only if neither exists."""
    if not page.evaluate("window.__atlas.webgpuAvailable()"):
        page = request.getfixturevalue("software_webgpu_context").new_page()
        page.goto(site_url)  # provider "auto"
        page.wait_for_function("window.__atlas !== undefined")
        page.evaluate("window.__atlas.ready")
        if not page.evaluate("window.__atlas.webgpuAvailable()"):
            pytest.skip("Chromium offers no WebGPU adapter here, not even its software one (SwiftShader)")
        # Auto does not pick a software adapter: WASM is faster than SwiftShader.
        assert "provider wasm" in page.inner_text("#status")
    check_webgpu(page, mnist)


def test_a_first_load_on_webgpu_checks_both_sessions_before_the_first_image(request, site_url, mnist):
    # The encoder is created after the first image on wasm only: WebGPU's build suspends inside a run, and a
    # session created meanwhile corrupted its memory ("memory access out of bounds").
    page = request.getfixturevalue("software_webgpu_context").new_page()
    try:
        page.goto(site_url + "?provider=webgpu")
        # Waited for with a timeout: the corrupted load never ended. SwiftShader takes about 10 s here.
        page.wait_for_function("window.__atlas && window.__atlas.state.loads > 0", timeout=120_000)
        if not page.evaluate("window.__atlas.webgpuAvailable()"):
            pytest.skip("Chromium offers no WebGPU adapter here, not even its software one (SwiftShader)")
        assert page.is_hidden("#message"), page.inner_text("#message")
        assert "model mnist" in page.inner_text("#status") and "provider webgpu" in page.inner_text("#status")
        encoded = hook(page, "s.model.encode(new Float32Array(784)).then(r => Array.from(r.mean))")
        assert np.abs(np.array(encoded) - mnist.encode(np.zeros((1, 28, 28), np.float32)).mean[0]).max() <= EXACT
    finally:
        page.close()
