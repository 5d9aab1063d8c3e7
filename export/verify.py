"""Checks an exported pair of ONNX files: parity with PyTorch, the batch axis, and the -ELBO they give.

Parity runs ONNX Runtime and PyTorch on the same real test images and on latent points spread over
(and past) the region the data occupies; an export whose outputs differ by more than the tolerance
is not shipped.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import torch

from latent_atlas.runtime import bundle as fmt
from latent_atlas.train.model import VAE

PARITY_TOLERANCE = 1e-5
BATCH_SIZES = (1, 7, 256)
# Probabilities are clipped before the log: a float32 sigmoid rounds to exactly 0 or 1 for large logits.
_PROB_EPS = 1e-7


class ExportError(ValueError):
    """The export produced files that must not be shipped; the message says what was wrong."""


def cpu_session(path, providers: list[str] | None = None) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=providers or ["CPUExecutionProvider"])


def parity_latents(latent_stats: dict, n: int = 16) -> np.ndarray:
    """An n x n grid (in the first two dims, the rest at their mean) covering 1.5x the data's range."""
    lo, hi = np.asarray(latent_stats["min"], np.float32), np.asarray(latent_stats["max"], np.float32)
    centre, half = (lo + hi) / 2, (hi - lo) * 0.75
    base = np.asarray(latent_stats["mean"], np.float32)
    z = np.tile(base, (n * n, 1))
    axes = [np.linspace(centre[d] - half[d], centre[d] + half[d], n, dtype=np.float32) for d in range(min(2, len(base)))]
    mesh = np.meshgrid(*axes, indexing="ij")
    for d, values in enumerate(mesh):
        z[:, d] = values.ravel()
    return z


@torch.no_grad()
def check_parity(model: VAE, encoder_path, decoder_path, images: np.ndarray, latents: np.ndarray,
                 tolerance: float | None = None) -> dict[str, float]:
    """Max abs difference ORT vs PyTorch per output; raises ExportError above `tolerance`
    (default PARITY_TOLERANCE). images: float32 [N, 1, 28, 28] in [0, 1]; latents: float32 [M, D]."""
    tolerance = PARITY_TOLERANCE if tolerance is None else tolerance
    model = model.float().cpu().eval()
    encoder, decoder = cpu_session(encoder_path), cpu_session(decoder_path)
    mean, logvar = encoder.run(list(fmt.ENCODER_OUTPUTS), {fmt.ENCODER_INPUT: images})
    posterior = model.encode(torch.from_numpy(images))
    z_all = np.concatenate([latents, posterior.mean.numpy()])
    decoded = decoder.run([fmt.DECODER_OUTPUT], {fmt.DECODER_INPUT: z_all})[0]
    expected = model.decode_probs(torch.from_numpy(z_all)).numpy()
    errors = {
        "z_mean": float(np.abs(mean - posterior.mean.numpy()).max()),
        "z_logvar": float(np.abs(logvar - posterior.logvar.numpy()).max()),
        "image": float(np.abs(decoded - expected).max()),
    }
    bad = {k: v for k, v in errors.items() if not v <= tolerance}
    if bad:
        detail = ", ".join(f"{k}: max |onnx - torch| = {v:.3g}" for k, v in bad.items())
        raise ExportError(f"ONNX Runtime and PyTorch disagree beyond {tolerance:g} ({detail}) on "
                          f"{len(images)} test images and {len(latents)} latent points; the export was not written")
    return errors


def check_batch_sizes(encoder_path, decoder_path, latent_dim: int, batch_sizes=BATCH_SIZES) -> None:
    """Runs each file at several batch sizes: a batch axis that is dynamic in name only fails here."""
    encoder, decoder = cpu_session(encoder_path), cpu_session(decoder_path)
    for n in batch_sizes:
        mean, logvar = encoder.run(None, {fmt.ENCODER_INPUT: np.zeros((n, 1, 28, 28), np.float32)})
        image = decoder.run(None, {fmt.DECODER_INPUT: np.zeros((n, latent_dim), np.float32)})[0]
        shapes = (mean.shape, logvar.shape, image.shape)
        if shapes != ((n, latent_dim), (n, latent_dim), (n, 1, 28, 28)):
            raise ExportError(f"batch of {n}: got output shapes {shapes}, expected "
                              f"({n}, {latent_dim}) twice and ({n}, 1, 28, 28)")


def onnx_neg_elbo(encoder_path, decoder_path, images: np.ndarray, seed: int = 0, batch_size: int = 1000,
                  providers: list[str] | None = None) -> dict[str, float]:
    """The test -ELBO in nats computed from the ONNX files alone (numpy + onnxruntime), one posterior
    sample per image from a seeded generator. images: float32 [N, 1, 28, 28] in [0, 1]."""
    encoder, decoder = cpu_session(encoder_path, providers), cpu_session(decoder_path, providers)
    rng = np.random.default_rng(seed)
    recon = kl = 0.0
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size]
        mean, logvar = encoder.run(list(fmt.ENCODER_OUTPUTS), {fmt.ENCODER_INPUT: x})
        z = (mean + np.exp(0.5 * logvar) * rng.standard_normal(mean.shape, dtype=np.float32)).astype(np.float32)
        p = np.clip(decoder.run([fmt.DECODER_OUTPUT], {fmt.DECODER_INPUT: z})[0].astype(np.float64), _PROB_EPS, 1 - _PROB_EPS)
        x64 = x.astype(np.float64)
        recon -= float(np.sum(x64 * np.log(p) + (1 - x64) * np.log1p(-p)))
        kl += float(0.5 * np.sum(mean.astype(np.float64) ** 2 + np.exp(logvar.astype(np.float64)) - 1 - logvar))
    n = len(images)
    return {"test_neg_elbo": (recon + kl) / n, "test_recon": recon / n, "test_kl": kl / n}
