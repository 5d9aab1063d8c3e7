"""PyTorch VAE -> encoder.onnx and decoder.onnx, self-contained, opset-pinned and byte-reproducible.

The encoder exports the posterior's parameters, not a sample: sampling stays in the runtime, where a
seeded generator makes it reproducible (an ONNX RandomNormal node could not be seeded per call).
The decoder exports pixel values in [0, 1], the likelihood's mean (a sigmoid for the Bernoulli), which is
what every consumer wants to show. The image shape is the model's (train/family.py), [N, C, H, W].
"""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from pathlib import Path

import onnx
import torch
from torch import nn

from latent_atlas.runtime import bundle as fmt
from latent_atlas.train.likelihoods import BERNOULLI, Likelihood
from latent_atlas.train.model import VAE

from .decoder_graph import DecoderGraph

# Opset 18 is the first with the Reduce* ops' axes-as-input form everywhere and runs on every
# onnxruntime from 1.14 on; pinned so that exports do not change under a newer torch.
OPSET = 18


class EncoderGraph(nn.Module):
    def __init__(self, vae: VAE):
        super().__init__()
        self.encoder = vae.encoder

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        posterior = self.encoder(image)
        return posterior.mean, posterior.logvar


@contextmanager
def _quiet_exporter():
    # The exporter logs warnings about optional torchvision ops and deprecations that say nothing
    # about this model; keep the user's terminal for what matters.
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _to_onnx(module: nn.Module, example: torch.Tensor, input_name: str, output_names: list[str]) -> onnx.ModelProto:
    batch = torch.export.Dim("N", min=1, max=1 << 20)
    with _quiet_exporter(), torch.no_grad():
        program = torch.onnx.export(module.eval(), (example,), dynamo=True, opset_version=OPSET,
                                    input_names=[input_name], output_names=output_names,
                                    dynamic_shapes=({0: batch},), external_data=False, optimize=True, verbose=False)
    return program.model_proto


def cpu_copy(model: VAE) -> VAE:
    """A float32 CPU copy of `model` in eval mode (the exporter and the parity check run on it)."""
    cpu = VAE(model.latent_dim, image_shape=model.image_shape)
    cpu.load_state_dict({k: v.detach().float().cpu() for k, v in model.state_dict().items()})
    return cpu.eval()


def _pixels_text(likelihood: Likelihood) -> str:
    # The Bernoulli's mean is a probability: the seed's files keep the words they were exported with.
    return ("pixel probabilities in [0,1]" if likelihood.name == BERNOULLI.name else
            f"pixel values in [0,1] (the {likelihood.name} likelihood's mean)")


def to_onnx_models(model: VAE, likelihood: Likelihood = BERNOULLI) -> dict[str, onnx.ModelProto]:
    """{"encoder.onnx": proto, "decoder.onnx": proto} for a float32 CPU copy of `model`; the decoder
    outputs `likelihood`'s mean."""
    cpu = cpu_copy(model)
    shape = ",".join(str(v) for v in cpu.image_shape)
    encoder = _to_onnx(EncoderGraph(cpu), torch.zeros(2, *cpu.image_shape), fmt.ENCODER_INPUT, list(fmt.ENCODER_OUTPUTS))
    decoder = _to_onnx(DecoderGraph(cpu.decoder, likelihood), torch.zeros(2, cpu.latent_dim), fmt.DECODER_INPUT,
                       [fmt.DECODER_OUTPUT])
    encoder.doc_string = (f"Latent Atlas VAE encoder: {fmt.ENCODER_INPUT} float32 [N,{shape}] in [0,1] -> "
                          f"z_mean, z_logvar float32 [N,{cpu.latent_dim}] (posterior q(z|x) = N(z_mean, exp(z_logvar)))")
    decoder.doc_string = (f"Latent Atlas VAE decoder: {fmt.DECODER_INPUT} float32 [N,{cpu.latent_dim}] -> "
                          f"{fmt.DECODER_OUTPUT} float32 [N,{shape}], {_pixels_text(likelihood)}")
    return {fmt.ENCODER: encoder, fmt.DECODER: decoder}


def set_metadata(proto: onnx.ModelProto, props: dict[str, str]) -> None:
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, dict(sorted(props.items())))


def save(proto: onnx.ModelProto, path: Path) -> None:
    """Checks the model fully (shapes and types included) and writes it as one self-contained file."""
    onnx.checker.check_model(proto, full_check=True)
    path.write_bytes(proto.SerializeToString(deterministic=True))


def export_onnx(model: VAE, out_dir: str | Path, metadata: dict[str, dict[str, str]] | None = None,
                likelihood: Likelihood = BERNOULLI) -> tuple[Path, Path]:
    """Writes encoder.onnx and decoder.onnx for `model` (its decoder giving `likelihood`'s mean) into
    out_dir; returns their paths.

    `metadata` maps file name -> metadata_props. This is the low-level step; `export_bundle` makes a
    whole verified bundle."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for filename, proto in to_onnx_models(model, likelihood).items():
        set_metadata(proto, (metadata or {}).get(filename, {}))
        save(proto, out_dir / filename)
        paths.append(out_dir / filename)
    return paths[0], paths[1]
