"""The VAE's numpy math (runtime/evaluation.py): the bound a bundle reaches, from its ONNX files alone."""

from __future__ import annotations

import numpy as np
import pytest

from latent_atlas.runtime import evaluation
from latent_atlas.runtime.prior import GaussianMixture, StandardNormal


@pytest.fixture(scope="module")
def images(model) -> np.ndarray:
    """Images the model itself drew from its prior: valid grey images, no dataset needed."""
    return model.sample(300, seed=0).images[:, None].astype(np.float32)


def test_closed_form_kl_matches_monte_carlo():
    rng = np.random.default_rng(0)
    mean, logvar = rng.normal(0, 1, (4, 2)), rng.normal(0, 0.5, (4, 2))
    z = evaluation.reparameterised(mean, logvar, rng.standard_normal((200_000, 4, 2)).astype(np.float32))
    monte_carlo = (evaluation.gaussian_log_prob(z, mean, logvar) - StandardNormal(z.shape[-1]).log_prob(z)).mean(0)
    np.testing.assert_allclose(evaluation.gaussian_kl(mean, logvar), monte_carlo, atol=0.02)


def test_bernoulli_log_likelihood_is_finite_for_saturated_pixels():
    x = np.zeros((1, 1, 28, 28))
    x[0, 0, 0, 0] = 1.0
    probs = np.zeros((1, 1, 28, 28))  # the pixel that is on got probability 0: clipped, not -inf
    value = evaluation.bernoulli_log_likelihood(x, probs)
    assert value.shape == (1,) and np.isfinite(value).all() and value[0] == pytest.approx(np.log(evaluation.PROB_EPS), abs=1e-3)


def test_neg_elbo_and_iw_bound_agree(model, images):
    elbo = evaluation.neg_elbo(model.encoder, model.decoder, images, seed=1, batch_size=128)
    assert elbo["test_neg_elbo"] == pytest.approx(elbo["test_recon"] + elbo["test_kl"])
    one = -evaluation.iw_log_likelihood(model.encoder, model.decoder, images, k=1, seed=2).mean()
    many = -evaluation.iw_log_likelihood(model.encoder, model.decoder, images, k=64, seed=2).mean()
    assert one == pytest.approx(elbo["test_neg_elbo"], abs=2.0)  # K = 1 is the ELBO, other noise
    assert many < one  # more samples: a tighter bound


def test_iw_samples_are_bounded(model, images):
    with pytest.raises(ValueError, match="from 1 to 10,000"):
        evaluation.iw_log_likelihood(model.encoder, model.decoder, images, k=10**6)


class _OneBumpDecoder:
    """A decoder whose first pixel is on with probability HEIGHT * exp(-|z - CENTRE|^2 / (2 WIDTH^2)) and
    every other pixel off: p(x) of the image with only that pixel on has a closed form."""

    latent_dim = 2
    CENTRE, WIDTH, HEIGHT = np.array([0.7, -0.3]), 0.1, 0.5

    def decode(self, z):
        probs = np.zeros((len(z), 28, 28), np.float32)
        probs[:, 0, 0] = self.HEIGHT * np.exp(-((z - self.CENTRE) ** 2).sum(1) / (2 * self.WIDTH ** 2))
        return probs


def _one_bump_log_likelihood(means, covariances, weights) -> float:
    """log p(x) for _OneBumpDecoder under a Gaussian mixture prior: the bump is HEIGHT * 2 pi WIDTH^2 times a
    normal density in z, and the integral of a product of two normal densities is a normal density."""
    d = _OneBumpDecoder
    total = sum(w * np.exp(-0.5 * (d.CENTRE - m) @ np.linalg.solve(c + d.WIDTH ** 2 * np.eye(2), d.CENTRE - m))
                / (2 * np.pi * np.sqrt(np.linalg.det(c + d.WIDTH ** 2 * np.eye(2))))
                for m, c, w in zip(means, covariances, weights))
    # the 783 pixels that are off have probability 0, clipped to PROB_EPS
    return float(np.log(d.HEIGHT * 2 * np.pi * d.WIDTH ** 2 * total) + 783 * np.log1p(-evaluation.PROB_EPS))


def test_quadrature_gives_the_exact_likelihood_under_either_prior():
    x = np.zeros((2, 1, 28, 28), np.float32)
    x[:, 0, 0, 0] = 1.0
    exact = _one_bump_log_likelihood([np.zeros(2)], [np.eye(2)], [1.0])
    # (the integrand is negligible beyond 2.5 of the origin, and a smaller grid keeps the test quick)
    np.testing.assert_allclose(evaluation.grid_log_likelihood(_OneBumpDecoder(), x, extent=2.5), exact, atol=1e-4)
    mixture = GaussianMixture(np.array([0.3, 0.7]), np.array([[0.5, -0.5], [-1.0, 1.0]]),
                              np.array([[[0.2, 0.05], [0.05, 0.1]], np.eye(2) * 0.5]))
    exact = _one_bump_log_likelihood(mixture.means, mixture.covariances, mixture.weights)
    np.testing.assert_allclose(evaluation.grid_log_likelihood(_OneBumpDecoder(), x, prior=mixture, extent=2.5), exact,
                               atol=1e-4)
    # a grid far coarser than the posterior (0.5 against a width of 0.1) misses it: the spacing matters
    assert abs(evaluation.grid_log_likelihood(_OneBumpDecoder(), x[:1], spacing=0.5)[0] - exact) > 0.1


@pytest.mark.slow  # two fine grids and K = 1000: as much computing as a tiny training
def test_quadrature_is_the_likelihood_the_bounds_approach(model, images):
    x = images[:10]
    # the images the model drew from its prior are coded well within 4 of the origin
    exact = evaluation.grid_log_likelihood(model.decoder, x, spacing=0.04, extent=4.0)
    finer = evaluation.grid_log_likelihood(model.decoder, x, spacing=0.03, extent=4.0)
    np.testing.assert_allclose(exact, finer, atol=0.05)
    bounds = [evaluation.iw_log_likelihood(model.encoder, model.decoder, x, k=k, seed=3).mean() for k in (1, 1000)]
    assert bounds[0] < bounds[1] <= exact.mean() + 0.05 and exact.mean() - bounds[1] < 1.0


def test_quadrature_refuses_grids_it_cannot_decode():
    x = np.zeros((1, 1, 28, 28), np.float32)
    with pytest.raises(ValueError, match="0 < spacing <= extent"):
        evaluation.grid_log_likelihood(_OneBumpDecoder(), x, spacing=0.0)

    class ThreeD(_OneBumpDecoder):
        latent_dim = 3

    with pytest.raises(ValueError, match="125,751,501 points.*iw_log_likelihood"):
        evaluation.grid_log_likelihood(ThreeD(), x)


def test_quadrature_under_several_priors_is_each_priors_own(model, images):
    x = images[:3]
    mixture = GaussianMixture(np.array([0.5, 0.5]), np.array([[1.0, 0.0], [-1.0, 0.0]]), np.stack([np.eye(2)] * 2))
    both = evaluation.grid_log_likelihoods(model.decoder, x, {"normal": StandardNormal(2), "mixture": mixture},
                                           spacing=0.1, extent=4.0)
    np.testing.assert_allclose(both["normal"], evaluation.grid_log_likelihood(model.decoder, x, spacing=0.1, extent=4.0))
    np.testing.assert_allclose(both["mixture"],
                               evaluation.grid_log_likelihood(model.decoder, x, mixture, spacing=0.1, extent=4.0))
    assert np.abs(both["normal"] - both["mixture"]).min() > 0.01


def test_quadrature_sums_the_same_bernoulli_likelihood_the_bounds_use(model, images):
    # the grid computes log p(x|z) in a matrix-product form: it must be bernoulli_log_likelihood's figure
    x, spacing = images[:3], 1.0
    axis = np.arange(-2.0, 2.0 + spacing / 2, spacing)
    grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)
    log_px_z = evaluation.bernoulli_log_likelihood(x, model.decoder.decode(grid)[:, None, None])  # [points, N]
    direct = np.logaddexp.reduce(log_px_z + StandardNormal(2).log_prob(grid)[:, None], axis=0) + 2 * np.log(spacing)
    np.testing.assert_allclose(evaluation.grid_log_likelihood(model.decoder, x, spacing=spacing, extent=2.0), direct,
                               rtol=0, atol=1e-3)
