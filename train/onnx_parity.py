"""ONNX Runtime against PyTorch on the same inputs: the one measure both the exporter (before it ships a
bundle, `export.verify.check_parity`) and a fine-tune from a bundle (`bundle_weights`, after reading its
weights back) judge a pair of ONNX files by.

A difference is measured on the scale of the values compared: |ONNX - PyTorch| where they are within +-1,
divided by the largest |PyTorch value| where that exceeds 1. Float32 rounds relative to a number's size, so
two correct implementations of a larger network whose codes reach tens (a colour model early in training)
differ by more than 1e-5 in absolute terms, and no less correctly."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import torch

from latent_atlas.runtime import bundle as fmt

from .likelihoods import Likelihood
from .model import VAE


def cpu_session(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def difference(got: np.ndarray, expected: np.ndarray) -> float:
    """Max |got - expected| on the scale of `expected` (see the module's docstring)."""
    return float(np.abs(got - expected).max() / max(1.0, float(np.abs(expected).max())))


@torch.no_grad()
def max_differences(model: VAE, encoder_path, decoder_path, images: np.ndarray, latents: np.ndarray,
                    likelihood: Likelihood | None = None) -> dict[str, float]:
    """The `difference` ONNX vs PyTorch of z_mean and z_logvar on `images` (float32 [N, C, H, W] in [0, 1],
    the model's image shape) and of the decoded image (the mean of `likelihood`, by default the model's) on
    `latents` (float32 [M, D]) and on the images' posterior means."""
    likelihood = likelihood or model.likelihood
    model = model.float().cpu().eval()
    encoder, decoder = cpu_session(encoder_path), cpu_session(decoder_path)
    mean, logvar = encoder.run(list(fmt.ENCODER_OUTPUTS), {fmt.ENCODER_INPUT: images})
    posterior = model.encode(torch.from_numpy(images))
    z_all = np.concatenate([latents, posterior.mean.numpy()])
    decoded = decoder.run([fmt.DECODER_OUTPUT], {fmt.DECODER_INPUT: z_all})[0]
    expected = likelihood.mean(model.decode(torch.from_numpy(z_all))).numpy()
    return {"z_mean": difference(mean, posterior.mean.numpy()),
            "z_logvar": difference(logvar, posterior.logvar.numpy()),
            "image": difference(decoded, expected)}


def beyond(errors: dict[str, float], tolerance: float) -> str | None:
    """The outputs whose difference exceeds `tolerance`, as text for an error message; None if none does."""
    bad = {k: v for k, v in errors.items() if not v <= tolerance}
    return ", ".join(f"{k}: max |onnx - torch| = {v:.3g} (relative above 1)" for k, v in bad.items()) if bad else None
