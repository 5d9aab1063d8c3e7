"""The decoder's likelihoods p(x|z), each defined once: its log-probability in nats, its mean, and what
its figures mean in bits per dimension.

The decoder outputs one unconstrained value per pixel and channel (`output`, the logits); a likelihood
says what distribution over the pixel's value in [0, 1] that number parameterises. Whatever the
likelihood, `mean(output)` is a pixel value in [0, 1], which is what every consumer of a decoded image
(the exported decoder, the explorers) shows.

    bernoulli            today's: p(x) = lambda^x (1 - lambda)^(1 - x), lambda = sigmoid(output). A
                         probability for binary pixels; for grey levels it is not normalised (the
                         "continuous-intensity" Bernoulli of Kingma & Welling, and of every MNIST figure here).
    continuous-bernoulli the same with its normaliser (Loaiza-Ganem & Cunningham, "The continuous Bernoulli",
                         NeurIPS 2019, https://arxiv.org/abs/1907.06845): a true density on [0, 1] for grey and
                         colour levels alike. In the logits it is the exponential density exp(eta x) / Z(eta)
                         truncated to [0, 1], Z(eta) = (e^eta - 1) / eta.
    discretized-logistic the 8-bit pixel's probability under a logistic of location sigmoid(output) and a
                         fixed or learned scale, its 256 bins of width 1/255 with the tails folded into the
                         first and last (Salimans et al., "PixelCNN++", 2017; Kingma et al., "Improved
                         Variational Inference with Inverse Autoregressive Flow", 2016): a probability, so
                         its bits per dimension are the literature's for natural images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# Below this |eta| the continuous Bernoulli's log-normaliser and mean are their Taylor series: the closed
# forms divide two quantities that both vanish at eta = 0, and lose all float32 precision near it.
_TAYLOR_BELOW = 0.1
PIXEL_LEVELS = 256  # 8-bit pixels: the discretized logistic's bins


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x|z) per image, summed over pixels. BCE-with-logits is the stable form of the
    Bernoulli log-likelihood; for grey-level x it is the "continuous-intensity" Bernoulli of the paper."""
    return F.binary_cross_entropy_with_logits(logits.float(), x.float(), reduction="none").flatten(1).sum(1)


def bits_per_dim(nats: torch.Tensor | float, dims: int, levels: int | None = None) -> torch.Tensor | float:
    """A negative log-likelihood per image in nats as bits per dimension (`dims` = channels x height x width).

    For a probability (Bernoulli on binary pixels, the discretized logistic) that is nats / (dims ln 2).
    A density on [0, 1] (the continuous Bernoulli) gives -log p per unit interval, which can be negative;
    `levels` restates it on the scale of 0 .. levels - 1 that dequantised models report (each dimension's
    density divided by `levels`, i.e. log2(levels) more bits)."""
    bits = nats / (dims * math.log(2.0))
    return bits if levels is None else bits + math.log2(levels)


def _sum_pixels(values: torch.Tensor) -> torch.Tensor:
    return values.flatten(1).sum(1)


def _where_taylor(eta: torch.Tensor, closed_form, series) -> torch.Tensor:
    """closed_form(eta) away from 0, series(eta) near it, with neither evaluated where it is not used
    (so no NaN reaches the gradient through the branch that is thrown away)."""
    small = eta.abs() < _TAYLOR_BELOW
    safe = torch.where(small, torch.full_like(eta, _TAYLOR_BELOW), eta)
    return torch.where(small, series(torch.where(small, eta, torch.zeros_like(eta))), closed_form(safe))


def continuous_bernoulli_log_normalizer(eta: torch.Tensor) -> torch.Tensor:
    """log Z(eta) = log((e^eta - 1) / eta), the log of the integral of exp(eta x) over [0, 1] (0 at eta = 0):
    the paper's density C(lambda) lambda^x (1 - lambda)^(1 - x) is exp(eta x - log Z(eta)) in the logits."""
    def closed_form(e: torch.Tensor) -> torch.Tensor:
        # log|e^e - 1| = max(e, 0) + log(1 - e^-|e|), which neither overflows nor cancels.
        return e.clamp(min=0) + torch.log(-torch.expm1(-e.abs())) - torch.log(e.abs())

    return _where_taylor(eta, closed_form, lambda e: e / 2 + e.pow(2) / 24 - e.pow(4) / 2880 + e.pow(6) / 181440)


def continuous_bernoulli_mean(eta: torch.Tensor) -> torch.Tensor:
    """E[x] = 1 / (1 - e^-eta) - 1 / eta, the derivative of log Z; 1/2 at eta = 0."""
    def closed_form(e: torch.Tensor) -> torch.Tensor:
        return -1.0 / torch.expm1(-e) - 1.0 / e

    return _where_taylor(eta, closed_form, lambda e: 0.5 + e / 12 - e.pow(3) / 720 + e.pow(5) / 30240)


def _log_sigmoid_difference(upper: torch.Tensor, lower: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """log(sigmoid(upper) - sigmoid(lower)) for width = upper - lower > 0, through the identity
    sigmoid(a) - sigmoid(b) = sigmoid(a) sigmoid(-b) (1 - e^-(a - b)): no two nearly equal numbers are
    subtracted, whether both sigmoids are near 0, near 1 or (a wide logistic) near one half."""
    return F.logsigmoid(upper) + F.logsigmoid(-lower) + torch.log(-torch.expm1(-width))


@dataclass(frozen=True)
class Likelihood:
    """p(x|z) for pixel values x in [0, 1], parameterised by the decoder's output (the logits)."""

    name: str = "bernoulli"
    # Whether log_prob is a probability (bits per dimension as they are) or a density on [0, 1].
    discrete: bool = True

    def log_prob(self, output: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per image in nats, summed over channels and pixels, in float32."""
        return -bernoulli_nll(output, x)

    def nll(self, output: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return -self.log_prob(output, x)

    def mean(self, output: torch.Tensor) -> torch.Tensor:
        """The decoded image: E[x|z], pixel values in [0, 1]."""
        return torch.sigmoid(output)

    def bits_per_dim(self, nats: torch.Tensor | float, dims: int) -> torch.Tensor | float:
        """`bits_per_dim` of nats per image under this likelihood (densities on the 0 .. 255 scale)."""
        return bits_per_dim(nats, dims, None if self.discrete else PIXEL_LEVELS)

    def to_json(self) -> dict:
        """bundle.json's `likelihood` entry (runtime/bundle_schema.py): {"name": ...}, and the parameters."""
        return {"name": self.name}


@dataclass(frozen=True)
class ContinuousBernoulli(Likelihood):
    name: str = "continuous-bernoulli"
    discrete: bool = False

    def log_prob(self, output: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        eta = output.float()
        return _sum_pixels(eta * x.float() - continuous_bernoulli_log_normalizer(eta))

    def mean(self, output: torch.Tensor) -> torch.Tensor:
        return continuous_bernoulli_mean(output.float())


@dataclass(frozen=True)
class DiscretizedLogistic(Likelihood):
    """`log_scale` is the logistic's log-scale (in units of the [0, 1] pixel range): a number, or a tensor
    that broadcasts against the images (a learned per-channel one is [C, 1, 1]). The decoded image is
    the location sigmoid(output), the logistic's mean, which the folded tails move only within a few
    scales of 0 and 1."""

    name: str = "discretized-logistic"
    discrete: bool = True
    log_scale: float | torch.Tensor = math.log(1.0 / 32)

    def log_prob(self, output: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        location = torch.sigmoid(output.float())
        log_scale = torch.as_tensor(self.log_scale, dtype=torch.float32, device=location.device)
        inv_scale = torch.exp(-log_scale)
        # x on the bins' centres k / 255; the edge bins reach to -inf and +inf.
        x = torch.round(x.float() * (PIXEL_LEVELS - 1)) / (PIXEL_LEVELS - 1)
        half = 0.5 / (PIXEL_LEVELS - 1)
        half_scaled, centred = half * inv_scale, (x - location) * inv_scale  # in the logistic's units
        upper, lower = centred + half_scaled, centred - half_scaled
        # Every branch is finite everywhere, so the ones thrown away put no NaN in the gradient.
        interior = _log_sigmoid_difference(upper, lower, 2 * half_scaled)
        log_p = torch.where(x < half, F.logsigmoid(upper), torch.where(x > 1 - half, F.logsigmoid(-lower), interior))
        return _sum_pixels(log_p)

    def mean(self, output: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(output)

    def to_json(self) -> dict:
        """A per-channel log-scale ([C, 1, 1]) as a list of C numbers, a single one as a number."""
        scale = torch.as_tensor(self.log_scale, dtype=torch.float32).detach().cpu()
        return {"name": self.name, "log_scale": scale.item() if scale.numel() == 1 else scale.flatten().tolist()}


BERNOULLI = Likelihood()
LIKELIHOODS: dict[str, Likelihood] = {
    likelihood.name: likelihood for likelihood in (BERNOULLI, ContinuousBernoulli(), DiscretizedLogistic())}


def likelihood_for(name: str) -> Likelihood:
    """The likelihood called `name`, or ValueError in one line listing those there are."""
    if name not in LIKELIHOODS:
        raise ValueError(f"unknown likelihood {name!r}; expected one of {', '.join(LIKELIHOODS)}")
    return LIKELIHOODS[name]


def likelihood_from_json(entry: dict | None) -> Likelihood:
    """The inverse of `Likelihood.to_json` (bundle.json's `likelihood`); None or absent: the Bernoulli."""
    if not entry:
        return BERNOULLI
    likelihood = likelihood_for(entry.get("name", BERNOULLI.name))
    if isinstance(likelihood, DiscretizedLogistic) and "log_scale" in entry:
        scale = torch.tensor(entry["log_scale"], dtype=torch.float32)
        likelihood = DiscretizedLogistic(log_scale=scale.item() if scale.dim() == 0 else scale.view(-1, 1, 1))
    return likelihood
