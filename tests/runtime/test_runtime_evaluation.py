"""The VAE's numpy math (runtime/evaluation.py): the bound a bundle reaches, from its ONNX files alone."""

from __future__ import annotations

import numpy as np
import pytest

from latent_atlas.runtime import evaluation
from latent_atlas.runtime.prior import StandardNormal


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
