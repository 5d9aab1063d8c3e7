"""The trainer's option values, each defined once: a Literal type for annotations and the tuple of
choices that argparse, TrainConfig's validation and the dispatch in train.py derive from it.
Torch-free: every `latent-atlas` parser reads these."""

from __future__ import annotations

from dataclasses import Field, dataclass, field
from typing import Any, Callable, Literal, get_args

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

# The decoder's likelihood p(x|z) (train/likelihoods.py defines each; the names live here, torch-free, for
# the parsers): bernoulli for MNIST-like grey images, the other two for colour and natural images.
LikelihoodName = Literal["bernoulli", "continuous-bernoulli", "discretized-logistic"]
LIKELIHOOD_NAMES: tuple[str, ...] = get_args(LikelihoodName)

Device = Literal["auto", "cpu", "cuda"]  # "auto": CUDA when PyTorch sees a device, else the CPU
DEVICES: tuple[str, ...] = get_args(Device)


@dataclass(frozen=True)
class FlagPart:
    """One of the flags that together give one field's value (--image-size and --channels: image_shape)."""

    flag: str
    dest: str  # the argparse attribute it is parsed into
    parse: Callable[[str], Any]  # text -> value; raises ValueError in one line
    help: str
    metavar: str | None = None
    choices: tuple | None = None


def option(default, *, help: str | None = None, flag: str | None = None, metavar: str | None = None,
           choices: tuple[str, ...] | None = None, applies_to: str | None = None, cli_default: bool = False,
           parts: tuple[FlagPart, ...] | None = None, combine: Callable[..., Any] | None = None):
    """A TrainConfig field that `latent-atlas train` offers as a flag: its help, and where the name, type
    or choices its annotation gives are not what users type, those. help=None: no flag.

    help may quote `{default}` (the field's default) and `{preset[KEY]}` (the default preset's values).
    applies_to: "own" (your own images only) or "builtin" (the built-in datasets only); the other kind
    refuses the flag. cli_default: the flag's default is the field's, not "not given", so a resumed run
    takes it too instead of keeping its saved value. parts: the field is offered as several flags instead
    (help then describes the field), and combine(*values of the parts, None where not given) gives its value
    (None: not given)."""
    metadata = {"help": help, "flag": flag, "metavar": metavar, "choices": choices, "applies_to": applies_to,
                "cli_default": cli_default, "parts": parts, "combine": combine}
    return field(default=default, metadata={key: value for key, value in metadata.items() if value is not None})


def flag_of(config_field: Field) -> str | None:
    """The command-line flag of a TrainConfig field (None: it has none; several flags: joined by '/')."""
    if config_field.metadata.get("help") is None:
        return None
    if "parts" in config_field.metadata:
        return "/".join(part.flag for part in config_field.metadata["parts"])
    return config_field.metadata.get("flag") or "--" + config_field.name.replace("_", "-")
