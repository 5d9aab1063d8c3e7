"""The convolutional VAE and its objectives.

Architecture: the Keras "Deep Learning with Python" VAE (Chollet, 2017, section 8.4), itself a small
convolutional take on Kingma & Welling, "Auto-Encoding Variational Bayes" (2013),
https://arxiv.org/abs/1312.6114.

    encoder: convs (Conv 32 -> Conv 64/s2 -> Conv 64 -> Conv 64) -> bottleneck (Dense 32) -> (z_mean, z_logvar)
    decoder: dense (Dense 14*14*64) -> upsample (ConvTranspose 32/s2) -> to_logits (Conv 1; sigmoid for inference)

That is the 1 x 28 x 28 member of a family: other image shapes get one stride-2 stage per halving and
the widths train/family.py derives (`VAE(image_shape=...)`); the seed's layer names stay those above.

Three objectives live here:
  * `elbo_loss`: the correct negative ELBO in nats, what the `default` preset trains and what
    evaluation always reports.
  * `iwae_loss`: the importance-weighted bound with K samples (Burda, Grosse & Salakhutdinov 2015),
    a tighter bound than the ELBO; K = 1 is the ELBO with a sampled KL.
  * `keras_seed_loss`: the original recipe, kept bug-for-bug so its results can be compared.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from latent_atlas.runtime.bundle import IMAGE_SHAPE  # noqa: F401  (the one definition; re-exported)

from .family import Architecture, architecture
from .likelihoods import bernoulli_nll, likelihood_for  # bernoulli_nll's owner is likelihoods.py; re-exported
from .options import IwaeGradient

# The seed's decoder dense output as feature maps, (64, 14, 14): the encoder's last conv's shape.
HIDDEN_SHAPE = architecture(IMAGE_SHAPE).hidden_shape
NUM_PIXELS = math.prod(IMAGE_SHAPE)
_LOG_2PI = math.log(2.0 * math.pi)


class DiagonalGaussian:
    """A posterior q(z|x) = N(mean, diag(exp(logvar))) over a batch of latent vectors."""

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor):
        self.mean = mean
        self.logvar = logvar

    @property
    def std(self) -> torch.Tensor:
        return torch.exp(0.5 * self.logvar)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        eps = torch.randn(self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.reparameterize(eps)

    def reparameterize(self, eps: torch.Tensor) -> torch.Tensor:
        """z = mean + std * eps for standard-normal eps: the reparameterisation trick (Kingma & Welling,
        section 2.4). The noise carries the randomness, so gradients flow through mean and std."""
        return self.mean + self.std * eps.to(self.mean.dtype)

    def mode(self) -> torch.Tensor:
        return self.mean

    def kl(self) -> torch.Tensor:
        """KL(q || N(0, I)) per example, summed over latent dims (Kingma & Welling, appendix B)."""
        return 0.5 * torch.sum(self.mean.pow(2) + self.logvar.exp() - 1.0 - self.logvar, dim=-1)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log q(z|x), summed over latent dims; z may carry extra leading sample dims."""
        return -0.5 * torch.sum(_LOG_2PI + self.logvar + (z - self.mean).pow(2) / self.logvar.exp(), dim=-1)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    return -0.5 * torch.sum(_LOG_2PI + z.pow(2), dim=-1)


def _encoder_convs(arch: Architecture) -> OrderedDict:
    """conv1 at full resolution, one stride-2 conv per halving, two more at the last resolution, numbered
    in order: the seed's conv1 .. conv4, with conv2 its one stride-2 stage."""
    widths = arch.widths
    convs = [nn.Conv2d(arch.image_shape[0], widths[0], 3, padding=1)]
    convs += [nn.Conv2d(w_in, w_out, 3, stride=2, padding=1) for w_in, w_out in zip(widths, widths[1:])]
    convs += [nn.Conv2d(widths[-1], widths[-1], 3, padding=1) for _ in range(2)]
    layers = OrderedDict()
    for i, conv in enumerate(convs, start=1):
        layers[f"conv{i}"], layers[f"relu{i}"] = conv, nn.ReLU()
    return layers


def _upsample(w_in: int, w_out: int) -> nn.ConvTranspose2d:
    # padding=1, output_padding=1 is Keras' padding="same" for a stride-2 transpose: an exact doubling (14 -> 28).
    return nn.ConvTranspose2d(w_in, w_out, 3, stride=2, padding=1, output_padding=1)


class Encoder(nn.Module):
    """Layers are named, not indexed: init, diagnostics and export reach them by name (see LEGACY_NAMES)."""

    def __init__(self, latent_dim: int = 2, image_shape: tuple[int, int, int] = IMAGE_SHAPE):
        super().__init__()
        arch = architecture(image_shape)
        self.convs = nn.Sequential(_encoder_convs(arch))
        self.bottleneck = nn.Linear(math.prod(arch.hidden_shape), 32)  # the Dense 32 whose ReLUs both heads read
        self.z_mean = nn.Linear(32, latent_dim)
        self.z_logvar = nn.Linear(32, latent_dim)

    def bottleneck_pre_activation(self, x: torch.Tensor) -> torch.Tensor:
        return self.bottleneck(self.convs(x).flatten(1))

    def forward(self, x: torch.Tensor) -> DiagonalGaussian:
        h = F.relu(self.bottleneck_pre_activation(x))
        return DiagonalGaussian(self.z_mean(h), self.z_logvar(h))

    def dead_bottleneck_units(self, x: torch.Tensor) -> int:
        """How many bottleneck ReLUs are off for every image in x: those get no gradient (see `_init_weights`)."""
        with torch.no_grad():
            pre_activation = self.bottleneck_pre_activation(x)
        return int((pre_activation.max(dim=0).values <= 0).sum())


class Decoder(nn.Module):
    """Maps z to logits, one per pixel and channel, which the likelihood reads (train/likelihoods.py); its
    `mean` gives pixel values, for the Bernoulli a sigmoid (see `VAE.decode_probs`).

    It mirrors the encoder's halvings: `upsample` is always the last, full-resolution stage (the seed's only
    one); an image halved more than once has the stages before it in `upsamples` (empty for the seed, so
    its state dict is unchanged)."""

    def __init__(self, latent_dim: int = 2, image_shape: tuple[int, int, int] = IMAGE_SHAPE):
        super().__init__()
        arch = architecture(image_shape)
        self.hidden_shape = arch.hidden_shape
        self.dense = nn.Linear(latent_dim, math.prod(arch.hidden_shape))
        widths = arch.widths[::-1]  # from the hidden map's width down to the full resolution's
        stages = OrderedDict()
        for i, (w_in, w_out) in enumerate(zip(widths[:-2], widths[1:-1]), start=1):
            stages[f"stage{i}"], stages[f"relu{i}"] = _upsample(w_in, w_out), nn.ReLU()
        self.upsamples = nn.Sequential(stages)
        self.upsample = _upsample(widths[-2], widths[-1])
        self.to_logits = nn.Conv2d(widths[-1], arch.image_shape[0], 3, padding=1)

    def hidden(self, z: torch.Tensor) -> torch.Tensor:
        """The dense layer's ReLU output as feature maps, [N, 64, 14, 14] for the seed."""
        return F.relu(self.dense(z)).view(-1, *self.hidden_shape)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.to_logits(F.relu(self.upsample(self.upsamples(self.hidden(z)))))


# Checkpoints written before the layers had names used the positions in nn.Sequential containers;
# `migrate_state_dict` renames them, so old runs still load, resume and export.
LEGACY_NAMES = {
    "encoder.features.0.": "encoder.convs.conv1.",
    "encoder.features.2.": "encoder.convs.conv2.",
    "encoder.features.4.": "encoder.convs.conv3.",
    "encoder.features.6.": "encoder.convs.conv4.",
    "encoder.features.9.": "encoder.bottleneck.",
    "decoder.fc.0.": "decoder.dense.",
    "decoder.deconv.0.": "decoder.upsample.",
    "decoder.deconv.2.": "decoder.to_logits.",
}


def migrate_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A VAE state dict with old index-based layer names renamed (new names pass through)."""
    out = {}
    for key, value in state.items():
        for old, new in LEGACY_NAMES.items():
            if key.startswith(old):
                key = new + key[len(old):]
                break
        out[key] = value
    return out


def load_weights(model: nn.Module, state: dict[str, torch.Tensor], source) -> None:
    """Loads `state` (old layer names are migrated) into `model`, or raises ValueError in one line
    that names the first tensor that does not fit; PyTorch's own error is a multi-line traceback."""
    state = migrate_state_dict(state)
    expected = model.state_dict()
    problems = [f"{k} is missing" for k in expected if k not in state]
    problems += [f"{k} is not part of this model" for k in state if k not in expected]
    problems += [f"{k} has shape {list(state[k].shape)}, expected {list(v.shape)}"
                 for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ValueError(f"{source}: the weights do not fit the model its config describes: {problems[0]}{more}")
    model.load_state_dict(state)


class VAE(nn.Module):
    """`bottleneck_bias` is the initial bias of the encoder's Dense 32 ReLU units: 0 is Keras' (the seed's);
    the `default` preset starts them at 1 (see `_init_weights`). `likelihood` names the decoder's p(x|z)
    (train/likelihoods.py), which the ELBO and IWAE objectives and the evaluation score images by."""

    def __init__(self, latent_dim: int = 2, bottleneck_bias: float = 1.0, image_shape: tuple[int, int, int] = IMAGE_SHAPE,
                 likelihood: str = "bernoulli"):
        super().__init__()
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be a positive integer, got {latent_dim}")
        self.latent_dim = latent_dim
        self.architecture = architecture(image_shape)  # checks the shape before any layer is built
        self.image_shape = self.architecture.image_shape
        self.likelihood = likelihood_for(likelihood)
        self.encoder = Encoder(latent_dim, self.image_shape)
        self.decoder = Decoder(latent_dim, self.image_shape)
        _init_weights(self, bottleneck_bias)

    @classmethod
    def for_config(cls, config) -> "VAE":
        """The model a TrainConfig describes (its latent size, image shape and likelihood), freshly initialised."""
        return cls(config.latent_dim, config.bottleneck_bias, image_shape=config.image_shape,
                   likelihood=config.likelihood)

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The logits, shape [N, *image_shape], which the likelihood reads (Bernoulli logits for the seed's)."""
        return self.decoder(z)

    def decode_probs(self, z: torch.Tensor) -> torch.Tensor:
        """The decoded images: the likelihood's mean, pixel values in [0, 1] (for the Bernoulli, the sigmoid)."""
        return self.likelihood.mean(self.decoder(z))


def _init_weights(model: VAE, bottleneck_bias: float) -> None:
    # Keras' defaults (Glorot-uniform weights, zero biases): with bottleneck_bias=0, as in the seed preset,
    # the model starts where the Keras original did...
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
    # ...but by default the encoder's Dense 32 ReLUs, which both latent heads read, start switched on. At
    # initialisation each unit's pre-activation is 0 +- 0.01 over the whole dataset, while Adam's first,
    # sign-like steps (about lr per weight, on 12,544 non-negative inputs) move it by 0.05-0.1. With a zero
    # bias a unit pushed down is negative on every image at once; it then gets no gradient, and only the
    # layers below can switch it on again, which seldom happens. On most seeds 20 or more of the 32 were
    # off for good within a few hundred steps, the 2-D latent was computed from the few left, and how few
    # decided the final -ELBO from seed to seed. Starting at 1 keeps nearly all of them
    # alive (docs/benchmarks.md, "Dead encoder units").
    nn.init.constant_(model.encoder.bottleneck.bias, bottleneck_bias)


@dataclass(frozen=True)
class StepNoise:
    """The standard-normal draws of one training step. They are drawn for the whole global batch and
    sliced, so that each data-parallel rank uses exactly the numbers a single process would
    (train/distributed.py)."""

    latent: torch.Tensor  # [N, D], or [N, K, D] for K importance samples: the reparameterisation noise
    image: torch.Tensor | None  # [N, *image_shape]: the denoising encoder's input noise (None when unused)
    pixels: torch.Tensor | None = None  # [N, *image_shape] uniform: dynamic binarization (None when unused)

    @classmethod
    def draw(cls, generator: torch.Generator, n: int, latent_dim: int, image_noise: bool,
             device: torch.device | str = "cpu", samples: int = 1, binarize: bool = False,
             image_shape: tuple[int, int, int] = IMAGE_SHAPE) -> "StepNoise":
        # The order of the draws is part of a run's reproducibility: new kinds of noise come last.
        image = torch.randn((n, *image_shape), generator=generator, device=device) if image_noise else None
        shape = (n, latent_dim) if samples == 1 else (n, samples, latent_dim)
        latent = torch.randn(shape, generator=generator, device=device)
        pixels = torch.rand((n, *image_shape), generator=generator, device=device) if binarize else None
        return cls(latent=latent, image=image, pixels=pixels)

    def __getitem__(self, part: slice) -> "StepNoise":
        return StepNoise(self.latent[part], *(None if t is None else t[part] for t in (self.image, self.pixels)))

    def binarized(self, x: torch.Tensor) -> torch.Tensor:
        """x with each pixel re-drawn as Bernoulli(its grey level) (u < p has probability p), or x itself
        when this step does not binarize."""
        return x if self.pixels is None else (self.pixels < x).to(x.dtype)


@dataclass
class LossTerms:
    """Batch-averaged terms; `loss` is what is minimised, the others are in nats per image."""

    loss: torch.Tensor
    recon: torch.Tensor  # -E_q[log p(x|z)]
    kl: torch.Tensor  # KL(q(z|x) || p(z))


def log_importance_weights(model: VAE, x: torch.Tensor, posterior: DiagonalGaussian,
                           z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(log w, log p(x|z)), each [K, N], for K samples z [K, N, D] from q(z|x) of images x [N, C, H, W]:
    log w = log p(x|z) + log p(z) - log q(z|x) (Burda et al. 2015, eq. 8), in float32. The training
    objective `iwae_loss` and the evaluation's importance-weighted bound both use this."""
    k, n = z.shape[:2]
    logits = model.decode(z.reshape(k * n, -1))
    log_px_z = model.likelihood.log_prob(logits, x.repeat(k, 1, 1, 1)).view(k, n)
    q = DiagonalGaussian(posterior.mean.float(), posterior.logvar.float())
    z = z.float()
    return log_px_z + standard_normal_log_prob(z) - q.log_prob(z), log_px_z


def _encoder_input(x: torch.Tensor, noise: StepNoise, encoder_noise: float) -> torch.Tensor:
    return x + encoder_noise * noise.image if encoder_noise > 0 else x


def elbo_loss(model: VAE, x: torch.Tensor, noise: StepNoise, beta: float = 1.0, encoder_noise: float = 0.0) -> LossTerms:
    """Negative ELBO (Kingma & Welling, eq. 10), one posterior sample per image, averaged over the batch,
    under the model's likelihood.

    beta scales the KL term (beta-VAE; beta=1 is the true ELBO). `encoder_noise` > 0 shows the encoder
    a noisy copy of x (a denoising encoder); the decoder is still scored on x itself, so the loss stays
    a bound on -log p(x), just with a smoother q(z|x)."""
    posterior = model.encode(_encoder_input(x, noise, encoder_noise))
    z = posterior.reparameterize(noise.latent)
    recon = model.likelihood.nll(model.decode(z), x).mean()
    # The KL is computed in float32 even under autocast: it is what evaluation reports in nats.
    kl = DiagonalGaussian(posterior.mean.float(), posterior.logvar.float()).kl().mean()
    return LossTerms(loss=recon + beta * kl, recon=recon, kl=kl)


def iwae_loss(model: VAE, x: torch.Tensor, noise: StepNoise, encoder_noise: float = 0.0,
              gradient: IwaeGradient = "standard") -> LossTerms:
    """The negative importance-weighted bound, -log (1/K) sum_k w_k, averaged over the batch (Burda,
    Grosse & Salakhutdinov, "Importance Weighted Autoencoders", 2015, https://arxiv.org/abs/1509.00519),
    with the K samples of noise.latent [N, K, D]. It bounds -log p(x) more tightly than the ELBO, and
    its gradient weights each sample by its normalised importance weight. A denoising encoder's
    q(z|noisy x) still gives a valid bound on p(x). `recon` and `kl` report the ELBO's terms.

    gradient="dreg" changes only the encoder's gradient, to the doubly reparameterised estimator
    (Tucker, Lawson, Gu & Maddison, "Doubly Reparameterized Gradient Estimators for Monte Carlo
    Objectives", 2018, https://arxiv.org/abs/1810.04152, eq. 7): sum_k w~_k^2 d log w_k/dz_k dz_k/dphi,
    with q's parameters held fixed inside log q. Its expectation is the standard gradient's; the score
    term it drops only adds variance. The loss, the decoder's gradient and every figure are unchanged."""
    posterior = model.encode(_encoder_input(x, noise, encoder_noise))
    eps = noise.latent if noise.latent.dim() == 3 else noise.latent[:, None]
    z = posterior.reparameterize(eps.transpose(0, 1))  # [K, N, D]
    dreg = gradient == "dreg" and z.requires_grad
    # DReG: q's parameters reach log w through z alone...
    q = DiagonalGaussian(posterior.mean.detach(), posterior.logvar.detach()) if dreg else posterior
    log_w, log_px_z = log_importance_weights(model, x, q, z)
    if dreg:
        # ...and the gradient that reaches z, sum_k w~_k d log w_k/dz_k, is weighted by w~_k once more.
        weights = torch.softmax(log_w.detach(), dim=0)  # w~_k, [K, N]
        z.register_hook(lambda grad: grad * weights[..., None].to(grad.dtype))
    bound = torch.logsumexp(log_w, dim=0) - math.log(len(log_w))
    kl = DiagonalGaussian(posterior.mean.float(), posterior.logvar.float()).kl().mean()
    return LossTerms(loss=-bound.mean(), recon=-log_px_z.mean(), kl=kl)


def iwae_posterior_gradients(model: VAE, x: torch.Tensor, noise: StepNoise,
                             gradient: IwaeGradient = "standard") -> torch.Tensor:
    """The gradient of image n's IWAE loss with respect to its posterior's (mean, logvar), [N, 2 D]: all
    the encoder's gradient passes through these. Each image has its own noise, so each row is one
    independent draw of the estimator, from which tests and benchmarks/iwae_gradient_variance.py
    measure its mean and variance."""
    heads: list[torch.Tensor] = []

    def keep(module, args, out):  # returns None, which leaves the output as it is
        out.retain_grad()
        heads.append(out)

    hooks = [layer.register_forward_hook(keep) for layer in (model.encoder.z_mean, model.encoder.z_logvar)]
    try:
        iwae_loss(model, x, noise, gradient=gradient).loss.backward()
    finally:
        for hook in hooks:
            hook.remove()
    return torch.cat([out.grad for out in heads], dim=1) * len(x)  # the loss is a mean over the batch


KERAS_SEED_KL_WEIGHT = 5e-4


def keras_seed_loss(model: VAE, x: torch.Tensor, noise: StepNoise) -> LossTerms:
    """The original Keras recipe, reproduced as it was written, for comparison only.

    Its differences from the ELBO: the reconstruction term is the *mean* BCE per pixel (1/784 of the
    log-likelihood) and the KL is averaged over latent dims and scaled by 5e-4, so in nats the loss
    is NLL + (0.784 / D) * KL (for the seed's 784 pixels), a beta-VAE with beta = 0.39 for D = 2; and the sampling uses
    std = exp(logvar) instead of exp(0.5 * logvar). `recon` and `kl` are still reported as the true
    per-image terms for this sample, so runs of both presets compare in nats.
    """
    posterior = model.encode(x)
    # std = exp(logvar) is a Gaussian whose log-variance is 2 * logvar.
    z = DiagonalGaussian(posterior.mean, 2.0 * posterior.logvar).reparameterize(noise.latent)
    nll = bernoulli_nll(model.decode(z), x)
    mean, logvar = posterior.mean.float(), posterior.logvar.float()
    keras_kl = torch.mean(logvar.exp() - (1.0 + logvar) + mean.pow(2))
    loss = nll.mean() / math.prod(x.shape[1:]) + KERAS_SEED_KL_WEIGHT * keras_kl  # the seed's 784
    return LossTerms(loss=loss, recon=nll.mean(), kl=DiagonalGaussian(mean, logvar).kl().mean())
