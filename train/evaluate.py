"""Evaluation in nats per image: the negative ELBO and the importance-weighted bound.

Always the true objective (beta = 1, float32) under the run's likelihood (train/likelihoods.py; the
Bernoulli over 784 pixels for the seed's models), whatever preset or beta the run trained with, so runs
compare with each other and with the literature; also in bits per dimension (channels x height x width),
the unit that compares images of different sizes.

The importance-weighted bound (Burda, Grosse & Salakhutdinov, "Importance Weighted Autoencoders",
2015, https://arxiv.org/abs/1509.00519, eq. 8) with K samples from q(z|x):

    -log p(x) <= -log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x)

is tighter than the ELBO (K = 1) and converges to the true NLL as K grows. The literature's MNIST
numbers (e.g. 86.76 nats for a 1-layer, 50-D IWAE) use dynamically binarized images: `binarize=True`.

For a 2-D latent the NLL itself is within reach, not only bounds on it: `exact=True` integrates
p(x|z) p(z) over the latent plane by quadrature (runtime.evaluation.grid_log_likelihood, the one
implementation, fed by the PyTorch decoder here and by the ONNX one for bundles).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from latent_atlas.runtime import evaluation as runtime_evaluation
from latent_atlas.runtime.limits import MAX_IW_SAMPLES
from latent_atlas.runtime.preprocessing import PIXEL_MAX

from . import own_data
from .checkpoint import load_checkpoint
from .device import pick_device
from .likelihoods import Likelihood
from .model import VAE, DiagonalGaussian, load_weights, log_importance_weights
from .options import Weights
from .run_state import RunState


def images_to_tensor(images: np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 grey [N, H, W] or colour [N, H, W, 3] -> float32 [N, C, H, W] in [0, 1] on `device` (torch's
    form of runtime.preprocessing.to_float)."""
    images = torch.as_tensor(images).to(device)
    images = images.unsqueeze(1) if images.dim() == 3 else images.permute(0, 3, 1, 2)
    return images.float().div_(PIXEL_MAX)


# Binarized evaluation draws each test (and validation) pixel once, with this seed, whatever the run's
# seed: every run and bundle is then measured on the same binary images, and the figures repeat.
BINARIZATION_SEED = 0


def binarized(x: torch.Tensor, seed: int = BINARIZATION_SEED) -> torch.Tensor:
    """Each pixel ~ Bernoulli(intensity), drawn from a seeded generator so the numbers repeat."""
    generator = torch.Generator(device=x.device).manual_seed(seed)
    return torch.bernoulli(x, generator=generator)


def binarized_array(x: np.ndarray, seed: int = BINARIZATION_SEED) -> np.ndarray:
    """`binarized` for float32 numpy images (the exporter's and the ONNX evaluations' form): the same draw."""
    return binarized(torch.from_numpy(x), seed=seed).numpy()


@torch.no_grad()
def evaluate_elbo(model: VAE, x: torch.Tensor, batch_size: int = 128, seed: int = 0,
                  likelihood: Likelihood | None = None) -> dict[str, float]:
    """Single-sample Monte-Carlo -ELBO over float images x [N, C, H, W] under the model's likelihood (or
    `likelihood`, one with other parameters): nats per image, and the -ELBO in bits per dimension."""
    likelihood = likelihood or model.likelihood
    model.eval()
    generator = torch.Generator(device=x.device).manual_seed(seed)
    # One posterior sample per image, drawn for all of them at once: the figure does not depend on the
    # batch size, which is chosen for speed alone (batches of about a hundred keep the activations in the
    # CPU's cache; benchmarks/evaluation_speed.py).
    eps = torch.randn((len(x), model.latent_dim), generator=generator, device=x.device)
    recon = kl = 0.0
    for batch, batch_eps in zip(x.split(batch_size), eps.split(batch_size)):
        posterior = model.encode(batch)
        z = posterior.reparameterize(batch_eps)
        recon += likelihood.nll(model.decode(z), batch).sum().item()
        kl += posterior.kl().sum().item()
    n = len(x)
    return {"neg_elbo": (recon + kl) / n, "recon": recon / n, "kl": kl / n,
            "bits_per_dim": likelihood.bits_per_dim((recon + kl) / n, model.architecture.pixels)}


@torch.no_grad()
def iw_log_likelihood(model: VAE, x: torch.Tensor, k: int = runtime_evaluation.DEFAULT_IW_SAMPLES, seed: int = 0,
                      max_decodes: int = runtime_evaluation.MAX_DECODES) -> torch.Tensor:
    """Importance-weighted estimate of log p(x) per image (a lower bound), shape [N]."""
    if not 1 <= k <= MAX_IW_SAMPLES:
        raise ValueError(f"the number of importance samples must be from 1 to {MAX_IW_SAMPLES:,}, got {k}")
    model.eval()
    generator = torch.Generator(device=x.device).manual_seed(seed)
    batch_size = max(1, max_decodes // k)
    out = []
    for batch in x.split(batch_size):
        posterior: DiagonalGaussian = model.encode(batch)
        eps = torch.randn((k, *posterior.mean.shape), generator=generator, device=x.device)
        log_w, _ = log_importance_weights(model, batch, posterior, posterior.reparameterize(eps))  # [K, B]
        out.append(torch.logsumexp(log_w, dim=0) - math.log(k))
    return torch.cat(out)


class _DecoderProbabilities:
    """A VAE's decoder in the form the runtime's numpy evaluation takes (what runtime.Decoder offers):
    float32 latent points [N, D] in, pixel probabilities [N, C, H, W] out."""

    def __init__(self, model: VAE):
        self.model = model
        self.latent_dim = model.latent_dim
        self.device = next(model.parameters()).device

    @torch.no_grad()
    def decode(self, z: np.ndarray) -> np.ndarray:
        return self.model.decode_probs(torch.from_numpy(z).to(self.device)).float().cpu().numpy()


def exact_log_likelihood(model: VAE, x: torch.Tensor,
                         spacing: float = runtime_evaluation.GRID_SPACING) -> torch.Tensor:
    """log p(x) per image [N] under N(0, I), by quadrature over the latent grid (not a bound); float
    images x [N, C, H, W], Bernoulli likelihood. Too large a grid (a latent of 3 or more dimensions) raises ValueError."""
    model.eval()
    log_p = runtime_evaluation.grid_log_likelihood(_DecoderProbabilities(model), x.cpu().numpy(), spacing=spacing)
    return torch.from_numpy(log_p)


def evaluate_model(model: VAE, images: np.ndarray, iw_samples: int = runtime_evaluation.DEFAULT_IW_SAMPLES,
                   binarize: bool = False, device: str = "cpu", seed: int = 0, exact: bool = False,
                   grid_spacing: float = runtime_evaluation.GRID_SPACING) -> dict:
    """Everything `latent-atlas evaluate` reports, for uint8 test images (grey [N, H, W], colour [N, H, W, 3])."""
    x = images_to_tensor(images, device)
    if binarize:
        x = binarized(x)
    result = {"images": len(x), "binarized": binarize, **({"binarization_seed": BINARIZATION_SEED} if binarize else {}),
              **evaluate_elbo(model, x, seed=seed)}
    result["likelihood"] = model.likelihood.name
    if iw_samples > 0:
        result["iw_samples"] = iw_samples
        result["iw_nll"] = -iw_log_likelihood(model, x, iw_samples, seed=seed).mean().item()
        result["iw_bits_per_dim"] = model.likelihood.bits_per_dim(result["iw_nll"], model.architecture.pixels)
    if exact:
        result["exact_nll"] = -exact_log_likelihood(model, x, grid_spacing).mean().item()
        result["exact_grid"] = {"spacing": grid_spacing, "extent": runtime_evaluation.GRID_EXTENT}
    return result


def load_model(run_dir: str | Path, weights: Weights = "best", device: str = "cpu") -> tuple[VAE, RunState]:
    """The VAE of a run directory (its `best` or `last` weights) and the run's state; which weights were
    loaded is `state.resolve_weights(weights)` (best falls back to last before the first evaluation)."""
    checkpoint = load_checkpoint(run_dir)
    config = checkpoint.state.config
    model = VAE.for_config(config)
    load_weights(model, checkpoint.model_state(weights), checkpoint.weights_path(weights))
    # In the memory format the run trained and evaluated in: the figures then repeat the logged ones to the
    # last bit, and channels-last convolutions are faster on CPUs (docs/benchmarks.md).
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    return model.to(device, memory_format=memory_format).eval(), checkpoint.state


def evaluate_run(run_dir: str | Path, iw_samples: int = runtime_evaluation.DEFAULT_IW_SAMPLES, binarize: bool = False,
                 weights: Weights = "best", data_dir: str | Path | None = None, device: str = "auto", exact: bool = False,
                 grid_spacing: float = runtime_evaluation.GRID_SPACING) -> dict:
    device = pick_device(device)
    model, state = load_model(run_dir, weights, device)
    if exact:  # before the data is read and the bounds are computed: a grid that cannot be done fails first
        runtime_evaluation.check_grid(model.latent_dim, grid_spacing)
        if model.likelihood.name != "bernoulli":
            raise ValueError(f"--exact integrates the Bernoulli likelihood (runtime.evaluation.grid_log_likelihood); "
                             f"this run's is {model.likelihood.name}: use the importance-weighted bound (--iw-samples)")
    dataset_name = state.config.dataset
    images = own_data.for_run(run_dir, state, data_dir).test_images
    # A run trained on binarized pixels is a model of binary images: it is measured on binarized ones.
    binarize = binarize or state.config.binarize == "dynamic"
    result = evaluate_model(model, images, iw_samples=iw_samples, binarize=binarize, device=device,
                            seed=state.config.seed, exact=exact, grid_spacing=grid_spacing)
    # The figures are always the test set's; `selected_on` says which split chose the best weights (runs
    # from before the validation split selected on the test set), and `selected_by` which of its figures.
    return {"run_dir": str(run_dir), "dataset": dataset_name, "weights": state.resolve_weights(weights),
            "epoch": state.weights_epoch(weights), "split": "test", "selected_on": state.selected_on,
            "selected_by": state.selected_by, **result}
