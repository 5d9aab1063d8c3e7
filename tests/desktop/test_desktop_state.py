"""The state layer on its own: no widgets, every number checked against the runtime."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from latent_atlas import runtime
from latent_atlas.desktop_app import saving
from latent_atlas.desktop_app.state import MAX_RECENT_BUNDLES, ExplorerState


def test_cursor_decodes_through_the_runtime(state, mnist, qtbot):
    with qtbot.waitSignal(state.cursor_changed):
        state.move_cursor(0.4, -1.2)
    np.testing.assert_array_equal(state.cursor, np.float32([0.4, -1.2]))
    np.testing.assert_array_equal(state.preview, mnist.decode(np.float32([0.4, -1.2])))
    assert state.decode_ms > 0


def test_a_bad_bundle_leaves_the_open_model_in_place(state, broken_bundle, tmp_path):
    engine, cursor = state.engine, state.cursor.copy()
    assert not state.load_model(broken_bundle)
    assert not state.load_model(tmp_path / "no-such-bundle")
    assert len(state.messages) == 2
    assert "not valid JSON" in state.messages[0] and str(broken_bundle) in state.messages[0]
    assert state.engine is engine
    np.testing.assert_array_equal(state.cursor, cursor)
    assert state.recent_bundles == []
    state.move_cursor(1.0, 1.0)  # still working
    assert state.preview.shape == (28, 28)


def test_another_provider_keeps_the_cursor_and_markers(state, digit_png, qtbot):
    state.encode_image(digit_png)
    engine, cursor, encodings = state.engine, state.cursor.copy(), list(state.encodings)
    with qtbot.waitSignal(state.provider_changed):
        assert state.set_provider("CPUExecutionProvider")
    assert state.engine is not engine and state.engine.model.provider == "CPUExecutionProvider"
    assert state.provider == "CPUExecutionProvider" and state.encodings == encodings
    np.testing.assert_array_equal(state.cursor, cursor)
    assert not state.set_provider("no-such-provider")
    assert "unknown execution provider" in state.messages[-1] and state.provider == "CPUExecutionProvider"


def test_encoding_an_image_adds_a_marker_and_moves_the_cursor(state, mnist, digit_png):
    assert state.encode_image(digit_png)
    expected = mnist.encode(digit_png).mean
    (encoding,) = state.encodings
    assert encoding.name == "three.png"
    np.testing.assert_allclose(encoding.z, expected, atol=1e-5)
    np.testing.assert_array_equal(encoding.image, runtime.preprocess(digit_png))
    np.testing.assert_array_equal(state.cursor, encoding.z)
    np.testing.assert_array_equal(encoding.reconstruction, mnist.decode(encoding.z))
    assert [m.kind for m in state.markers()] == ["encoded"]


def test_a_corrupt_image_is_an_error_and_nothing_changes(state, corrupt_image):
    cursor = state.cursor.copy()
    assert not state.encode_image(corrupt_image)
    assert state.encodings == [] and "corrupt.png" in state.messages[-1]
    np.testing.assert_array_equal(state.cursor, cursor)


def test_the_drawing_follows_its_pixels_and_clears(state, mnist):
    pixels = np.zeros((280, 280), np.uint8)
    pixels[60:220, 130:150] = 255
    state.update_drawing(pixels)
    first = state.drawing.z
    np.testing.assert_allclose(first, mnist.encode(runtime.preprocess(pixels)).mean, atol=1e-6)
    pixels[60:80, 80:200] = 255
    state.update_drawing(pixels)
    assert not np.allclose(state.drawing.z, first)
    state.update_drawing(np.zeros_like(pixels))
    assert state.drawing is None and state.markers() == []


def test_a_prior_sample_moves_the_cursor(state, mnist):
    state.sample_prior(seed=7)
    np.testing.assert_array_equal(state.sample, mnist.sample(1, seed=7).z[0])
    np.testing.assert_array_equal(state.cursor, state.sample)


def test_interpolation_between_endpoints(state, mnist):
    assert not state.interpolate() and "two points" in state.messages[-1]
    state.set_endpoint("a", [-1.0, 0.5])
    state.move_cursor(1.5, -0.5)
    state.set_endpoint("b")  # the cursor
    expected = mnist.interpolate(np.float32([-1.0, 0.5]), np.float32([1.5, -0.5]), state.interp_steps)
    np.testing.assert_array_equal(state.interpolation.path, expected.z)
    np.testing.assert_array_equal(state.interpolation.frames, expected.images)
    state.set_interpolation(method="slerp", steps=5)
    assert state.interpolation.method == "slerp" and len(state.interpolation.frames) == 5
    np.testing.assert_array_equal(state.interpolation.frames,
                                  mnist.interpolate(np.float32([-1.0, 0.5]), np.float32([1.5, -0.5]), 5, "slerp").images)
    state.set_frame(4)
    state.advance_frame()
    assert state.frame_index == 0
    with pytest.raises(ValueError):
        state.set_interpolation(method="cubic")


def test_grid_matches_the_runtime_and_stale_results_are_dropped(state, mnist, qtbot):
    shown, computed = [], []
    state.grid_changed.connect(lambda: shown.append(state.grid.ncols))
    state.worker.finished.connect(lambda request_id, manifold: computed.append((request_id, manifold.ncols)))
    started, compute = threading.Event(), state.engine.model.manifold
    state.engine.model.manifold = lambda *args, **kwargs: (started.set(), compute(*args, **kwargs))[1]
    state.set_grid_options(n=40, source="percentiles")
    first = state.request_grid()
    assert started.wait(10)        # the first is computing on the worker thread
    state.set_grid_options(n=30)
    state.request_grid()           # queued behind the first, stale before it starts: skipped
    state.set_grid_options(n=7)
    latest = state.request_grid()
    state.worker.wait()
    qtbot.waitUntil(lambda: not state.grid_busy, timeout=30_000)
    qtbot.wait(10)  # let every queued result arrive
    assert computed == [(first, 40), (latest, 7)]  # the first finished, but only the latest is shown
    assert shown == [7]
    expected = mnist.manifold(7, extent="percentiles")
    np.testing.assert_array_equal(state.grid.z, expected.z)
    np.testing.assert_array_equal(state.grid.images, expected.images)
    state.select_tile(10)
    np.testing.assert_array_equal(state.cursor, expected.z[10])


def test_grid_over_the_visible_region(state, mnist, qtbot):
    state.set_view_extent(((-1.0, 2.0), (-0.5, 0.5)))
    state.set_grid_options(n=5, source="view")
    with qtbot.waitSignal(state.grid_changed, timeout=30_000):
        state.request_grid()
    np.testing.assert_array_equal(state.grid.images, mnist.manifold(5, extent=((-1.0, 2.0), (-0.5, 0.5))).images)
    assert state.grid_box() == ((-1.0, 2.0), (-0.5, 0.5))


def test_switching_models_drops_results_of_the_old_one(state, qtbot):
    state.set_grid_options(n=30, source="percentiles")
    state.request_grid()
    state.set_endpoint("a")
    assert state.load_model("fashion-mnist")
    state.worker.wait()
    qtbot.wait(10)
    assert state.engine.model.name == "fashion-mnist" and state.grid is None and state.markers() == []
    assert not state.grid_busy


def test_higher_dims_pick_the_plane_and_hold_the_rest(qapp, bundle_3d, qtbot):
    state = ExplorerState()
    assert state.load_model(bundle_3d, "cpu")
    model = runtime.load(bundle_3d, providers="cpu")
    state.set_dims(0, 2)
    state.move_cursor(0.3, -0.4)  # x = z0, y = z2
    state.set_dim_value(1, 0.8)
    np.testing.assert_array_equal(state.cursor, np.float32([0.3, 0.8, -0.4]))
    np.testing.assert_array_equal(state.preview, model.decode(state.cursor))
    state.set_grid_options(n=5, source="percentiles")
    with qtbot.waitSignal(state.grid_changed, timeout=30_000):
        state.request_grid()
    expected = model.manifold(5, extent="percentiles", dims=(0, 2), base=state.cursor)
    np.testing.assert_array_equal(state.grid.z, expected.z)
    assert np.all(state.grid.z[:, 1] == np.float32(0.8))
    with pytest.raises(ValueError):
        state.set_dims(1, 1)
    assert state.recent_bundles == [str(bundle_3d.resolve())]


def test_recent_bundles_are_remembered_newest_first(qapp, bundle_3d):
    state = ExplorerState()
    state.recent_bundles = [f"/old/{i}" for i in range(MAX_RECENT_BUNDLES)]
    assert state.load_model(bundle_3d)
    assert state.recent_bundles[0] == str(bundle_3d.resolve())
    assert len(state.recent_bundles) == MAX_RECENT_BUNDLES and "/old/7" not in state.recent_bundles


def test_saving_pictures(state, tmp_path, qtbot):
    from PIL import Image

    assert not state.save("grid", tmp_path / "grid.png") and "Nothing to save" in state.messages[-1]
    assert state.save("preview", tmp_path / "preview.png")
    assert Image.open(tmp_path / "preview.png").size == (28 * saving.PREVIEW_SCALE,) * 2
    state.set_grid_options(n=6, source="percentiles")
    with qtbot.waitSignal(state.grid_changed, timeout=30_000):
        state.request_grid()
    assert state.save("grid", tmp_path / "grid.png")
    assert Image.open(tmp_path / "grid.png").size == (6 * 28 * saving.GRID_SCALE,) * 2
    state.set_endpoint("a", [0, 0])
    state.set_endpoint("b", [1, 1])
    assert state.save("interpolation", tmp_path / "path.gif")
    gif = Image.open(tmp_path / "path.gif")
    assert gif.n_frames == 2 * state.interp_steps - 2  # there and back
    assert state.save("interpolation", tmp_path / "strip.png")
    assert not state.save("preview", tmp_path / "preview.jpg") and "expected a file name" in state.messages[-1]


def test_a_fashion_model_encodes_drops_and_drawings_in_its_own_layout(state, digit_png, qtbot):
    """Issue 13: the explorer preprocessed every image MNIST-style, even for a Fashion-MNIST model."""
    from latent_atlas.runtime.preprocessing import LAYOUTS, preprocess

    assert state.load_model("fashion-mnist")
    assert state.engine.model.layout == "fashion-mnist"
    encoding = state.engine.encode(digit_png, "three")
    np.testing.assert_array_equal(encoding.image, preprocess(digit_png, LAYOUTS["fashion-mnist"]))
    assert not np.array_equal(encoding.image, preprocess(digit_png, "mnist"))
