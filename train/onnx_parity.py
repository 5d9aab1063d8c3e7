"""ONNX Runtime against PyTorch on the same inputs: the one measure both the exporter (before it ships a
bundle, `export.verify.check_parity`) and a fine-tune from a bundle (`bundle_weights`, after reading its
weights back) judge a pair of ONNX files by."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import torch

from latent_atlas.runtime import bundle as fmt

from .likelihoods import BERNOULLI, Likelihood
from .model import VAE


def cpu_session(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@torch.no_grad()
def max_differences(model: VAE, encoder_path, decoder_path, images: np.ndarray, latents: np.ndarray,
                    likelihood: Likelihood = BERNOULLI) -> dict[str, float]:
    """Max |ONNX - PyTorch| of z_mean and z_logvar on `images` (float32 [N, C, H, W] in [0, 1], the model's
    image shape) and of the decoded image (`likelihood`'s mean) on `latents` (float32 [M, D]) and on the
    images' posterior means."""
    model = model.float().cpu().eval()
    encoder, decoder = cpu_session(encoder_path), cpu_session(decoder_path)
    mean, logvar = encoder.run(list(fmt.ENCODER_OUTPUTS), {fmt.ENCODER_INPUT: images})
    posterior = model.encode(torch.from_numpy(images))
    z_all = np.concatenate([latents, posterior.mean.numpy()])
    decoded = decoder.run([fmt.DECODER_OUTPUT], {fmt.DECODER_INPUT: z_all})[0]
    expected = likelihood.mean(model.decode(torch.from_numpy(z_all))).numpy()
    return {"z_mean": float(np.abs(mean - posterior.mean.numpy()).max()),
            "z_logvar": float(np.abs(logvar - posterior.logvar.numpy()).max()),
            "image": float(np.abs(decoded - expected).max())}


def beyond(errors: dict[str, float], tolerance: float) -> str | None:
    """The outputs whose difference exceeds `tolerance`, as text for an error message; None if none does."""
    bad = {k: v for k, v in errors.items() if not v <= tolerance}
    return ", ".join(f"{k}: max |onnx - torch| = {v:.3g}" for k, v in bad.items()) if bad else None
