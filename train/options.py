"""The trainer's option values, each defined once: a Literal type for annotations and the tuple of
choices that argparse, TrainConfig's validation and the dispatch in train.py derive from it.
Torch-free: every `latent-atlas` parser reads these."""

from __future__ import annotations

from dataclasses import Field, field
from typing import Literal, get_args

from latent_atlas.runtime.options import WEIGHTS, Weights, check_choice  # noqa: F401  (re-exported)

Preset = Literal["default", "seed"]
PRESETS: tuple[str, ...] = get_args(Preset)

Objective = Literal["elbo", "iwae", "keras-seed"]
OBJECTIVES: tuple[str, ...] = get_args(Objective)

# The encoder's gradient under --objective iwae: "standard" differentiates the bound as it is; "dreg" is
# the doubly reparameterised estimator (Tucker, Lawson, Gu & Maddison 2018), the same expectation with
# less variance, so the encoder keeps learning as K grows (Rainforth et al. 2018).
IwaeGradient = Literal["standard", "dreg"]
IWAE_GRADIENTS: tuple[str, ...] = get_args(IwaeGradient)

# "dynamic": every time an image is used for training its pixels are re-drawn as Bernoulli(grey level),
# "dynamically binarized MNIST", the setting of the literature's log-likelihoods.
Binarize = Literal["none", "dynamic"]
BINARIZE: tuple[str, ...] = get_args(Binarize)

Optimizer = Literal["adam", "rmsprop"]
OPTIMIZERS: tuple[str, ...] = get_args(Optimizer)

LrSchedule = Literal["constant", "cosine"]
LR_SCHEDULES: tuple[str, ...] = get_args(LrSchedule)

Device = Literal["auto", "cpu", "cuda"]  # "auto": CUDA when PyTorch sees a device, else the CPU
DEVICES: tuple[str, ...] = get_args(Device)


def option(default, *, help: str | None = None, flag: str | None = None, metavar: str | None = None,
           choices: tuple[str, ...] | None = None, applies_to: str | None = None, cli_default: bool = False):
    """A TrainConfig field that `latent-atlas train` offers as a flag: its help, and where the name, type
    or choices its annotation gives are not what users type, those. help=None: no flag.

    help may quote `{default}` (the field's default) and `{preset[KEY]}` (the default preset's values).
    applies_to: "own" (your own images only) or "builtin" (the built-in datasets only); the other kind
    refuses the flag. cli_default: the flag's default is the field's, not "not given", so a resumed run
    takes it too instead of keeping its saved value."""
    metadata = {"help": help, "flag": flag, "metavar": metavar, "choices": choices, "applies_to": applies_to,
                "cli_default": cli_default}
    return field(default=default, metadata={key: value for key, value in metadata.items() if value is not None})


def flag_of(config_field: Field) -> str | None:
    """The command-line flag of a TrainConfig field (None: it has none)."""
    if config_field.metadata.get("help") is None:
        return None
    return config_field.metadata.get("flag") or "--" + config_field.name.replace("_", "-")
