"""The trainer's option values, each defined once: a Literal type for annotations and the tuple of
choices that argparse, TrainConfig's validation and the dispatch in train.py derive from it.
Torch-free: every `latent-atlas` parser reads these."""

from __future__ import annotations

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

# Bounds on sizes a user can type. A 2-D latent is the point of the project; 512 dims already make the
# decoder's first layer 6.4 M weights, and beyond that one mistyped number exhausts memory.
MAX_LATENT_DIM = 512
# A batch larger than the 60,000 training images is never a whole batch.
MAX_BATCH_SIZE = 65_536
MAX_EPOCHS = 100_000
# Importance samples per image of the IWAE objective: each is one decode per image per step.
MAX_IWAE_SAMPLES = 1_000
