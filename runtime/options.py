"""The runtime's option values, each defined once: the type for annotations and the tuple of choices
that argparse, validation and dispatch derive from it (no heavy imports: every CLI parser reads them)."""

from __future__ import annotations

import argparse
import sys
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


# --- one spelling per option across the commands --------------------------------------------------
# Every command that reads a model bundle takes it as -m/--model (a positional would clash with encode's
# image files, and web takes several), and the execution provider as --provider (one name: the CPU
# provider is always the fallback). The older spellings work for one more release, with a warning.
MODEL_FLAGS = ("-m", "--model")
PROVIDER_FLAG = "--provider"


class DeprecatedSpelling(argparse.Action):
    """An older spelling of an option, kept for one release: it stores into `target` (the current
    option's dest; appending where that one appends) and says on stderr what to type instead. A
    positional one is added with default=argparse.SUPPRESS, so that it runs only when given."""

    def __init__(self, option_strings, dest, *, instead: str, target: str | None = None, append: bool = False,
                 **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.instead, self.target, self.append = instead, target or dest, append

    def __call__(self, parser, namespace, values, option_string=None):
        spelling = option_string or f"the positional {self.metavar}"
        print(f"{parser.prog}: warning: {spelling} is deprecated and will be removed in the next release; "
              f"use {self.instead}", file=sys.stderr)
        current = getattr(namespace, self.target, None)
        if self.append:
            values = [*(current or []), *values]
        elif current not in (parser.get_default(self.target), values):
            parser.error(f"{spelling} and {self.instead} both given: give it once, as {self.instead}")
        setattr(namespace, self.target, values)


def add_model_option(p, help: str, *, default=None, append: bool = False, deprecated_positional: bool = False) -> None:
    """-m/--model BUNDLE (dest `model`; repeatable with append), and for a command that took the bundle
    positionally before, that spelling (deprecated)."""
    p.add_argument(*MODEL_FLAGS, dest="model", default=default, action="append" if append else "store",
                   metavar="BUNDLE", help=help)
    if deprecated_positional:
        p.add_argument("deprecated_model", nargs="*" if append else "?", default=argparse.SUPPRESS,
                       action=DeprecatedSpelling, instead=f"{MODEL_FLAGS[0]} BUNDLE", target="model", append=append,
                       metavar="BUNDLE", help=argparse.SUPPRESS)


def add_provider_option(p, help: str, *, default=None, deprecated: tuple[str, ...] = ()) -> None:
    """--provider NAME (dest `provider`), and any older spelling of it (deprecated)."""
    p.add_argument(PROVIDER_FLAG, dest="provider", default=default, metavar="NAME", help=help)
    for spelling in deprecated:
        p.add_argument(spelling, dest="provider", default=argparse.SUPPRESS, action=DeprecatedSpelling,
                       instead=f"{PROVIDER_FLAG} NAME", metavar="NAME", help=argparse.SUPPRESS)
