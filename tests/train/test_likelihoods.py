"""The likelihoods (train/likelihoods.py) against closed forms, numerical integration and enumeration."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from latent_atlas.train import likelihoods, model as model_module
from latent_atlas.train.likelihoods import (BERNOULLI, PIXEL_LEVELS, ContinuousBernoulli, DiscretizedLogistic, bits_per_dim,
                                            continuous_bernoulli_log_normalizer, continuous_bernoulli_mean, likelihood_for)

ETAS = [-1000.0, -60.0, -7.0, -1.0, -0.1001, -0.0999, -0.03, -1e-6, 0.0, 1e-6, 0.03, 0.0999, 0.1001, 1.0, 7.0, 60.0, 1000.0]


def _integrate(f, points: int = 200_001) -> float:
    """The integral of f over [0, 1] by Simpson's rule, in float64."""
    x = np.linspace(0.0, 1.0, points)
    weights = np.ones(points)
    weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0
    return float((f(x) * weights).sum() / (3 * (points - 1)))


# --- Bernoulli: today's numbers ----------------------------------------------------------------------

def test_bernoulli_is_todays_and_model_py_reads_it_here():
    assert model_module.bernoulli_nll is likelihoods.bernoulli_nll
    torch.manual_seed(0)
    logits, x = 4 * torch.randn(5, 3, 4, 4), torch.rand(5, 3, 4, 4)
    p = torch.sigmoid(logits.double())
    by_hand = -(x * torch.log(p) + (1 - x) * torch.log1p(-p)).flatten(1).sum(1)
    torch.testing.assert_close(BERNOULLI.nll(logits, x).double(), by_hand, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(BERNOULLI.nll(logits, x),
                               F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1))
    torch.testing.assert_close(BERNOULLI.mean(logits), torch.sigmoid(logits))


# --- continuous Bernoulli ----------------------------------------------------------------------------

@pytest.mark.parametrize("eta", ETAS)
def test_continuous_bernoulli_is_a_density_with_its_mean(eta):
    log_z = continuous_bernoulli_log_normalizer(torch.tensor(eta, dtype=torch.float64)).item()
    mean = continuous_bernoulli_mean(torch.tensor(eta, dtype=torch.float64)).item()
    if abs(eta) <= 60:  # beyond, the density is a spike at one end that Simpson's rule cannot resolve
        assert _integrate(lambda x: np.exp(eta * x - log_z)) == pytest.approx(1.0, abs=1e-9)
        assert _integrate(lambda x: x * np.exp(eta * x - log_z)) == pytest.approx(mean, abs=1e-9)
    if eta != 0:  # the closed forms, in 50-digit arithmetic
        with mpmath.workdps(50):
            e = mpmath.mpf(eta)
            assert log_z == pytest.approx(float(mpmath.log(mpmath.expm1(e) / e)), rel=1e-12, abs=1e-14)
            assert mean == pytest.approx(float(1 / (1 - mpmath.exp(-e)) - 1 / e), rel=1e-12, abs=1e-15)
    else:
        assert (log_z, mean) == (0.0, 0.5)


def test_continuous_bernoulli_agrees_with_torch_distributions():
    torch.manual_seed(1)
    eta, x = 6 * torch.randn(4, 3, 8, 8, dtype=torch.float64), torch.rand(4, 3, 8, 8, dtype=torch.float64)
    reference = torch.distributions.ContinuousBernoulli(logits=eta)
    torch.testing.assert_close(ContinuousBernoulli().log_prob(eta, x).double(), reference.log_prob(x).flatten(1).sum(1),
                               rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(ContinuousBernoulli().mean(eta).double(), reference.mean, rtol=1e-5, atol=1e-5)


def test_continuous_bernoulli_is_stable_in_float32_near_one_half():
    # The log-normaliser's derivative is the mean: autograd through the float32 branches must give it, and be
    # finite and continuous across the switch to the Taylor series, where the closed form cancels.
    eta = torch.tensor(ETAS, dtype=torch.float32, requires_grad=True)
    log_z = continuous_bernoulli_log_normalizer(eta)
    (grad,) = torch.autograd.grad(log_z.sum(), eta)
    assert torch.isfinite(log_z).all() and torch.isfinite(grad).all()
    exact = continuous_bernoulli_mean(eta.detach().double())
    torch.testing.assert_close(grad.double(), exact, rtol=0, atol=2e-6)
    torch.testing.assert_close(continuous_bernoulli_mean(eta.detach()).double(), exact, rtol=0, atol=2e-6)
    near = torch.tensor([-0.1 - 1e-6, -0.1 + 1e-6, 0.1 - 1e-6, 0.1 + 1e-6])  # both sides of the switch
    torch.testing.assert_close(continuous_bernoulli_log_normalizer(near).double(),
                               continuous_bernoulli_log_normalizer(near.double()), rtol=0, atol=1e-7)


def test_continuous_bernoulli_means_span_the_pixel_range():
    means = ContinuousBernoulli().mean(torch.linspace(-200, 200, 4001))
    assert means.min() >= 0 and means.max() <= 1 and (means.diff() >= 0).all()
    assert means[0] < 0.01 and means[-1] > 0.99


# --- discretized logistic ----------------------------------------------------------------------------

LEVELS = torch.arange(PIXEL_LEVELS, dtype=torch.float64) / (PIXEL_LEVELS - 1)


def _every_level(likelihood, output: torch.Tensor) -> torch.Tensor:
    """log p of each of the 256 levels, [256, *output.shape], one pixel per image."""
    x = LEVELS.view(-1, *[1] * output.dim()).expand(-1, *output.shape)
    flat = output.expand(PIXEL_LEVELS, *output.shape).reshape(-1, 1, 1, 1)
    return likelihood.log_prob(flat, x.reshape(-1, 1, 1, 1)).view(PIXEL_LEVELS, *output.shape)


@pytest.mark.parametrize("log_scale", [math.log(1e-4), math.log(1 / 255), math.log(1 / 32), 0.0, math.log(20.0)])
def test_discretized_logistic_is_a_distribution_over_the_256_levels(log_scale):
    likelihood = DiscretizedLogistic(log_scale=log_scale)
    output = torch.tensor([-30.0, -4.0, -0.3, 0.0, 0.01, 2.5, 9.0, 30.0])
    log_p = _every_level(likelihood, output)
    assert torch.isfinite(log_p).all()
    # 1 to float32's resolution of the bins' edges: a location on an edge splits the mass of a scale of 1e-4
    # between two bins, each then off by (1e-8 / 1e-4) / 4.
    torch.testing.assert_close(log_p.double().exp().sum(0), torch.ones(len(output), dtype=torch.float64), rtol=0,
                               atol=1e-4)
    # Each bin is the logistic's mass over it, the tails folded into the ends, in 50-digit arithmetic from the
    # float32 location and levels the likelihood sees (a scale of 1e-4 magnifies their last bit 10,000 times).
    locations = torch.sigmoid(output).tolist()
    levels = LEVELS.float().tolist()
    with mpmath.workdps(50):
        scale, half = mpmath.exp(log_scale), mpmath.mpf(1) / (2 * (PIXEL_LEVELS - 1))

        def cdf(t, location):
            return 1 / (1 + mpmath.exp(-(t - location) / scale))

        for j, o in enumerate(output.tolist()):
            location = mpmath.mpf(locations[j])
            for k in range(PIXEL_LEVELS):
                x = mpmath.mpf(levels[k])
                mass = ((1 if k == PIXEL_LEVELS - 1 else cdf(x + half, location))
                        - (0 if k == 0 else cdf(x - half, location)))
                if mass > 1e-30:
                    assert log_p[k, j].item() == pytest.approx(float(mpmath.log(mass)), rel=1e-5, abs=1e-5), (k, o)


def test_discretized_logistic_learns_its_scale_and_has_finite_gradients():
    log_scale = torch.nn.Parameter(torch.full((3, 1, 1), math.log(0.05)))
    output = torch.tensor([-40.0, -3.0, 0.0, 3.0, 40.0]).view(5, 1, 1, 1).expand(5, 3, 2, 2).clone().requires_grad_()
    x = torch.tensor([0.0, 1.0, 0.5, 1 / 255, 254 / 255, 1.0]).repeat(10)[:60].view(5, 3, 2, 2)
    nll = DiscretizedLogistic(log_scale=log_scale).nll(output, x).sum()
    nll.backward()
    assert torch.isfinite(nll) and torch.isfinite(output.grad).all()
    assert log_scale.grad is not None and torch.isfinite(log_scale.grad).all() and (log_scale.grad != 0).all()
    # Its decoded image is the location, pixel values in [0, 1].
    torch.testing.assert_close(DiscretizedLogistic().mean(output.detach()), torch.sigmoid(output.detach()))


def test_discretized_logistic_rounds_pixels_to_their_level():
    output = torch.zeros(1, 1, 1, 1)
    at_level, off_level = torch.full((1, 1, 1, 1), 128 / 255), torch.full((1, 1, 1, 1), 128.3 / 255)
    assert DiscretizedLogistic().log_prob(output, off_level) == DiscretizedLogistic().log_prob(output, at_level)


# --- bits per dimension ------------------------------------------------------------------------------

def test_bits_per_dimension():
    dims = 3 * 64 * 64
    assert bits_per_dim(dims * math.log(256), dims) == pytest.approx(8.0)  # uniform over 256 levels: 8 bits
    assert bits_per_dim(dims * math.log(2), dims) == pytest.approx(1.0)
    # The uniform density on [0, 1] (eta = 0) restated on the 0 .. 255 scale is the uniform over 256 levels.
    zero = torch.zeros(1, 3, 64, 64)
    nats = ContinuousBernoulli().nll(zero, torch.rand(1, 3, 64, 64))
    assert nats.item() == pytest.approx(0.0, abs=1e-3)
    assert ContinuousBernoulli().bits_per_dim(nats, dims).item() == pytest.approx(8.0, abs=1e-6)
    # A probability's bits are its nats in base 2, with no change of scale.
    for likelihood in (BERNOULLI, DiscretizedLogistic()):
        assert likelihood.bits_per_dim(dims * math.log(2), dims) == pytest.approx(1.0)


def test_likelihoods_by_name():
    assert likelihood_for("bernoulli") is BERNOULLI
    assert isinstance(likelihood_for("continuous-bernoulli"), ContinuousBernoulli)
    with pytest.raises(ValueError, match="^unknown likelihood 'gaussian'; expected one of bernoulli, "
                                         "continuous-bernoulli, discretized-logistic$"):
        likelihood_for("gaussian")
