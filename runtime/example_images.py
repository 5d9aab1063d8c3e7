"""A few MNIST and Fashion-MNIST test images shipped inside the package (runtime/examples/, whose README
records where each comes from and its licence), so that examples run on a fresh install without the
datasets."""

from __future__ import annotations

from pathlib import Path

EXAMPLES_DIR = Path(__file__).parent / "examples"
_DIGIT_PREFIX = "digit-"


def example_names() -> list[str]:
    """The shipped example images' names: "digit-0" .. "digit-9" (MNIST) and a few Fashion-MNIST items."""
    return sorted(p.stem for p in EXAMPLES_DIR.glob("*.png"))


def example_image(name: str | int) -> Path:
    """The path of a shipped example picture: a digit 0-9 (an MNIST test image of that digit) or a name
    from `example_names()`, e.g. "digit-3" or "sneaker"."""
    if isinstance(name, bool) or not isinstance(name, (str, int)):
        raise TypeError(f"example_image takes a digit 0-9 or a name, not {type(name).__name__}")
    stem = f"{_DIGIT_PREFIX}{name}" if isinstance(name, int) else name
    if stem not in example_names():  # a name, never a path: nothing outside the folder
        raise ValueError(f"no example image {name!r}: expected a digit 0-9 or one of {', '.join(example_names())}")
    return EXAMPLES_DIR / f"{stem}.png"
