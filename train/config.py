"""Training configuration: one dataclass, two presets.

`default` is what we recommend. `seed` is the original Keras "Deep Learning with Python" recipe,
kept for comparison: it optimises a heavily down-weighted KL (see `model.keras_seed_loss`), so its
latent space and its nats are not those of a VAE trained on its ELBO.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from latent_atlas.runtime.evaluation import QUICK_IW_IMAGES
from latent_atlas.runtime.limits import MAX_BATCH_SIZE, MAX_EPOCHS, MAX_IW_SAMPLES, MAX_IWAE_SAMPLES, MAX_LATENT_DIM
from latent_atlas.runtime.image_shape import IMAGE_CHANNELS, SEED_IMAGE_SHAPE, parse_image_size
from latent_atlas.runtime.preprocessing import LAYOUTS, check_layout

from .family import architecture
from .options import (BINARIZE, DEVICES, IWAE_GRADIENTS, LIKELIHOOD_NAMES, LR_SCHEDULES, OBJECTIVES, OPTIMIZERS,
                      Binarize, Device, FlagPart, IwaeGradient, LikelihoodName, LrSchedule, Objective, Optimizer,
                      Preset, check_choice, option)

PRESETS: dict[str, dict] = {
    # Adam converges in far fewer seconds than the seed's RMSprop. Batch 64 with Adam's learning rate
    # scaled by sqrt(2) from the 1e-3 of batch 32 ends lower over 25 epochs than batch 32 over 20, in
    # little more time: a CPU step pays a large per-call cost whatever its batch (docs/benchmarks.md).
    # A cosine decay of the learning rate takes the gradient noise out of the last epochs. Without
    # help the encoder overfits (most of the test-train gap is the test amortization gap): noise of
    # std 0.2 on its input while training narrows that gap. The encoder's Dense 32 ReLUs start with a bias of 1 so that Adam's first steps do not
    # switch them off for good, which made the final -ELBO swing from seed to seed (model.py, docs/benchmarks.md).
    # bf16 autocast and channels-last for CPU throughput (loss and evaluation stay float32).
    "default": dict(objective="elbo", optimizer="adam", lr=1.414e-3, lr_schedule="cosine", batch_size=64,
                    epochs=25, lr_decay_epochs=25,
                    encoder_noise=0.2, bottleneck_bias=1.0, patience=5, bf16=True, channels_last=True),
    # The original: RMSprop (Keras defaults rho=0.9, eps=1e-7), batch 16, float32, and our early
    # stopping with patience 2 (the book trained a fixed 10 epochs).
    "seed": dict(objective="keras-seed", optimizer="rmsprop", lr=1e-3, batch_size=16, epochs=20, lr_decay_epochs=20,
                 encoder_noise=0.0,
                 bottleneck_bias=0.0, patience=2, bf16=False, channels_last=True),
}


DEFAULT = PRESETS["default"]  # TrainConfig's defaults for the fields a preset sets: the recommended recipe


def image_shape_from_flags(size: tuple[int, int] | None, channels: int | None) -> tuple[int, int, int] | None:
    """--image-size and --channels -> image_shape; the seed's side or channels for the one not given (None:
    neither given)."""
    if size is None and channels is None:
        return None
    height, width = size or SEED_IMAGE_SHAPE[1:]
    return (channels or SEED_IMAGE_SHAPE[0], height, width)


IMAGE_SHAPE_FLAGS = (
    FlagPart("--image-size", "image_size", parse_image_size, metavar="H[xW]",
             help="own images: the model's image size in pixels, height x width (sides multiples of 4, e.g. 64 or "
                  "48x64; default 28); pictures of another size are fitted by --layout"),
    FlagPart("--channels", "channels", int, choices=IMAGE_CHANNELS,
             help="own images: 1 (grey, the default) or 3 (RGB colour; grey pictures are repeated into three "
                  "channels, and a grey model takes a colour picture's luma)"),
)


@dataclass
class TrainConfig:
    """Defaults are the `default` preset (its values, read from PRESETS). Each field's `option` says how
    `latent-atlas train` offers it (train/commands.py builds the flags from these)."""

    # a built-in name, or your own images: a folder, an .npz file, a folder of IDX files
    dataset: str = option("mnist", metavar="NAME|PATH",
                          help="{default} (default), fashion-mnist, or your own images: a folder (one subfolder per "
                               "class), an .npz file (images, labels, class_names) or a folder of IDX files")
    # Your own images (train/own_data.py): how preprocessing places them (a runtime.preprocessing LAYOUTS
    # key; None: "mnist"), the seeded per-class split, and whether a few unusable files are left out.
    layout: str | None = option(None, choices=tuple(LAYOUTS), applies_to="own",
                                help="own images: how each picture becomes the model's image: mnist (crop to the ink, "
                                     "fit 20x20 of 28x28, centre of mass; the default for grey), fashion-mnist (crop, "
                                     "fit the field, centred), or the whole picture: pad (fitted inside, aspect ratio "
                                     "kept, border colour around; the default for colour), crop (the centre at the "
                                     "model's aspect ratio) or resize (stretched)")
    # Your own images: the model's channels x height x width (runtime/image_shape.py says which there are);
    # the built-in datasets are the seed's 1 x 28 x 28.
    image_shape: tuple[int, int, int] = option(SEED_IMAGE_SHAPE, applies_to="own", help="own images: the image shape",
                                               parts=IMAGE_SHAPE_FLAGS, combine=image_shape_from_flags)
    likelihood: LikelihoodName = option("bernoulli",
                                        help="the decoder's p(x|z): bernoulli (default; MNIST-like grey images), "
                                             "continuous-bernoulli (its normalised form, a density for grey and "
                                             "colour levels) or discretized-logistic (8-bit pixels, natural colour "
                                             "images); figures in nats and bits per dimension")
    split_seed: int = option(0, applies_to="own",
                             help="own images: seed of the train/validation/test split (default {default})")
    validation_fraction: float = option(0.1, applies_to="own",
                                        help="own images: share of each class for validation (default {default:g})")
    test_fraction: float = option(0.1, applies_to="own",
                                  help="own images: share of each class for test (default {default:g})")
    skip_bad_images: bool = option(False, applies_to="own",
                                   help="own images: leave out unreadable or blank pictures (at most 5%%) with a "
                                        "warning instead of stopping")
    preset: Preset = option("default", help="default (recommended): Adam, cosine LR, batch {preset[batch_size]}, bf16 "
                                            "on capable CPUs; seed: the original Keras recipe")
    latent_dim: int = option(2, help="size of z (default {default})")
    epochs: int = option(DEFAULT["epochs"], help="total epochs to reach, also with --resume (default {default})")
    # train on the first N training images only (after the validation hold-out)
    limit: int | None = option(None, help="train on the first N training images only")
    # Held out of the training set (a fixed, seeded choice: data.validation_split) to pick the best
    # epoch and stop early; the test set only reports. 0 selects on the test set, as before 0.2.
    val_size: int = option(5000, metavar="N", applies_to="builtin",
                           help="training images held out (fixed, seeded) to pick the best epoch and stop early "
                                "(default {default}); 0 selects on the test set instead, for comparison with older runs")
    seed: int = option(0, help="makes a CPU run reproducible (default {default})")
    # Where this process runs is not part of the run: a resumed run takes "auto" again unless told otherwise.
    device: Device = option("auto", help="where to train: auto (CUDA when PyTorch sees a device, else the CPU), cpu "
                                         "or cuda", cli_default=True)
    objective: Objective = option(DEFAULT["objective"],
                                  help="elbo (default preset), iwae (the importance-weighted bound with --k samples; "
                                       "Burda et al. 2015) or keras-seed (the seed preset's)")
    # K of the "iwae" objective (importance samples per image per step)
    importance_samples: int = option(5, flag="--k", metavar="K",
                                     help="importance samples per image of --objective iwae (default {default})")
    # the encoder's gradient estimator under "iwae" (options.py)
    iwae_gradient: IwaeGradient = option("standard",
                                         help="the encoder's gradient under --objective iwae: standard (default) or "
                                              "dreg, the doubly reparameterised estimator (Tucker et al. 2018), the "
                                              "same expectation with less variance")
    # "dynamic": train on pixels re-drawn as Bernoulli(grey level) at every use
    binarize: Binarize = option("none", help="dynamic: re-draw every training image's pixels as Bernoulli(grey level) "
                                             "each time it is used, and measure on binarized images (the literature's "
                                             "dynamically binarized MNIST); default {default}")
    optimizer: Optimizer = option(DEFAULT["optimizer"])
    lr: float = option(DEFAULT["lr"], help="default {default:g}")
    # cosine: per step, down to 0 at `lr_decay_epochs`
    lr_schedule: LrSchedule = option(DEFAULT["lr_schedule"], help="default: {default}")
    # The cosine's horizon is its own setting, not `epochs`: a run cut short and resumed (or extended
    # up to the horizon) then follows exactly the schedule it would have followed in one go.
    lr_decay_epochs: int = option(DEFAULT["lr_decay_epochs"], metavar="N",
                                  help="the cosine reaches 0 at epoch N (default {default}), whatever --epochs says, "
                                       "so runs resume exactly")
    batch_size: int = option(DEFAULT["batch_size"], help="default {default}")
    beta: float = option(1.0, help="KL weight (1 = the ELBO)")  # 1 is the true ELBO
    # ramp beta linearly from 0 over this many epochs (0 = off)
    beta_warmup_epochs: int = option(0, flag="--beta-warmup", metavar="EPOCHS", help="ramp beta up linearly over EPOCHS")
    # Amortized-inference regularisation (Shu et al., NeurIPS 2018, https://arxiv.org/abs/1805.08913):
    # the encoder, not the decoder, is what overfits MNIST here (docs/benchmarks.md), so these act on it
    # alone. Any q(z|x) gives a valid lower bound, so both leave the objective a true ELBO.
    encoder_weight_decay: float = option(0.0, metavar="W",  # decoupled (AdamW-style)
                                         help="decoupled weight decay on the encoder's weights (Adam only)")
    encoder_noise: float = option(DEFAULT["encoder_noise"], metavar="STD",
                                  help="Gaussian noise added to the encoder's input while training")
    bottleneck_bias: float = option(DEFAULT["bottleneck_bias"], metavar="B",  # Keras': 0
                                    help="initial bias of the encoder's Dense 32 ReLU units (default preset: "
                                         "{default:g}; seed preset and Keras: 0)")
    # early stopping: epochs without improvement (train.selection_metric) before stopping
    patience: int = option(DEFAULT["patience"], help="early stopping patience in epochs")
    # Quick trials: evaluate each epoch on the first N validation and test images only (None: all of them).
    # The figures then come from fewer images (metrics.jsonl records how many); export and `evaluate` use all.
    eval_images: int | None = option(None, metavar="N",
                                     help="quick trials: evaluate every epoch on the first N validation and test "
                                          "images only (default: all; export and evaluate always use the whole test set)")
    # also log the importance-weighted bound each epoch, with K samples on `eval_iw_images` test images
    eval_iw_samples: int = option(0, flag="--eval-iw", metavar="K",
                                  help=f"also log the importance-weighted bound (K samples, first {QUICK_IW_IMAGES} "
                                       "test images) every epoch")
    eval_iw_images: int = option(QUICK_IW_IMAGES)
    bf16: bool = option(DEFAULT["bf16"])  # bfloat16 autocast where the hardware supports it
    channels_last: bool = option(DEFAULT["channels_last"])
    # Fine-tuning: start from this run directory's best weights instead of a fresh initialisation. The new
    # run has its own optimizer, schedule, objective and data (your own images from an MNIST model, or a
    # larger --k late in training); checkpoint.json records which weights file (and its SHA-256) it began from.
    init_from: str | None = option(None, metavar="RUN|BUNDLE",
                                   help="fine-tune: start from RUN's best weights, or a model bundle's (a bundled "
                                        "model's name such as mnist, or an exported directory; float32), instead of a "
                                        "fresh initialisation (same --latent-dim); a new run with its own optimizer, "
                                        "learning-rate schedule, objective and data")

    def __post_init__(self) -> None:
        for name, value in self.to_dict().items():
            # A non-finite number (--lr inf, --beta nan) would train to NaN weights: refuse it up front.
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{name.replace('_', ' ')} must be a finite number, got {value}")
        check_choice(self.preset, tuple(PRESETS), "preset")
        check_choice(self.objective, OBJECTIVES, "objective")
        check_choice(self.binarize, BINARIZE, "binarize")
        check_choice(self.iwae_gradient, IWAE_GRADIENTS, "IWAE gradient")
        check_choice(self.optimizer, OPTIMIZERS, "optimizer")
        check_choice(self.lr_schedule, LR_SCHEDULES, "lr schedule")
        check_choice(self.device, DEVICES, "device")
        check_choice(self.likelihood, LIKELIHOOD_NAMES, "likelihood")
        self.image_shape = architecture(self.image_shape).image_shape  # checked; a saved JSON list becomes a tuple
        if self.layout is not None:
            check_layout(self.layout, self.image_shape)
        checks = [
            (1 <= self.importance_samples <= MAX_IWAE_SAMPLES,
             f"importance samples (--k) must be from 1 to {MAX_IWAE_SAMPLES:,}, got {self.importance_samples}"),
            (self.lr_decay_epochs >= 1, f"lr decay epochs must be >= 1, got {self.lr_decay_epochs}"),
            (self.lr_schedule != "cosine" or self.epochs <= self.lr_decay_epochs,
             f"the cosine schedule reaches a learning rate of 0 at epoch {self.lr_decay_epochs}, so training to "
             f"epoch {self.epochs} would not learn; pass --lr-decay-epochs {self.epochs} (or more), or --lr-schedule constant"),
            (1 <= self.latent_dim <= MAX_LATENT_DIM,
             f"latent dim must be from 1 to {MAX_LATENT_DIM} (larger ones exhaust memory), got {self.latent_dim}"),
            (1 <= self.epochs <= MAX_EPOCHS, f"epochs must be from 1 to {MAX_EPOCHS:,}, got {self.epochs}"),
            (1 <= self.batch_size <= MAX_BATCH_SIZE,
             f"batch size must be from 1 to {MAX_BATCH_SIZE:,} (more than the whole training set), got {self.batch_size}"),
            (self.limit is None or self.limit >= 1, f"limit must be >= 1, got {self.limit}"),
            (self.eval_images is None or self.eval_images >= 1, f"eval images must be >= 1, got {self.eval_images}"),
            (self.val_size >= 0, f"validation size must be >= 0, got {self.val_size}"),
            (self.lr > 0, f"learning rate must be > 0, got {self.lr}"),
            (self.beta >= 0, f"beta must be >= 0, got {self.beta}"),
            (self.beta_warmup_epochs >= 0, f"beta warm-up must be >= 0 epochs, got {self.beta_warmup_epochs}"),
            (self.encoder_weight_decay >= 0, f"encoder weight decay must be >= 0, got {self.encoder_weight_decay}"),
            (self.encoder_noise >= 0, f"encoder noise must be >= 0, got {self.encoder_noise}"),
            (self.patience >= 1, f"patience must be >= 1, got {self.patience}"),
            (0 <= self.eval_iw_samples <= MAX_IW_SAMPLES,
             f"eval IW samples must be from 0 to {MAX_IW_SAMPLES:,}, got {self.eval_iw_samples}"),
            (self.eval_iw_images >= 1, f"eval IW images must be >= 1, got {self.eval_iw_images}"),
            (0 < self.validation_fraction < 0.5, f"validation fraction must be in (0, 0.5), got {self.validation_fraction}"),
            (0 < self.test_fraction < 0.5, f"test fraction must be in (0, 0.5), got {self.test_fraction}"),
            (self.objective != "keras-seed" or self.likelihood == "bernoulli",
             f"the keras-seed objective is the original Bernoulli recipe; --likelihood {self.likelihood} needs "
             f"--objective elbo or iwae"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @classmethod
    def from_preset(cls, preset: str = "default", **overrides) -> "TrainConfig":
        """The preset's values, then any override that is not None."""
        check_choice(preset, tuple(PRESETS), "preset")
        values = {**PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}}
        return cls(preset=preset, **values)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        # Runs saved before the validation split trained on every training image: resumed, they must go on so.
        return cls(**{"val_size": 0, **{k: v for k, v in values.items() if k in known}})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def lr_at(self, step: int, steps_per_epoch: int) -> float:
        """The learning rate at optimizer step `step` (counted from the run's start). A pure function
        of the step, so a resumed run follows the same schedule without saving scheduler state."""
        if self.lr_schedule == "constant":
            return self.lr
        horizon = self.lr_decay_epochs * steps_per_epoch
        return self.lr * 0.5 * (1.0 + math.cos(math.pi * min(step, horizon) / horizon))

    def beta_at(self, epoch: int) -> float:
        """The KL weight during `epoch` (0-based): a linear warm-up, then `beta`."""
        if self.beta_warmup_epochs == 0:
            return self.beta
        return self.beta * min(1.0, (epoch + 1) / self.beta_warmup_epochs)


# What a resumed run may change: how far it goes and where it runs. Everything else is the run.
RESUME_CHANGEABLE = ("epochs", "device")


def resolve_config(saved: TrainConfig | None, overrides: dict, run_dir=None) -> TrainConfig:
    """The configuration of a run: the one place the rules live, for the CLI and the Python API alike.

    A new run (`saved` None): the preset named in `overrides` (default "default"), then every override
    that is not None. A resumed run: the saved config rules; `epochs` (the total to reach) and `device`
    may change, any other override must equal the saved value, and the result is validated against the
    saved run's own settings (its cosine horizon, not the default preset's)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    if saved is None:
        return TrainConfig.from_preset(given.pop("preset", "default"), **given)
    where = f"{run_dir} " if run_dir is not None else ""
    current = saved.to_dict()
    conflicts = [f"{k}={v!r} (the run has {current.get(k)!r})" for k, v in given.items()
                 if k not in RESUME_CHANGEABLE and current.get(k) != v]
    if conflicts:
        raise ValueError(f"--resume continues {where}with its saved settings; these options contradict them: "
                         + ", ".join(conflicts))
    changes = {k: v for k, v in given.items() if k in RESUME_CHANGEABLE}
    epochs = changes.get("epochs", saved.epochs)
    if saved.lr_schedule == "cosine" and epochs > saved.lr_decay_epochs:
        raise ValueError(f"{where}follows a cosine schedule that reaches a learning rate of 0 at epoch "
                         f"{saved.lr_decay_epochs}; it cannot learn past that. Start a new run with "
                         f"--epochs {epochs} --lr-decay-epochs {epochs}")
    return dataclasses.replace(saved, **changes)  # re-validated
