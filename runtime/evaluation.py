"""The VAE's math in numpy: how well a bundle models images, from its ONNX files alone (torch-free).

The same quantities as the trainer's `train.evaluate` (PyTorch), for anything that evaluates a
bundle: the export's recorded metrics, tests, and users with only the runtime installed. Nats per
image, Bernoulli likelihood over the image's values (784 for MNIST, C x H x W in general), posterior q(z|x) = N(mean, diag(exp(logvar))),
prior N(0, I) (Kingma & Welling 2013, https://arxiv.org/abs/1312.6114), or the bundle's fitted prior
(runtime/prior.py) where one is passed.

The decoder outputs probabilities (its sigmoid is part of the graph), so log p(x|z) is computed
from probabilities clipped to [PROB_EPS, 1 - PROB_EPS]: a float32 sigmoid rounds to exactly 0 or 1
for large logits. PyTorch's BCE-with-logits does not need the clip; the two agree to a fraction of
a nat per image on these models.

Only the Bernoulli: a model of another likelihood (bundle.json `likelihood`, e.g. continuous-bernoulli)
carries figures that the exporter measured with PyTorch under that likelihood (`metrics`, computed_with
"pytorch"), and `check_bernoulli` refuses to measure it here with the wrong one.

Images come in as the model reads them, float32 [N, C, H, W]; a decoder (runtime.Decoder, or anything with
its `decode` and `latent_dim`) gives them back in the display layout (images.to_display), which the
likelihood is compared in.
"""

from __future__ import annotations

import math

import numpy as np

from .bundle_schema import BERNOULLI
from .images import to_display
from .limits import MAX_IW_SAMPLES, MAX_QUADRATURE_POINTS
from .prior import LOG_2PI, Prior, StandardNormal, logsumexp

PROB_EPS = 1e-7
# The importance-weighted bound's default subset, the first this many test images: K decodes per image
# make the bound on all 10,000 too slow for every epoch or every export.
QUICK_IW_IMAGES = 500
# K of the importance-weighted bound wherever none is given (evaluate, export, fit-prior): the
# literature's IW-100.
DEFAULT_IW_SAMPLES = 100
# Decoded images held at once by the importance-weighted bound: K x batch <= this (about 50 MB as float64).
MAX_DECODES = 8192


def gaussian_kl(mean: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """KL(N(mean, exp(logvar)) || N(0, I)) per row, summed over latent dims (Kingma & Welling, appendix B)."""
    mean, logvar = np.asarray(mean, np.float64), np.asarray(logvar, np.float64)
    return 0.5 * np.sum(mean ** 2 + np.exp(logvar) - 1.0 - logvar, axis=-1)


def _check_decoder(decoder) -> None:
    """The functions below measure a Bernoulli decoder; a runtime.Decoder says its likelihood (its file's
    metadata), anything else decodes is taken as the Bernoulli's."""
    check_bernoulli(getattr(decoder, "likelihood", None), str(getattr(decoder, "path", "this decoder")))


def check_bernoulli(likelihood: str | None, what: str = "this model") -> None:
    """ValueError in one line unless `likelihood` (a bundle's likelihood name; None: Bernoulli) is the Bernoulli,
    the only one measured here."""
    if likelihood not in (None, BERNOULLI):
        raise ValueError(f"{what} has a {likelihood} likelihood; the runtime's evaluation is the Bernoulli's only: "
                         f"read its figures from bundle.json's metrics (measured at export under its own likelihood)")


def bernoulli_log_likelihood(x: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """log p(x|z) per image [..., N], summed over the values of each image of x [N, ...] (grey levels
    allowed: the continuous-intensity Bernoulli). probs: the same layout as x, with optional extra leading
    sample dims."""
    p = np.clip(np.asarray(probs, np.float64), PROB_EPS, 1.0 - PROB_EPS)
    x = np.asarray(x, np.float64)
    terms = x * np.log(p) + (1.0 - x) * np.log1p(-p)
    return terms.reshape(*terms.shape[:terms.ndim - x.ndim + 1], -1).sum(-1)


def gaussian_log_prob(z: np.ndarray, mean: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """log N(z; mean, diag(exp(logvar))) summed over latent dims; z may carry extra leading sample dims."""
    mean, logvar = np.asarray(mean, np.float64), np.asarray(logvar, np.float64)
    return -0.5 * np.sum(LOG_2PI + logvar + (np.asarray(z, np.float64) - mean) ** 2 / np.exp(logvar), axis=-1)


def reparameterised(mean: np.ndarray, logvar: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """z = mean + std * eps as float32, what the decoder takes."""
    return (mean + np.exp(0.5 * logvar) * eps).astype(np.float32)


def neg_elbo(encoder, decoder, images: np.ndarray, seed: int = 0, batch_size: int = 1000,
             prior: Prior | None = None) -> dict[str, float]:
    """The -ELBO in nats per image with one posterior sample per image from a seeded generator:
    {"test_neg_elbo", "test_recon", "test_kl"}. encoder/decoder: runtime.Encoder and runtime.Decoder;
    images: float32 [N, C, H, W] in [0, 1]. The KL to N(0, I) is exact; to a fitted prior, which has no
    closed form, it is log q(z|x) - log p(z) at the same sample (Kingma & Welling, eq. 6)."""
    _check_decoder(decoder)
    rng = np.random.default_rng(seed)
    recon = kl = 0.0
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size]
        mean, logvar = encoder.encode(x, preprocess=False)
        z = reparameterised(mean, logvar, rng.standard_normal(mean.shape, dtype=np.float32))
        recon -= float(bernoulli_log_likelihood(to_display(x), decoder.decode(z)).sum())
        if prior is None or isinstance(prior, StandardNormal):
            kl += float(gaussian_kl(mean, logvar).sum())
        else:
            kl += float((gaussian_log_prob(z, mean, logvar) - prior.log_prob(z)).sum())
    n = len(images)
    return {"test_neg_elbo": (recon + kl) / n, "test_recon": recon / n, "test_kl": kl / n}


def iw_log_likelihood(encoder, decoder, images: np.ndarray, k: int = DEFAULT_IW_SAMPLES, seed: int = 0,
                      max_decodes: int = MAX_DECODES, prior: Prior | None = None) -> np.ndarray:
    """The importance-weighted estimate of log p(x) per image, a lower bound, shape [N] (Burda, Grosse &
    Salakhutdinov 2015, https://arxiv.org/abs/1509.00519, eq. 8): log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x)
    with K samples z_k ~ q(z|x) and p(z) = `prior` (None: N(0, I)). The decodes of a batch go to the decoder
    in one call, which the runtime spreads over every core."""
    prior = prior or StandardNormal(encoder.latent_dim)
    return iw_log_likelihoods(encoder, decoder, images, {"prior": prior}, k, seed, max_decodes)["prior"]


def iw_log_likelihoods(encoder, decoder, images: np.ndarray, priors: dict[str, Prior], k: int = DEFAULT_IW_SAMPLES, seed: int = 0,
                       max_decodes: int = MAX_DECODES) -> dict[str, np.ndarray]:
    """`iw_log_likelihood` under each of several priors {name: prior}, from the same samples and decodes:
    the decodes are the cost, and paired figures differ by the priors alone."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= MAX_IW_SAMPLES:
        raise ValueError(f"the number of importance samples must be an integer from 1 to {MAX_IW_SAMPLES:,}, got {k!r}")
    _check_decoder(decoder)
    rng = np.random.default_rng(seed)
    batch_size = max(1, max_decodes // k)
    out: dict[str, list] = {name: [] for name in priors}
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size]
        mean, logvar = encoder.encode(x, preprocess=False)
        eps = rng.standard_normal((k, *mean.shape), dtype=np.float32)
        z = reparameterised(mean, logvar, eps)  # [K, B, D]
        shown = to_display(x)
        probs = decoder.decode(z.reshape(-1, z.shape[-1])).reshape(k, *shown.shape)
        log_px_over_q = bernoulli_log_likelihood(shown, probs) - gaussian_log_prob(z, mean, logvar)
        for name, prior in priors.items():
            out[name].append(logsumexp(log_px_over_q + prior.log_prob(z), axis=0) - math.log(k))
    return {name: np.concatenate(parts) if parts else np.zeros(0) for name, parts in out.items()}


# The quadrature's grid: every latent point within GRID_EXTENT of the origin in each coordinate, every
# GRID_SPACING. Beyond 5 a N(0, I) prior holds about 1e-6 of its mass, and 0.02 resolves the sharpest
# posteriors of the bundled models (halving it barely moves the figures: docs/benchmarks.md, "Exact
# log-likelihood of the 2-D models").
GRID_SPACING = 0.02
GRID_EXTENT = 5.0
# Terms log p(x|z) p(z) held at once (images x points), about 16 MB as float64.
QUADRATURE_BLOCK = 1 << 21


def grid_log_likelihood(decoder, images: np.ndarray, prior: Prior | None = None, spacing: float = GRID_SPACING,
                        extent: float = GRID_EXTENT, max_decodes: int = MAX_DECODES) -> np.ndarray:
    """log p(x) per image, shape [N], by quadrature rather than sampling: the integral of p(x|z) p(z) over
    the cube [-extent, extent]^D as a sum over a grid of step `spacing` (accurate to many digits for an
    integrand this smooth once the grid resolves the posterior). Not a bound: the model's
    own likelihood, where the importance-weighted bounds above sit below it by however badly the encoder's
    q(z|x) covers the posterior. Feasible for a low-dimensional latent only, as the grid has
    (2 extent / spacing + 1)^D points; they are decoded once and shared by every image, so the cost is
    the decodes plus a matrix product. decoder: a runtime.Decoder; images: float32 [N, C, H, W] in [0, 1];
    prior: None for N(0, I)."""
    prior = prior or StandardNormal(decoder.latent_dim)
    return grid_log_likelihoods(decoder, images, {"prior": prior}, spacing, extent, max_decodes)["prior"]


def check_grid(dim: int, spacing: float, extent: float = GRID_EXTENT) -> int:
    """The number of grid points per axis of the quadrature over a `dim`-D latent, or ValueError saying why
    that grid cannot be done."""
    if not (np.isfinite(spacing) and np.isfinite(extent) and 0 < spacing <= extent):
        raise ValueError(f"expected 0 < spacing <= extent, got spacing {spacing!r} and extent {extent!r}")
    side = int(round(2 * extent / spacing)) + 1
    if side ** dim > MAX_QUADRATURE_POINTS:
        raise ValueError(f"a grid of spacing {spacing:g} over [-{extent:g}, {extent:g}]^{dim} has {side ** dim:,} points, "
                         f"more than {MAX_QUADRATURE_POINTS:,}: use a coarser spacing, or the importance-weighted "
                         f"bound (iw_log_likelihood) for a {dim}-D latent")
    return side


def grid_log_likelihoods(decoder, images: np.ndarray, priors: dict[str, Prior], spacing: float = GRID_SPACING,
                         extent: float = GRID_EXTENT, max_decodes: int = MAX_DECODES) -> dict[str, np.ndarray]:
    """`grid_log_likelihood` under each of several priors {name: prior}, from the same decodes."""
    _check_decoder(decoder)
    dim = decoder.latent_dim
    side = check_grid(dim, spacing, extent)
    axis = np.linspace(-extent, extent, side)
    grid = np.stack(np.meshgrid(*[axis] * dim, indexing="ij"), axis=-1).reshape(-1, dim)
    x = to_display(np.asarray(images, np.float32)).reshape(len(images), -1)
    log_cell = dim * math.log(axis[1] - axis[0])
    totals = {name: np.full(len(x), -np.inf) for name in priors}
    for start in range(0, len(grid), max_decodes):
        z = grid[start:start + max_decodes]
        p = np.clip(decoder.decode(z.astype(np.float32)).reshape(len(z), -1).astype(np.float64), PROB_EPS, 1.0 - PROB_EPS)
        # log p(x|z) = x . (log p - log(1 - p)) + sum log(1 - p): one matrix product for every image and point
        logit = (np.log(p) - np.log1p(-p)).astype(np.float32)
        offsets = {name: np.log1p(-p).sum(axis=1) + prior.log_prob(z) + log_cell for name, prior in priors.items()}
        rows = max(1, QUADRATURE_BLOCK // len(z))
        for first in range(0, len(x), rows):
            log_px = (x[first:first + rows] @ logit.T).astype(np.float64)  # [images, points]
            for name, offset in offsets.items():
                chunk = logsumexp(log_px + offset, axis=1)
                totals[name][first:first + rows] = np.logaddexp(totals[name][first:first + rows], chunk)
    return totals


def open_pair(encoder_path, decoder_path, providers="cpu"):
    """(Encoder, Decoder) of two ONNX files, for the functions above."""
    from .model import Decoder, Encoder

    return Encoder(encoder_path, providers), Decoder(decoder_path, providers)


def onnx_neg_elbo(encoder_path, decoder_path, images: np.ndarray, seed: int = 0, batch_size: int = 1000,
                  providers="cpu", prior: Prior | None = None) -> dict[str, float]:
    """`neg_elbo` of an encoder.onnx and decoder.onnx given by path."""
    return neg_elbo(*open_pair(encoder_path, decoder_path, providers), images, seed=seed, batch_size=batch_size,
                    prior=prior)
