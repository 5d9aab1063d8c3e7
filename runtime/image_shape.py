"""Which image shapes a model may have: the rule every layer reads (trainer, exporter, runtime, explorers).

An image is channels x height x width: 1 (grey) or 3 (RGB) channels, sides that are positive multiples
of 4 and at most `limits.MAX_IMAGE_SIDE`. The seed's (1, 28, 28) is the default. The architecture each
shape gets is train/family.py's; this module only says which shapes there are, without torch, so the
runtime can check a bundle's shape and the CLI an `--image-size`.
"""

from __future__ import annotations

import numbers
import re

from .limits import MAX_IMAGE_SIDE

SEED_IMAGE_SHAPE = (1, 28, 28)
IMAGE_CHANNELS = (1, 3)  # grey or RGB
# Sides divisible by 4 always allow the two exact stride-2 halvings the family's rule may ask for.
SIDE_MULTIPLE = 4
_SIZE = re.compile(r"\s*(\d{1,6})\s*(?:[xX×]\s*(\d{1,6})\s*)?")


def shape_text(shape) -> str:
    """(3, 64, 64) -> '3 x 64 x 64' for messages."""
    return " x ".join(str(v) for v in shape) if isinstance(shape, (tuple, list)) else repr(shape)


def display_shape(image_shape) -> tuple[int, ...]:
    """How one image of `image_shape` (C, H, W) is laid out for a user: [H, W] grey, [H, W, 3] colour (the
    model's own arrays are [N, C, H, W]; images.to_display turns them into this)."""
    channels, height, width = image_shape
    return (height, width) if channels == 1 else (height, width, channels)


def check_image_shape(image_shape) -> tuple[int, int, int]:
    """`image_shape` as a tuple of three ints, or ValueError in one line saying what is supported."""
    what = f"image shape {shape_text(image_shape)}"
    if (not isinstance(image_shape, (tuple, list)) or len(image_shape) != 3
            or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in image_shape)):
        raise ValueError(f"{what}: expected three integers, channels x height x width (e.g. 3 x 64 x 64)")
    channels, height, width = (int(v) for v in image_shape)
    if channels not in IMAGE_CHANNELS:
        raise ValueError(f"{what}: {channels} channels; expected 1 (grey) or 3 (RGB)")
    for name, side in (("height", height), ("width", width)):
        check_side(side, f"{what}: {name}")
    return channels, height, width


def check_side(side: int, what: str = "image side") -> int:
    """One side of an image, or ValueError in one line."""
    if side < SIDE_MULTIPLE or side % SIDE_MULTIPLE:
        raise ValueError(f"{what} {side} is not a positive multiple of {SIDE_MULTIPLE}; expected sides such as "
                         f"28, 32, 64, 96 or 128")
    if side > MAX_IMAGE_SIDE:
        raise ValueError(f"{what} {side} is larger than the limit of {MAX_IMAGE_SIDE}; resize the images to at "
                         f"most {MAX_IMAGE_SIDE} x {MAX_IMAGE_SIDE}")
    return side


def parse_image_size(text: str) -> tuple[int, int]:
    """'64' -> (64, 64); '48x64' -> (48, 64) (height x width), each side checked; ValueError in one line."""
    match = _SIZE.fullmatch(str(text))
    if not match:
        raise ValueError(f"image size {text!r}: expected H or HxW in pixels, e.g. 64 or 48x64")
    height = int(match.group(1))
    width = int(match.group(2) or height)
    return check_side(height, "image height"), check_side(width, "image width")
