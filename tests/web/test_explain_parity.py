"""The browser's ports (web/app/js/explain.js, view_state.js) against the Python they port (runtime/explain.py,
explorer_rules.py, view_state.py), on the same inputs in real Chromium, with the constants the site's
config.json carries."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from latent_atlas.runtime import explain, load
from latent_atlas.runtime import explorer_rules as rules
from latent_atlas.runtime import view_state as vs
from latent_atlas.runtime.prior import StandardNormal

pytestmark = pytest.mark.browser

# Loads the modules and the site's config into window.__explain (a page of the site, without the explorer).
SETUP = """async () => {
  const [explain, viewState] = await Promise.all([import(new URL('js/explain.js', location.href)),
                                                 import(new URL('js/view_state.js', location.href))]);
  const [config, schema] = await Promise.all(['config.json', 'view_state.schema.json'].map(
    name => fetch(new URL(name, location.href)).then(r => r.json())));
  window.__explain = { explain, viewState, config, schema };
}"""


@pytest.fixture(scope="module")
def js(browser_context, site_url):
    page = browser_context.new_page()
    page.goto(site_url + "config.json")
    page.evaluate(SETUP)

    def run(body: str, *args):
        """Runs `body` (a function of ({explain, viewState, config, schema}, ...args)) in the page."""
        return page.evaluate(f"(args) => ({body})(window.__explain, ...args)", list(args))

    yield run
    page.close()


@pytest.fixture(scope="module")
def mnist():
    return load("mnist")


def test_ellipses_and_sample_statistics(js):
    mean, logvar = [0.5, -1.0, 2.0], [-3.2, 0.4, 1.1]
    got = js("({explain}, m, l) => explain.posteriorEllipses(m, l, [2, 0], [1, 2])", mean, logvar)
    np.testing.assert_allclose(got, explain.posterior_ellipses(mean, logvar, (2, 0), (1, 2)), rtol=1e-12)
    # The draws come from different generators: their distribution is what must agree.
    stats = js("""({explain}, m, l) => { const {data} = explain.posteriorSamples(m, l, 20000, 5);
        return [0, 1, 2].map(k => { let s = 0, q = 0; for (let r = 0; r < 20000; r++) { s += data[3 * r + k];
        q += data[3 * r + k] ** 2; } return [s / 20000, Math.sqrt(q / 20000 - (s / 20000) ** 2)]; }); }""",
               mean, logvar)
    python = explain.posterior_samples(mean, logvar, 20000, seed=5)
    for k, (js_mean, js_std) in enumerate(stats):
        std = math.exp(0.5 * logvar[k])
        assert abs(js_mean - mean[k]) < 0.05 * std and abs(python[:, k].mean() - mean[k]) < 0.05 * std
        assert abs(js_std / std - 1) < 0.03 and abs(python[:, k].std() / std - 1) < 0.03


def test_neighbours_are_the_same_points_on_the_bundled_atlas(js, mnist):
    points, _ = mnist.bundle.read_atlas()
    rng = np.random.default_rng(0)
    queries = np.concatenate([points[rng.choice(len(points), 100)] + rng.normal(0, 0.05, (100, 2)),
                              rng.normal(0, 3, (100, 2)), [[40.0, -40.0]]])
    got = js("""({explain, config}, data, queries) => {
        const index = new explain.NeighbourIndex({data: Float32Array.from(data), shape: [data.length / 2, 2]}, [0, 1],
                                                 config.explain);
        return queries.map(z => { const [i, d] = index.query(z, 8); return [Array.from(i), Array.from(d)]; }); }""",
             points.ravel().tolist(), queries.tolist())
    index = explain.NeighbourIndex(points)
    for z, (indices, distances) in zip(queries, got):
        want_indices, want_distances = index.query(z, rules.DEFAULT_NEIGHBOURS)
        assert indices == want_indices.tolist()
        np.testing.assert_allclose(distances, want_distances, rtol=1e-12)


def test_densities_entropy_and_difference(js, mnist):
    means, _ = mnist.bundle.read_atlas()
    logvars = mnist.atlas_extra.z_logvar
    subset = slice(0, 3000)
    grid = explain.LayerGrid((-3.5, 4.0), (-3.0, 3.5), 32, 24)
    prior_json = mnist.bundle.manifest.prior
    got = js("""({explain, config}, prior, means, logvars, g) => {
        const grid = new explain.LayerGrid(g[0], g[1], g[2], g[3], config.explain);
        const arrays = [means, logvars].map(a => ({data: Float32Array.from(a), shape: [a.length / 2, 2]}));
        return [explain.priorLogDensity(null, 2, grid), explain.priorLogDensity(prior, 2, grid),
                explain.aggregateLogDensity(arrays[0], arrays[1], grid, [0, 1], null, config.explain)].map(a => Array.from(a)); }""",
             prior_json, means[subset].ravel().tolist(), logvars[subset].ravel().tolist(),
             [list(grid.x_range), list(grid.y_range), grid.cols, grid.rows])
    normal = explain.prior_log_density(StandardNormal(2), grid)
    np.testing.assert_allclose(np.reshape(got[0], normal.shape), normal, rtol=1e-12)
    mixture = explain.prior_log_density(mnist.prior, grid)
    np.testing.assert_allclose(np.reshape(got[1], mixture.shape), mixture, rtol=1e-10)
    aggregate = explain.aggregate_log_density(means[subset], logvars[subset], grid)
    np.testing.assert_allclose(np.reshape(got[2], aggregate.shape), aggregate, rtol=1e-10)
    # Entropy and difference on real decodes (float32, as the page's decoder gives them).
    a = mnist.decode(grid.points(2)[:40]).astype(np.float32)
    b = mnist.decode(grid.points(2)[40:80]).astype(np.float32)
    entropy, difference = js("""({explain}, a, b, n) => [
        Array.from(explain.decoderEntropy({data: Float32Array.from(a), shape: [n, 28, 28]})),
        Array.from(explain.differenceImage(Float32Array.from(a), Float32Array.from(b)))]""",
                             a.ravel().tolist(), b.ravel().tolist(), len(a))
    np.testing.assert_allclose(entropy, explain.decoder_entropy(a), rtol=1e-9)
    np.testing.assert_array_equal(np.float32(difference), explain.difference_image(a, b).ravel())


def test_colours_ranges_and_ticks(js, mnist):
    errors = mnist.atlas_extra.recon_error
    values = np.concatenate([np.linspace(-15, 2, 500), [np.nan, -np.inf, np.inf]])
    low, high = rules.layer_range("aggregate", values)
    got = js("""({explain, config}, values, errors, low, high) => {
        const r = config.explorer, v = values;
        return {range: explain.layerRange('aggregate', v, r), entropy: explain.layerRange('entropy', v, r),
                seq: Array.from(explain.mapColours(v, low, high, 'sequential', r)),
                div: Array.from(explain.mapColours(v, -1, 1, 'diverging', r)),
                error: explain.errorRange(errors, r),
                ticks: [[-14.2, -2.2], [0, 0.693], [-1, 1], [120, 980], [0.013, 0.019], [-3e5, 7e5], [2.5, 2.6],
                        [low, high]].map(([a, b]) => explain.legendTicks(a, b, r.legend_ticks)),
                shapes: [['aggregate', 640, 480], ['entropy', 1013, 777], ['prior', 3840, 2160], ['prior', 0, 3]]
                  .map(([layer, w, h]) => explain.layerShape(layer, w, h, r))}; }""",
             values.tolist(), errors.tolist(), low, high)
    assert got["range"] == list(rules.layer_range("aggregate", values))
    assert got["entropy"] == list(rules.layer_range("entropy", values))
    assert got["seq"] == rules.map_colours(values, low, high, "sequential").ravel().tolist()
    assert got["div"] == rules.map_colours(values, -1, 1, "diverging").ravel().tolist()
    assert got["error"] == list(rules.error_range(errors))
    pairs = [(-14.2, -2.2), (0, 0.693), (-1, 1), (120, 980), (0.013, 0.019), (-3e5, 7e5), (2.5, 2.6), (low, high)]
    assert got["ticks"] == [[list(tick) for tick in rules.legend_ticks(a, b)] for a, b in pairs]
    sizes = [("aggregate", 640, 480), ("entropy", 1013, 777), ("prior", 3840, 2160), ("prior", 0, 3)]
    assert got["shapes"] == [list(rules.layer_shape(*size)) for size in sizes]


STATES = [vs.ViewState(),
          vs.ViewState(model="mnist", compare="fashion-mnist", dims=(1, 0), cursor=(0.123456789, -2 / 3),
                       view=((-3.0, 3.25), (-2.0, 2.5)), a=(1e-05, 2.0), b=(-0.125, 234.5), layer="aggregate",
                       points="factor:size", grid_n=12, grid_source="percentiles", uncertainty=True, neighbours=5),
          vs.ViewState(model="https://example.org/models/my bundle/(1)/", cursor=(5e-7, -999.9999))]

HOSTILE = [
    "cursor=1e308,-1e308&a=nan,1&b=1e400,0&view=-5000,1,0,0.5&dims=0,7&layer=%3Cscript%3E&points=factor:" + "x" * 200
    + "&grid=500,view&neighbours=0.5&uncertainty=maybe&zzz=1&" + "k" * 100 + "=2&cursor=0,0&__proto__=1",
    "model=nosuchmodel&compare=javascript:alert(1)&dims=1,1&view=1,2,3&grid=10&neighbours=99&uncertainty=true",
    "model=" + "m" * 3000 + "&cursor=1,2,3&a=&b=1_0,2&points=error&layer=prior&grid=3.5,nowhere",
    "cursor=" + "1," * vs.MAX_QUERY_CHARS,
    "?&&=&model=mnist%0A&dims=0,1&cursor=0x10,1&view=0,0,1,1&%ZZ=1&grid=7,view,extra",
]


def test_view_states_cross_between_python_and_javascript(js):
    models = ["mnist", "fashion-mnist"]
    queries = [state.to_query() for state in STATES]
    got = js("""({viewState, config, schema}, queries, models) => queries.map(q => {
        const context = {schema, rules: config.view_state, models, latentDim: 2};
        const [state, messages] = viewState.fromQuery(q, context);
        return {state, messages, query: viewState.toQuery(state, context),
                json: viewState.fromJson(JSON.parse(JSON.stringify(state)), context)}; })""", queries, models)
    for state, query, result in zip(STATES, queries, got):
        python, messages = vs.from_query(query, models=models, latent_dim=2)
        assert result["messages"] == messages == []
        assert result["state"] == python.to_json()
        assert vs.from_query(result["query"], models=models, latent_dim=2) == (python, [])  # JS -> Python
        assert result["json"] == [python.to_json(), []]
        assert vs.from_query(python.to_query(), models=models, latent_dim=2)[0] == python  # stable after one trip


@pytest.mark.parametrize("latent_dim", [2, None])
def test_hostile_queries_give_the_same_repairs_and_messages(js, latent_dim):
    models = ["mnist", "fashion-mnist"]
    got = js("""({viewState, config, schema}, queries, models, latentDim) => queries.map(q =>
        viewState.fromQuery(q, {schema, rules: config.view_state, models, latentDim}))""", HOSTILE, models, latent_dim)
    for query, (state, messages) in zip(HOSTILE, got):
        python, python_messages = vs.from_query(query, models=models, latent_dim=latent_dim)
        assert messages == python_messages, query[:80]
        assert state == python.to_json(), query[:80]
        assert messages  # every one of them needed repairs
    hostile_json = [{"view": {"x": [0, 1]}}, {"grid": {"n": 3.5, "source": "nowhere"}}, {"neighbours": True},
                    {"dims": [True, 0]}, {"cursor": [True, 1.0]}, {"a": [1.0] * 600}, [], {"uncertainty": 1},
                    {"model": "mnist\n", "points": "class\n"}, {"cursor": [0.0, 1.0, 2.0], "a": [1.0, 2.0],
                                                                "dims": [0, 2]}]
    got = js("""({viewState, config, schema}, values, models, latentDim) => values.map(v =>
        viewState.fromJson(v, {schema, rules: config.view_state, models, latentDim}))""",
             hostile_json, models, latent_dim)
    for value, (state, messages) in zip(hostile_json, got):
        python, python_messages = vs.from_json(json.loads(json.dumps(value)), models=models, latent_dim=latent_dim)
        assert (state, messages) == (python.to_json(), python_messages), value
