"""The runtime's option values, each defined once: the type for annotations and the tuple of choices
that argparse, validation and dispatch derive from it (no heavy imports: every CLI parser reads them)."""

from __future__ import annotations

from typing import Literal, get_args

Variant = Literal["fp32", "int8", "fp16"]
VARIANTS: tuple[str, ...] = get_args(Variant)

InterpolationMethod = Literal["linear", "slerp"]
INTERPOLATION_METHODS: tuple[str, ...] = get_args(InterpolationMethod)

Weights = Literal["best", "last"]  # which of a run's weights: the best evaluated epoch's, or the latest
WEIGHTS: tuple[str, ...] = get_args(Weights)


def check_choice(value, choices: tuple[str, ...], what: str) -> str:
    """value if it is one of `choices`, else a ValueError naming them."""
    if value not in choices:
        raise ValueError(f"{what} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value
