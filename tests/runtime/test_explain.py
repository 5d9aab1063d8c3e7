"""runtime/explain.py against brute force and closed forms, and the layer rules of runtime/explorer_rules.py."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from latent_atlas.runtime import explain
from latent_atlas.runtime import explorer_rules as rules
from latent_atlas.runtime.prior import LOG_2PI, GaussianMixture, StandardNormal, logsumexp


def brute_neighbours(points, z, k):
    squared = ((np.asarray(points, np.float64) - z) ** 2).sum(1)
    order = np.lexsort((np.arange(len(points)), squared))[:k]
    return order, np.sqrt(squared[order])


def brute_aggregate(means, logvars, grid, dims, base):
    z = np.broadcast_to(base, (grid.rows, grid.cols, len(base))).copy()
    z[:, :, dims[0]] = grid.xs()[None]
    z[:, :, dims[1]] = grid.ys()[:, None]
    terms = -0.5 * (((z[:, :, None] - means) ** 2) * np.exp(-logvars) + logvars + LOG_2PI).sum(-1)
    return logsumexp(terms - math.log(len(means)), axis=2)


# --- uncertainty -------------------------------------------------------------------------------------

def test_ellipses_are_sigma_multiples_of_the_posterior_std_on_the_shown_dims():
    mean, logvar = [0.5, -1.0, 2.0], [math.log(0.04), 0.0, math.log(9.0)]
    assert explain.posterior_ellipses(mean, logvar, dims=(2, 0), sigmas=(1, 2)) == [
        pytest.approx((2.0, 0.5, 3.0, 0.2)), pytest.approx((2.0, 0.5, 6.0, 0.4))]
    with pytest.raises(ValueError, match="logvar must be 3 finite numbers"):
        explain.posterior_ellipses(mean, [0.0, 0.0], (0, 1))
    with pytest.raises(ValueError, match="dims must be two different latent dims"):
        explain.posterior_ellipses(mean, logvar, (1, 1))
    with pytest.raises(ValueError, match="mean must be a vector of finite numbers"):
        explain.posterior_ellipses([float("nan"), 0.0], [0.0, 0.0])


def test_posterior_samples_are_seeded_and_have_the_posteriors_moments():
    mean, logvar = np.array([1.0, -2.0]), np.log([0.25, 4.0])
    draws = explain.posterior_samples(mean, logvar, 20_000, seed=3)
    assert draws.dtype == np.float32 and draws.shape == (20_000, 2)
    np.testing.assert_array_equal(draws, explain.posterior_samples(mean, logvar, 20_000, seed=3))
    assert not np.array_equal(draws[:5], explain.posterior_samples(mean, logvar, 5, seed=4))
    np.testing.assert_allclose(draws.mean(0), mean, atol=0.05)
    np.testing.assert_allclose(draws.std(0), [0.5, 2.0], rtol=0.03)
    with pytest.raises(ValueError, match="n must be an integer"):
        explain.posterior_samples(mean, logvar, 0)


# --- neighbours -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("dims,latent_dim", [((0, 1), 2), ((2, 0), 5)])
def test_the_neighbour_index_answers_exactly_as_brute_force(dims, latent_dim):
    rng = np.random.default_rng(0)
    points = (rng.standard_normal((3000, latent_dim)) * rng.uniform(0.3, 3, latent_dim)).astype(np.float32)
    index = explain.NeighbourIndex(points, dims)
    assert index.cols * index.rows > 100  # a real grid, not one cell that would make any search exact
    for z in [*rng.standard_normal((100, latent_dim)) * 2, np.full(latent_dim, 40.0), np.full(latent_dim, -40.0)]:
        for k in (1, 8):
            got, distances = index.query(z, k)
            want, want_distances = brute_neighbours(points, z, k)
            np.testing.assert_array_equal(got, want)
            np.testing.assert_allclose(distances, want_distances, rtol=1e-12)


def test_neighbour_ties_go_to_the_lower_index_and_small_atlases_give_what_they_hold():
    points = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [3.0, 3.0]])
    indices, distances = explain.NeighbourIndex(points).query([0.0, 0.0], k=3)
    assert indices.tolist() == [0, 1, 2] and distances.tolist() == [1.0, 1.0, 1.0]
    assert explain.NeighbourIndex(points).query([0.0, 0.0], k=50)[0].tolist() == [0, 1, 2, 3, 4]
    same = explain.NeighbourIndex(np.zeros((7, 2)))  # zero extent: still one valid cell
    assert same.query([1.0, 1.0], 3)[0].tolist() == [0, 1, 2]
    line = explain.NeighbourIndex(np.stack([np.arange(100.0), np.zeros(100)], 1))  # zero height
    assert line.query([41.2, 5.0], 2)[0].tolist() == [41, 42]
    with pytest.raises(ValueError, match="z must be 2 finite numbers"):
        line.query([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="points must be a \\[M, D\\] array of finite numbers"):
        explain.NeighbourIndex([[0.0, float("inf")]])


def test_a_neighbour_query_on_ten_thousand_points_fits_a_hover_frame():
    rng = np.random.default_rng(1)
    index = explain.NeighbourIndex(rng.standard_normal((10_000, 2)).astype(np.float32))
    queries = rng.standard_normal((300, 2)) * 1.5
    start = time.perf_counter()
    for z in queries:
        index.query(z, rules.DEFAULT_NEIGHBOURS)
    per_query = (time.perf_counter() - start) / len(queries)
    assert per_query < 2e-3, f"{per_query * 1e3:.2f} ms per query"  # a loose bound: the machine may be shared


# --- layers -----------------------------------------------------------------------------------------------

def test_a_layer_grid_takes_cell_centres_top_row_first():
    grid = explain.LayerGrid((0.0, 4.0), (-1.0, 1.0), cols=4, rows=2)
    np.testing.assert_allclose(grid.xs(), [0.5, 1.5, 2.5, 3.5])
    np.testing.assert_allclose(grid.ys(), [0.5, -0.5])
    points = grid.points(3, dims=(2, 0), base=[9.0, 9.0, 9.0]).reshape(2, 4, 3)
    np.testing.assert_allclose(points[0, :, 2], grid.xs())
    np.testing.assert_allclose(points[:, 0, 0], grid.ys())
    assert (points[:, :, 1] == 9.0).all()
    with pytest.raises(ValueError, match="x_range must be \\(low, high\\) with finite low < high"):
        explain.LayerGrid((1.0, 1.0), (0.0, 1.0), 2, 2)
    with pytest.raises(ValueError, match="cols must be a positive integer"):
        explain.LayerGrid((0.0, 1.0), (0.0, 1.0), 0, 2)


def test_the_prior_layer_is_the_priors_log_density_on_the_slice():
    grid = explain.LayerGrid((-2.0, 3.0), (-1.0, 1.5), cols=5, rows=3)
    x, y = np.meshgrid(grid.xs(), grid.ys())
    normal = explain.prior_log_density(StandardNormal(3), grid, dims=(0, 2), base=[0.0, 0.7, 0.0])
    np.testing.assert_allclose(normal, -1.5 * LOG_2PI - 0.5 * (x ** 2 + y ** 2 + 0.49), rtol=1e-12)
    mixture = GaussianMixture([0.3, 0.7], [[0.0, 1.0], [2.0, -1.0]], [np.eye(2) * 0.5, [[1.0, 0.3], [0.3, 2.0]]])
    got = explain.prior_log_density(mixture, grid)
    want = mixture.log_prob(np.stack([x, y], -1).reshape(-1, 2)).reshape(3, 5)
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("view", [((-3.0, 3.0), (-2.0, 2.5)), ((60.0, 80.0), (-90.0, -70.0))])
def test_the_aggregate_layer_is_the_mixture_of_the_atlas_posteriors(view):
    rng = np.random.default_rng(2)
    means = rng.standard_normal((500, 3)) * [1.0, 2.0, 0.5]
    logvars = rng.normal(-2.0, 0.7, (500, 3))
    grid = explain.LayerGrid(*view, cols=17, rows=11)
    got = explain.aggregate_log_density(means, logvars, grid, dims=(1, 0), base=[0.0, 0.0, 0.3])
    want = brute_aggregate(means, logvars, grid, (1, 0), np.array([0.0, 0.0, 0.3]))
    assert np.isfinite(got).all()  # far from every point (the second view) it underflows without care
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_one_posterior_alone_gives_its_gaussian_and_the_layer_is_fast_enough_to_cache():
    grid = explain.LayerGrid((-1.0, 1.0), (-1.0, 1.0), 4, 4)
    x, y = np.meshgrid(grid.xs(), grid.ys())
    got = explain.aggregate_log_density([[0.2, -0.1]], [[0.0, math.log(4.0)]], grid)
    want = -LOG_2PI - 0.5 * math.log(4.0) - 0.5 * ((x - 0.2) ** 2 + (y + 0.1) ** 2 / 4.0)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    rng = np.random.default_rng(3)
    big = explain.LayerGrid((-4.0, 4.0), (-3.0, 3.0), 160, 120)
    start = time.perf_counter()
    explain.aggregate_log_density(rng.standard_normal((10_000, 2)), rng.normal(-3, 0.5, (10_000, 2)), big)
    assert time.perf_counter() - start < 2.0  # loose: the machine may be shared
    with pytest.raises(ValueError, match="means and logvars must be two \\[M, D\\] arrays"):
        explain.aggregate_log_density(np.zeros((3, 2)), np.zeros((2, 2)), grid)


def test_decoder_entropy_is_the_mean_bernoulli_entropy_per_pixel():
    images = np.stack([np.zeros((4, 4)), np.ones((4, 4)), np.full((4, 4), 0.5), np.tile([0.1, 0.9], (4, 2))])
    h01 = -(0.1 * math.log(0.1) + 0.9 * math.log(0.9))
    np.testing.assert_allclose(explain.decoder_entropy(images), [0.0, 0.0, math.log(2), h01], rtol=1e-12)
    colour = np.full((1, 2, 2, 3), 0.5)
    np.testing.assert_allclose(explain.decoder_entropy(colour), [math.log(2)])
    with pytest.raises(ValueError, match="images must be \\[N, ...\\]"):
        explain.decoder_entropy(np.zeros(4))


def test_the_difference_image_is_a_minus_b_in_range():
    a, b = np.array([[0.0, 1.0], [0.25, 0.5]]), np.array([[1.0, 0.0], [0.5, 0.5]])
    np.testing.assert_array_equal(explain.difference_image(a, b), [[-1.0, 1.0], [-0.25, 0.0]])
    assert explain.difference_image(a, b).dtype == np.float32
    with pytest.raises(ValueError, match="the two images must have the same shape"):
        explain.difference_image(a, b[:1])


# --- layer rules (runtime/explorer_rules.py) ------------------------------------------------------------

def test_colour_maps_run_from_the_first_to_the_last_stop_and_round_half_up():
    for name, stops in rules.COLOUR_MAPS.items():
        first, last = (tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in (stops[0], stops[-1]))
        colours = rules.map_colours([-5.0, 0.0, 1.0, 7.0, float("nan"), float("-inf")], 0.0, 1.0, name)
        assert [tuple(c) for c in colours] == [first, first, last, last, first, first]
    assert rules.map_colours(0.5, 0.0, 1.0, "diverging").tolist() == [247, 247, 247]  # white at zero difference
    # Halfway between the first two stops #440154 and #472d7b: (68+71)/2 = 69.5 rounds up.
    assert rules.map_colours(0.0625, 0.0, 1.0, "sequential").tolist() == [70, 23, 104]
    assert set(rules.LAYER_COLOUR_MAPS.values()) <= set(rules.COLOUR_MAPS)
    assert set(rules.LAYER_CELL_PIXELS) == set(rules.LAYERS) - {"none"} and rules.LAYERS[0] == "none"


def test_a_layers_cells_follow_the_map_size_up_to_the_limit():
    assert rules.layer_shape("aggregate", 640, 480) == (160, 120)
    assert rules.layer_shape("entropy", 640, 480) == (53, 40)
    cols, rows = rules.layer_shape("prior", 3840, 2160)
    assert cols * rows <= rules.MAX_LAYER_CELLS and abs(cols / rows - 16 / 9) < 0.02
    assert rules.layer_shape("prior", 0, 3) == (1, 1)
    explain.LayerGrid((0.0, 1.0), (0.0, 1.0), *rules.layer_shape("prior", 10_000, 10_000))  # within LayerGrid's bound


def test_layer_and_error_ranges():
    assert rules.layer_range("aggregate", [-np.inf, -30.0, -2.0]) == (-2.0 - rules.LOG_DENSITY_SPAN, -2.0)
    assert rules.layer_range("entropy", [0.1, 0.3, np.nan]) == (0.1, 0.3)
    assert rules.layer_range("entropy", [0.2, 0.2]) == (0.2, 1.2)
    assert rules.layer_range("prior", [-np.inf]) == (0.0, 1.0)
    errors = np.arange(101.0)
    assert rules.error_range(errors) == pytest.approx(rules.ERROR_PERCENTILES)


def test_legend_ticks_are_round_numbers_inside_the_range():
    assert rules.legend_ticks(-1.0, 1.0) == [(-1.0, "-1.0"), (-0.5, "-0.5"), (0.0, "0.0"), (0.5, "0.5"), (1.0, "1.0")]
    assert [label for _, label in rules.legend_ticks(0.0, 0.693)] == ["0.0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6"]
    assert [value for value, _ in rules.legend_ticks(-14.2, -2.2)] == [-14.0, -12.0, -10.0, -8.0, -6.0, -4.0]
    assert [label for _, label in rules.legend_ticks(120.0, 980.0)] == ["200", "400", "600", "800"]
    assert rules.legend_ticks(1.0, 1.0) == [] and rules.legend_ticks(0.0, math.inf) == []
    for low, high in [(0.013, 0.019), (-3e5, 7e5), (2.5, 2.6)]:
        ticks = rules.legend_ticks(low, high)
        assert 2 <= len(ticks) <= 2.5 * rules.LEGEND_TICKS and all(low <= v <= high for v, _ in ticks)


def test_the_site_config_carries_the_layer_rules_to_the_browser():
    import json

    config = json.loads(json.dumps(rules.site_config()))
    assert config["layers"] == rules.LAYER_NAMES and list(config["layers"]) == list(rules.LAYERS)
    assert config["colour_maps"] == {name: list(stops) for name, stops in rules.COLOUR_MAPS.items()}
    assert config["layer_colour_maps"] == rules.LAYER_COLOUR_MAPS
    assert (config["default_neighbours"], config["neighbour_counts"]) == (rules.DEFAULT_NEIGHBOURS,
                                                                          list(rules.NEIGHBOUR_COUNTS))
    assert config["posterior_sigmas"] == list(rules.POSTERIOR_SIGMAS)
    assert (config["log_density_span"], config["legend_ticks"]) == (rules.LOG_DENSITY_SPAN, rules.LEGEND_TICKS)
    assert config["point_colourings"] == list(rules.POINT_COLOURINGS)
    assert config["factor_prefix"] == rules.FACTOR_PREFIX
    assert config["error_percentiles"] == list(rules.ERROR_PERCENTILES)
    assert config["difference_range"] == list(rules.DIFFERENCE_RANGE)
    assert config["layer_cell_pixels"] == rules.LAYER_CELL_PIXELS
    assert config["max_layer_cells"] == rules.MAX_LAYER_CELLS
    assert (config["posterior_samples"], rules.DEFAULT_NEIGHBOURS) == (rules.POSTERIOR_SAMPLES, 8)
