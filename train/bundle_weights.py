"""A model bundle's ONNX files read back into the PyTorch VAE: what `--init-from BUNDLE` fine-tunes.

A bundle (a bundled model's name such as `mnist`, or a directory `latent-atlas export` wrote) carries
every trained weight as an ONNX initializer under its PyTorch name, except the decoder's upsampling
stages, which the exporter stores in sub-pixel phase form (`phase_form`); those are read back through the
inverse of the exporter's own layout functions, for the bundle's image shape. The weights are then checked to reproduce the bundle's
encoder and decoder under ONNX Runtime, so a file that was not written by this exporter is refused
rather than fine-tuned from wrong weights. Only a float32 bundle holds the trained weights as they were
(an int8 or fp16 variant has rounded them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from latent_atlas.runtime import bundle as fmt

from .likelihoods import likelihood_from_json
from .model import VAE, load_weights
from .onnx_parity import beyond, max_differences
from .phase_form import stage_names, weight_from_phase_kernels, weight_from_phase_output_kernel

# The largest |ONNX Runtime - PyTorch| accepted on the probes: float32 rounding of two implementations of
# the same arithmetic, well below anything a wrong weight layout would give (order 0.1).
READBACK_TOLERANCE = 1e-4


@dataclass(frozen=True)
class BundleWeights:
    path: Path
    manifest: fmt.Manifest
    state: dict[str, torch.Tensor]  # the VAE's state_dict

    def record(self, source: str) -> dict:
        """What checkpoint.json's `initialized_from` says of it: the bundle, its files' SHA-256, and how
        its weights were trained (the bundle's own commands and the source of its fine-tune, if any)."""
        training = self.manifest.training
        return {"bundle": source, "name": self.manifest.name,
                "sha256": {f: self.manifest.files[f]["sha256"] for f in (fmt.ENCODER, fmt.DECODER)},
                **{k: training[k] for k in ("epoch", "commands", "initialized_from") if k in training}}


def is_bundle(source: str | Path) -> bool:
    """A bundled model's name, or a directory holding bundle.json."""
    return str(source) in fmt.bundled_names() or (Path(source) / fmt.MANIFEST).is_file()


def _initializers(path: Path) -> dict[str, torch.Tensor]:
    model = onnx.load(str(path))
    return {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in model.graph.initializer}


def read(source: str | Path) -> BundleWeights:
    """The bundle's weights as a VAE state dict; raises ValueError naming the bundle when they cannot be
    read back exactly."""
    bundle = fmt.read(source)  # checks each file against the SHA-256 bundle.json records
    if bundle.variant != "fp32":
        raise ValueError(f"{bundle.path}: a {bundle.variant} bundle holds rounded weights; fine-tune from the "
                         f"float32 bundle it was made from (variant fp32)")
    encoder, decoder = _initializers(bundle.encoder_path), _initializers(bundle.decoder_path)
    state = {k: v for k, v in encoder.items() if k.startswith("encoder.")}
    model = VAE(bundle.latent_dim, image_shape=tuple(bundle.manifest.image_shape))
    try:
        state.update({
            "decoder.dense.weight": decoder["dense.weight"], "decoder.dense.bias": decoder["dense.bias"],
            "decoder.to_logits.weight": weight_from_phase_output_kernel(decoder["last_weight"]),
            "decoder.to_logits.bias": decoder["last_bias"]})
        earlier = [(f"decoder.upsamples.{name}", name) for name, layer in model.decoder.upsamples.named_children()
                   if isinstance(layer, nn.ConvTranspose2d)]
        for prefix, stage in [*earlier, ("decoder.upsample", None)]:
            kernels, bias = stage_names(stage)
            state[f"{prefix}.weight"] = weight_from_phase_kernels([decoder[name] for name in kernels])
            state[f"{prefix}.bias"] = decoder[bias]
    except KeyError as exc:
        raise ValueError(f"{bundle.decoder_path}: no initializer {exc} (expected the decoder this project's "
                         f"exporter writes)") from None
    load_weights(model, state, bundle.path)
    _check_readback(model, bundle)
    return BundleWeights(bundle.path, bundle.manifest, model.state_dict())


def _check_readback(model: VAE, bundle: fmt.Bundle) -> None:
    """The PyTorch model with the weights read back computes what the bundle's ONNX files compute."""
    rng = np.random.default_rng(0)
    images = rng.random((8, *model.image_shape), dtype=np.float32)
    latents = (2 * rng.standard_normal((64, bundle.latent_dim))).astype(np.float32)
    likelihood = likelihood_from_json(bundle.manifest.likelihood)
    detail = beyond(max_differences(model, bundle.encoder_path, bundle.decoder_path, images, latents, likelihood),
                    READBACK_TOLERANCE)
    if detail:
        raise ValueError(f"{bundle.path}: the weights read from its ONNX files do not reproduce them ({detail}); "
                         f"fine-tune from the run it was exported from instead")
