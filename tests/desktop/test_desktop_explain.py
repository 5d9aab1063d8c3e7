"""Issue 47 in the desktop app's state layer, without widgets: uncertainty, real neighbours, the landscape,
two models side by side, sessions. Every number is checked against runtime/explain.py or the runtime."""

from __future__ import annotations

import json

import numpy as np
import pytest

from latent_atlas import runtime
from latent_atlas.desktop_app.state import ExplorerState
from latent_atlas.runtime import explain, explorer_rules
from latent_atlas.runtime import view_state as view_format


def test_an_encoded_image_shows_its_posterior(state, mnist, digit_png):
    assert state.ellipses() == [] and state.posterior_draws is None
    state.set_uncertainty(True)
    assert state.encode_image(digit_png)
    posterior = mnist.encode(digit_png)
    np.testing.assert_allclose(state.focus.logvar, posterior.logvar, atol=1e-5)
    expected = explain.posterior_ellipses(state.focus.z, state.focus.logvar, (0, 1), explorer_rules.POSTERIOR_SIGMAS)
    assert state.ellipses() == expected
    (cx, cy, rx, ry), (_, _, rx2, ry2) = expected
    assert (cx, cy) == tuple(state.focus.z.tolist()) and rx2 == pytest.approx(2 * rx) and ry > 0
    z, images = state.posterior_draws
    np.testing.assert_array_equal(z, explain.posterior_samples(state.focus.z, state.focus.logvar,
                                                               explorer_rules.POSTERIOR_SAMPLES, 0))
    np.testing.assert_array_equal(images, mnist.decode(z))
    state.resample_posterior()
    assert not np.array_equal(state.posterior_draws[0], z)  # new draws, from the next seed
    state.set_uncertainty(False)
    assert state.ellipses() == []


def test_a_drawing_takes_the_focus_and_gives_it_back(state):
    state.set_uncertainty(True)
    pixels = np.zeros((280, 280), np.uint8)
    pixels[60:220, 130:150] = 255
    state.update_drawing(pixels)
    assert state.focus is state.drawing and len(state.ellipses()) == 2
    state.clear_drawing()
    assert state.focus is None and state.ellipses() == []
    state.resample_posterior()
    assert "Encode or draw an image first" in state.messages[-1]


def test_neighbours_are_the_nearest_atlas_images(state, mnist):
    state.move_cursor(0.3, -0.7)
    means, labels = mnist.atlas()
    distances = np.sqrt(((means.astype(np.float64) - state.cursor) ** 2).sum(1))
    nearest = np.lexsort((np.arange(len(means)), distances))[:explorer_rules.DEFAULT_NEIGHBOURS]
    neighbours = state.neighbours
    np.testing.assert_array_equal(neighbours.indices, nearest)
    np.testing.assert_allclose(neighbours.distances, distances[nearest], rtol=1e-6)
    assert neighbours.labels == [mnist.class_names[labels[i]] for i in nearest]
    np.testing.assert_array_equal(neighbours.thumbnails[0], mnist.atlas_extra.thumbnail(nearest[0]))
    state.set_neighbour_count(3)
    assert len(state.neighbours.indices) == 3
    state.set_neighbour_count(10_000)
    assert state.neighbour_k == explorer_rules.NEIGHBOUR_COUNTS[1]


def test_a_bundle_without_atlas_extras_says_why_panels_are_empty(state, bundle_without_extra, qtbot):
    assert state.load_model(bundle_without_extra)
    assert state.neighbours is None and "atlas_extra.npz" in state.neighbours_note
    assert state.point_colourings() == ["class"]
    assert not state.set_points("error") and "atlas_extra.npz" in state.messages[-1] and state.points == "class"
    state.set_layer_view(((-2.0, 2.0), (-2.0, 2.0)), 80, 60)
    state.set_layer("aggregate")
    assert state.layer_result is None and "atlas_extra.npz" in state.layer_note
    with qtbot.waitSignal(state.layer_changed, timeout=30_000):
        state.set_layer("prior")  # needs no extras
    qtbot.waitUntil(lambda: state.layer_result is not None, timeout=30_000)
    assert state.layer_note == ""


def _layer(state, qtbot, name):
    state.set_layer(name)
    qtbot.waitUntil(lambda: state.layer_result is not None and state.layer_result.name == name, timeout=30_000)
    return state.layer_result


def test_layers_match_the_runtime_and_are_cached_per_view(state, mnist, qtbot):
    extent = ((-3.0, 2.0), (-1.5, 2.5))
    state.set_layer_view(extent, 120, 96)
    grid = explain.LayerGrid(extent[0], extent[1], *explorer_rules.layer_shape("prior", 120, 96))
    prior = _layer(state, qtbot, "prior")
    assert (prior.grid.cols, prior.grid.rows) == (30, 24)
    np.testing.assert_array_equal(prior.values, explain.prior_log_density(mnist.prior, grid))
    aggregate = _layer(state, qtbot, "aggregate")
    np.testing.assert_array_equal(aggregate.values, explain.aggregate_log_density(
        mnist.atlas()[0], mnist.atlas_extra.z_logvar, grid))
    entropy = _layer(state, qtbot, "entropy")
    cells = explain.LayerGrid(extent[0], extent[1], *explorer_rules.layer_shape("entropy", 120, 96))
    np.testing.assert_allclose(entropy.values, explain.decoder_entropy(mnist.decode(cells.points(2))).reshape(
        cells.rows, cells.cols), rtol=1e-6)
    # Back to a layer of this view: from the cache, at once, the very result.
    state.set_layer("prior")
    assert state.layer_result is prior
    state.set_layer("none")
    assert state.layer_result is None


def test_points_are_coloured_by_error_or_by_a_known_factor(state, mnist, bundle_with_factors):
    assert state.point_colourings() == ["class", "error"]
    assert state.set_points("error")
    np.testing.assert_array_equal(state.point_values, mnist.atlas_extra.recon_error)
    assert not state.set_points("factor:slant") and "has no factor 'slant'" in state.messages[-1]
    assert state.points == "error"
    assert state.load_model(bundle_with_factors)
    names = runtime.load(bundle_with_factors, providers="cpu").atlas_extra.factor_names
    assert names == ("slant", "width")
    assert state.point_colourings() == ["class", "error", "factor:slant", "factor:width"]
    assert state.set_points("factor:width")
    np.testing.assert_array_equal(state.point_values, np.abs(mnist.atlas()[0][:, 1]).astype(np.float32))


def test_a_second_model_decodes_under_the_same_cursor(state, mnist, fashion, bundle_3d):
    assert state.load_compare("fashion-mnist")
    state.move_cursor(0.5, 0.25)
    np.testing.assert_array_equal(state.compare_preview, fashion.decode(state.cursor))
    np.testing.assert_array_equal(state.difference, explain.difference_image(mnist.decode(state.cursor),
                                                                             fashion.decode(state.cursor)))
    assert [e.model.name for e in state.shown_atlases()] == ["fashion-mnist", "mnist"]
    state.set_atlases("other")
    assert [e.model.name for e in state.shown_atlases()] == ["fashion-mnist"]
    headline = state.compare.headline()
    assert headline["image"] == "1 x 28 x 28"
    assert headline["test −ELBO"] == f"{fashion.bundle.manifest.metrics['test_neg_elbo']:.2f} nats"
    assert not state.load_compare(bundle_3d)
    assert state.messages[-1] == ("Cannot compare with mnist-3d: its latent size is 3 and mnist's is 2; "
                                  "expected the same latent size")
    assert state.compare.model.name == "fashion-mnist"
    state.close_compare()
    assert state.compare is None and state.shown_atlases() == [state.engine]


def test_a_session_round_trips(state, tmp_path, qtbot):
    state.load_compare("fashion-mnist")
    state.set_dims(0, 1)
    state.set_view_extent(((-1.0, 1.5), (-2.0, 0.5)))
    state.set_endpoint("a", [0.5, 0.5])
    state.set_endpoint("b", [-1.0, 0.25])
    state.move_cursor(0.75, -0.125)
    state.set_layer("prior")
    state.set_points("error")
    state.set_uncertainty(True)
    state.set_neighbour_count(5)
    state.set_grid_options(n=12, source="percentiles")
    saved = state.view_state()
    path = tmp_path / "session.json"
    assert state.save_session(path)
    assert json.loads(path.read_text()) == saved.to_json()

    fresh = ExplorerState()
    fresh.messages = []
    fresh.error.connect(fresh.messages.append)
    views = []
    fresh.view_requested.connect(views.append)
    assert fresh.load_session(path), fresh.messages
    assert fresh.messages == []
    assert views == [saved.view]
    fresh.set_view_extent(views[0])  # what the map does when it shows the view
    assert fresh.view_state() == saved
    np.testing.assert_array_equal(fresh.preview, state.preview)
    np.testing.assert_array_equal(fresh.interpolation.path, state.interpolation.path)
    fresh.shutdown()


def test_a_bad_session_file_changes_nothing(state, tmp_path):
    before = state.view_state()
    for name, text in (("broken.json", "{ not json"), ("list.json", "[1, 2]"), ("other.json", '{"colour": 3}')):
        (tmp_path / name).write_text(text)
        assert not state.load_session(tmp_path / name)
        assert state.messages[-1].startswith(f"Could not open the session {name}: ")
        assert "\n" not in state.messages[-1]
    (tmp_path / "gone.json").write_text(json.dumps({**before.to_json(), "model": "/no/such/bundle"}))
    count = len(state.messages)
    assert not state.load_session(tmp_path / "gone.json")
    assert len(state.messages) == count + 1 and "its model /no/such/bundle" in state.messages[-1]
    assert state.view_state() == before


def test_a_hostile_session_is_repaired_and_said_in_one_line(state, tmp_path):
    hostile = {**view_format.DEFAULT.to_json(), "model": "mnist", "cursor": [1e300, 0.5], "neighbours": 999,
               "layer": "<script>", "a": [1.0, 2.0, 3.0], "extra": "x" * 10_000}
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(hostile))
    assert state.load_session(path)
    message = state.messages[-1]
    assert message.startswith("The session hostile.json was repaired: ") and "\n" not in message
    assert "cursor" in message and "neighbours" in message and "layer" in message and "x" * 100 not in message
    np.testing.assert_array_equal(state.cursor, np.float32([view_format.LATENT_LIMIT, 0.5]))
    assert state.neighbour_k == explorer_rules.NEIGHBOUR_COUNTS[1] and state.layer == "none"
    assert state.endpoints["a"] is None
    np.testing.assert_array_equal(state.preview, runtime.load("mnist", providers="cpu").decode(state.cursor))


def test_with_more_dims_a_layer_is_the_slice_through_the_sliders(qapp, bundle_3d, qtbot):
    state = ExplorerState()
    assert state.load_model(bundle_3d, "cpu")
    model = runtime.load(bundle_3d, providers="cpu")
    extent = ((-2.0, 2.0), (-2.0, 2.0))
    state.set_layer_view(extent, 48, 40)
    state.set_dim_value(2, 0.75)
    entropy = _layer(state, qtbot, "entropy")
    cells = explain.LayerGrid(extent[0], extent[1], *explorer_rules.layer_shape("entropy", 48, 40))
    expected = explain.decoder_entropy(model.decode(cells.points(3, (0, 1), state.cursor)))
    np.testing.assert_allclose(entropy.values.ravel(), expected, rtol=1e-6)
    state.move_cursor(0.5, 0.5)  # a hover in the shown plane keeps the slice
    assert state.layer_result is entropy
    state.set_dim_value(2, -0.5)  # a slider moves it
    qtbot.waitUntil(lambda: state.layer_result is not None and state.layer_result is not entropy, timeout=30_000)
    assert not np.allclose(state.layer_result.values, entropy.values)
    state.shutdown()
