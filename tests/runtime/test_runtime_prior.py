"""The latent prior (runtime/prior.py): its density, its draws, its EM fit, its place in bundle.json,
and the runtime's sampling and bounds that use it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from latent_atlas.runtime import bundle as fmt
from latent_atlas.runtime import evaluation, load
from latent_atlas.runtime.prior import GaussianMixture, StandardNormal, fit_gaussian_mixture, from_json

THREE = GaussianMixture([0.5, 0.3, 0.2], [[-2.0, 0.0], [2.0, 1.0], [0.0, -3.0]],
                        [[[0.3, 0.1], [0.1, 0.2]], [[0.5, 0.0], [0.0, 0.1]], [[0.2, -0.05], [-0.05, 0.4]]])


def test_mixture_density_integrates_to_one_and_matches_the_normal():
    xs = np.linspace(-8, 8, 401)
    grid = np.stack(np.meshgrid(xs, xs), -1).reshape(-1, 2)
    cell = (xs[1] - xs[0]) ** 2
    assert np.exp(THREE.log_prob(grid)).sum() * cell == pytest.approx(1.0, abs=1e-3)
    one = GaussianMixture([1.0], [[0.0, 0.0]], [np.eye(2)])
    z = np.random.default_rng(0).normal(size=(5, 7, 2))
    np.testing.assert_allclose(one.log_prob(z), StandardNormal(2).log_prob(z), atol=1e-12)
    assert one.log_prob(z).shape == (5, 7)


def test_mixture_draws_follow_the_mixture_and_repeat_with_their_seed():
    z = THREE.sample(200_000, seed=1)
    assert z.dtype == np.float32 and z.shape == (200_000, 2)
    mean = THREE.weights @ THREE.means
    centred = THREE.means - mean
    covariance = np.einsum("m,mij->ij", THREE.weights, THREE.covariances + centred[:, :, None] * centred[:, None, :])
    np.testing.assert_allclose(z.mean(0), mean, atol=0.02)
    np.testing.assert_allclose(np.cov(z.T), covariance, atol=0.05)
    np.testing.assert_array_equal(THREE.sample(10, seed=3), THREE.sample(10, seed=3))


def test_em_recovers_a_known_mixture():
    z = THREE.sample(30_000, seed=2).astype(np.float64)
    fitted, mean_log_likelihood = fit_gaussian_mixture(z, 3, seed=0)
    order = np.argsort(fitted.means[:, 0])
    np.testing.assert_allclose(fitted.means[order], THREE.means[[0, 2, 1]], atol=0.05)
    np.testing.assert_allclose(fitted.weights[order], THREE.weights[[0, 2, 1]], atol=0.02)
    # EM maximises the likelihood: the fit scores its codes at least as well as the truth, and far better
    # than N(0, I)
    assert mean_log_likelihood >= THREE.log_prob(z).mean() - 1e-3
    assert mean_log_likelihood > StandardNormal(2).log_prob(z).mean() + 1.0


@pytest.mark.parametrize("iterations", [1, 3, 100])
def test_em_reports_the_likelihood_of_the_mixture_it_returns(iterations):
    # converged or cut short, the figure recorded beside a bundle's prior is the returned mixture's own
    z = THREE.sample(5_000, seed=3).astype(np.float64)
    fitted, mean_log_likelihood = fit_gaussian_mixture(z, 3, iterations=iterations, seed=0)
    assert mean_log_likelihood == pytest.approx(float(fitted.log_prob(z).mean()), abs=1e-9)


def test_prior_json_round_trip_and_clear_errors():
    assert isinstance(from_json(None, 2), StandardNormal) and isinstance(from_json({}, 2), StandardNormal)
    again = from_json(json.loads(json.dumps(THREE.to_json())), 2)
    np.testing.assert_allclose(again.log_prob(THREE.means), THREE.log_prob(THREE.means))
    with pytest.raises(ValueError, match="standard_normal.*or.*gaussian_mixture"):
        from_json({"kind": "vmf"}, 2)
    with pytest.raises(ValueError, match="needs 'covariances'"):
        from_json({"kind": "gaussian_mixture", "weights": [1.0], "means": [[0, 0]]}, 2)
    with pytest.raises(ValueError, match="the prior has 2 latent dims, the model 3"):
        from_json(THREE.to_json(), 3)
    with pytest.raises(ValueError, match="sum to 1"):
        GaussianMixture([0.5, 0.4], [[0, 0], [1, 1]], [np.eye(2)] * 2)
    with pytest.raises(ValueError, match="positive definite"):
        GaussianMixture([1.0], [[0, 0]], [[[1.0, 2.0], [2.0, 1.0]]])
    with pytest.raises(ValueError, match=r"shape \[M, D, D\]"):
        GaussianMixture([1.0], [[0, 0]], [np.eye(3)])


@pytest.fixture
def standard_prior_bundle(bundle_copy, tmp_path):
    """The bundled model with its fitted prior taken out of bundle.json: N(0, I)."""
    target = tmp_path / "standard"
    shutil.copytree(bundle_copy, target)
    values = json.loads((target / fmt.MANIFEST).read_text())
    values.pop("prior")
    (target / fmt.MANIFEST).write_text(json.dumps(values))
    return target


@pytest.fixture
def tight_prior_bundle(bundle_copy):
    """The bundled model with a two-point prior: tiny components at (2, 2) and (-2, -2)."""
    values = json.loads((bundle_copy / fmt.MANIFEST).read_text())
    values["prior"] = GaussianMixture([0.5, 0.5], [[2.0, 2.0], [-2.0, -2.0]], [np.eye(2) * 1e-4] * 2).to_json()
    (bundle_copy / fmt.MANIFEST).write_text(json.dumps(values))
    return bundle_copy


def test_a_bundles_prior_is_what_sample_draws_from(tight_prior_bundle, standard_prior_bundle, model):
    fitted = load(tight_prior_bundle, providers="cpu")
    standard = load(standard_prior_bundle, providers="cpu")
    assert fitted.prior.components == 2 and isinstance(standard.prior, StandardNormal)
    assert model.prior.components == 100  # the bundled model's, fitted on its training codes
    np.testing.assert_array_equal(standard.sample(5, seed=4).z,
                                  np.random.default_rng(4).standard_normal((5, 2), dtype=np.float32))
    z = fitted.sample(50, seed=0).z
    assert np.abs(np.abs(z) - 2.0).max() < 0.05 and (z[:, 0] > 0).any() and (z[:, 0] < 0).any()
    assert fmt.Manifest.load(tight_prior_bundle).to_json()["prior"]["kind"] == "gaussian_mixture"
    assert "prior" not in fmt.Manifest.load(standard_prior_bundle).to_json()  # N(0, I) bundles stay as they were


def test_the_bound_under_the_standard_normal_is_read_from_either_key():
    """With a fitted prior the export records the N(0, I) bound beside its own; without one they are the same."""
    shipped = fmt.Manifest.load(fmt.resolve("mnist-binarized"))
    assert shipped.latent_prior.components == 100
    assert shipped.iw_nll_standard_normal == shipped.metrics["test_iw_nll_standard_normal"]
    assert shipped.iw_nll_standard_normal > shipped.metrics["test_iw_nll"]  # the fitted prior's bound is tighter
    standard = shipped.replace(prior={}, metrics={"test_iw_nll": 140.0})
    assert standard.iw_nll_standard_normal == 140.0
    assert standard.replace(metrics={}).iw_nll_standard_normal is None


def test_a_broken_prior_is_refused_when_the_bundle_loads(bundle_copy):
    values = json.loads((bundle_copy / fmt.MANIFEST).read_text())
    values["prior"] = {"kind": "gaussian_mixture", "weights": [1.0], "means": [[0.0, 0.0]], "covariances": [[[0.0]]]}
    (bundle_copy / fmt.MANIFEST).write_text(json.dumps(values))
    with pytest.raises(fmt.BundleError, match=r"bundle.json: covariances must have shape \[M, D, D\]"):
        fmt.read(bundle_copy)


def test_bounds_use_the_prior_they_are_given(model):
    images = model.sample(40, seed=5).images[:, None].astype(np.float32)
    normal_as_mixture = GaussianMixture([1.0], [[0.0, 0.0]], [np.eye(2)])
    default = evaluation.iw_log_likelihood(model.encoder, model.decoder, images, k=8, seed=1)
    np.testing.assert_allclose(
        evaluation.iw_log_likelihood(model.encoder, model.decoder, images, k=8, seed=1, prior=normal_as_mixture),
        default, atol=1e-9)
    # The -ELBO's KL to a mixture is sampled, log q(z|x) - log p(z): for N(0, I) written as a mixture it
    # estimates the exact KL, within the noise of one draw per image
    exact = evaluation.neg_elbo(model.encoder, model.decoder, images, seed=2)
    sampled = evaluation.neg_elbo(model.encoder, model.decoder, images, seed=2, prior=normal_as_mixture)
    assert sampled["test_recon"] == exact["test_recon"]
    assert sampled["test_kl"] == pytest.approx(exact["test_kl"], abs=0.5)
    # A prior far from where the codes are makes every bound worse
    far = GaussianMixture([1.0], [[8.0, 8.0]], [np.eye(2)])
    under_far = evaluation.iw_log_likelihood(model.encoder, model.decoder, images, k=8, seed=1, prior=far)
    assert (under_far < default - 10).all()
    # Several priors from the same samples and decodes: each exactly its own bound
    both = evaluation.iw_log_likelihoods(model.encoder, model.decoder, images, {"normal": StandardNormal(2), "far": far},
                                         k=8, seed=1)
    np.testing.assert_array_equal(both["normal"], default)
    np.testing.assert_array_equal(both["far"], under_far)


def test_the_cli_says_which_prior_and_samples_from_it(tight_prior_bundle, standard_prior_bundle, capsys, tmp_path):
    from latent_atlas.cli.main import main

    assert main(["info", "-m", str(tight_prior_bundle)]) == 0
    assert "a 2-component Gaussian mixture" in capsys.readouterr().out
    assert main(["info", "-m", str(standard_prior_bundle)]) == 0
    assert "N(0, I)" in capsys.readouterr().out
    assert main(["info", "-m", "mnist"]) == 0
    assert "a 100-component Gaussian mixture fitted to 110,000 training codes" in capsys.readouterr().out
    assert main(["info", "-m", str(tight_prior_bundle), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["prior"]["kind"] == "gaussian_mixture"
    out = tmp_path / "samples.png"
    assert main(["sample", "-m", str(tight_prior_bundle), "-n", "4", "--seed", "0", "-o", str(out)]) == 0
    model = load(tight_prior_bundle, providers="cpu")
    from PIL import Image
    grid = np.asarray(Image.open(out))
    assert grid.size and np.array_equal(np.asarray(model.sample(4, seed=0).grid()), grid)
