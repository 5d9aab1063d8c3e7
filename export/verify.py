"""Checks an exported pair of ONNX files: parity with PyTorch and the batch axis (the -ELBO they give is
computed by the runtime's `latent_atlas.runtime.evaluation`).

Parity runs ONNX Runtime and PyTorch on the same real test images and on latent points spread over
(and past) the region the data occupies; an export whose outputs differ by more than the tolerance
is not shipped.
"""

from __future__ import annotations

import numpy as np

from latent_atlas.runtime import bundle as fmt
from latent_atlas.train.likelihoods import BERNOULLI, Likelihood
from latent_atlas.train.model import VAE
from latent_atlas.train.onnx_parity import beyond, cpu_session, max_differences

PARITY_TOLERANCE = 1e-5
BATCH_SIZES = (1, 7, 256)


class ExportError(ValueError):
    """The export produced files that must not be shipped; the message says what was wrong."""


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


def check_parity(model: VAE, encoder_path, decoder_path, images: np.ndarray, latents: np.ndarray,
                 tolerance: float | None = None, likelihood: Likelihood = BERNOULLI) -> dict[str, float]:
    """Max abs difference ORT vs PyTorch per output; raises ExportError above `tolerance`
    (default PARITY_TOLERANCE). images: float32 [N, C, H, W] in [0, 1] (the model's shape); latents:
    float32 [M, D]; the decoder's output is compared with `likelihood`'s mean."""
    tolerance = PARITY_TOLERANCE if tolerance is None else tolerance
    errors = max_differences(model, encoder_path, decoder_path, images, latents, likelihood)
    detail = beyond(errors, tolerance)
    if detail:
        raise ExportError(f"ONNX Runtime and PyTorch disagree beyond {tolerance:g} ({detail}) on "
                          f"{len(images)} test images and {len(latents)} latent points; the export was not written")
    return errors


def check_batch_sizes(encoder_path, decoder_path, latent_dim: int, batch_sizes=BATCH_SIZES,
                      image_shape: tuple[int, int, int] = fmt.IMAGE_SHAPE) -> None:
    """Runs each file at several batch sizes: a batch axis that is dynamic in name only fails here."""
    encoder, decoder = cpu_session(encoder_path), cpu_session(decoder_path)
    image_shape = tuple(image_shape)
    for n in batch_sizes:
        mean, logvar = encoder.run(None, {fmt.ENCODER_INPUT: np.zeros((n, *image_shape), np.float32)})
        image = decoder.run(None, {fmt.DECODER_INPUT: np.zeros((n, latent_dim), np.float32)})[0]
        shapes = (mean.shape, logvar.shape, image.shape)
        if shapes != ((n, latent_dim), (n, latent_dim), (n, *image_shape)):
            raise ExportError(f"batch of {n}: got output shapes {shapes}, expected "
                              f"({n}, {latent_dim}) twice and {(n, *image_shape)}")
