"""Turning any picture of a digit into what the encoder was trained on.

MNIST digits were made this way (LeCun et al., http://yann.lecun.com/exdb/mnist/): the digit is
cropped, scaled to fit a 20x20 box keeping its aspect ratio (anti-aliased), and placed in a 28x28
field so that its centre of mass sits at the centre. White ink on black, values in [0, 1].
`preprocess` repeats those steps for a photo or a drawing of any size and mode, after turning it
grey and light-on-dark. Run on real MNIST digits it gives most of them back exactly and the rest
within a faint edge pixel or a one-pixel shift.

`prepare_batch` is what `encode` calls: it accepts arrays, PIL images, files and lists of them, and
validates them with errors that name what was expected.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .limits import MAX_PIXELS

IMAGE_SIDE = 28
PIXEL_MAX = 255.0  # an 8-bit pixel's full scale: uint8 / PIXEL_MAX is the model's [0, 1]


@dataclass(frozen=True)
class Layout:
    """How a dataset places its object in the 28x28 field."""

    box: int  # the object is scaled so that its longer side is this many pixels
    centre_of_mass: bool  # True: centre of mass at CENTRE (MNIST); False: bounding box centred
    # True: find the ink (light on dark), crop to it, then fit and place it. False: the whole picture,
    # grey as it is, resized to 28x28 (for pictures that are already framed, like thumbnails).
    crop: bool = True


CENTRE = 14.0  # MNIST's centre of mass: the test set's mean, row and column, is 14.0 +- 0.3
LAYOUTS = {
    "mnist": Layout(box=20, centre_of_mass=True),
    # Fashion-MNIST (Xiao et al. 2017) resized each product's longer side to 28 and centred its box.
    "fashion-mnist": Layout(box=28, centre_of_mass=False),
    # Plain resize: no inversion, no crop; the aspect ratio is not kept (like torchvision's Resize((28, 28))).
    "resize": Layout(box=28, centre_of_mass=False, crop=False),
}
# Bumped whenever `preprocess` changes what it makes of a picture: caches of preprocessed
# training images (train/own_data.py) made by another version are then rebuilt.
PREPROCESSING_VERSION = 1

# Large pictures are shrunk to this side first: the digit ends up 20 pixels tall anyway.
WORK_SIDE = 1024
# Below this contrast between ink and background the picture is treated as blank.
MIN_CONTRAST = 0.08
# After normalising ink to [0, 1], pixels above this count as ink when cropping.
INK_THRESHOLD = 0.1

_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


# ---------------------------------------------------------------------------------------------------
# Reading: anything -> one grey float image [H, W] in [0, 1]


def read_gray(source: Any) -> np.ndarray:
    """A file path, bytes, PIL image or array -> float32 [H, W] in [0, 1] (0 = black).

    Transparent pixels are laid over a background that contrasts with the opaque content, so dark
    strokes on a transparent canvas and light strokes on one both stay visible."""
    if isinstance(source, Image.Image):
        return _pil_gray(source)
    if isinstance(source, (str, os.PathLike, bytes, bytearray)):
        return _pil_gray(open_image(source), opened_here=True)
    return _array_gray(source)


def open_image(source: str | os.PathLike | bytes | bytearray) -> Image.Image:
    """Opens an image file (or its bytes) lazily, refusing non-images and decompression bombs."""
    label = "image bytes" if isinstance(source, (bytes, bytearray)) else str(source)
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    elif not Path(source).exists():
        raise FileNotFoundError(f"{label}: no such file")
    try:
        image = Image.open(source)
    except UnidentifiedImageError as exc:
        raise ValueError(f"{label}: not an image file (expected PNG, JPEG, GIF, BMP, TIFF, WebP, ...)") from exc
    except Image.DecompressionBombError as exc:
        raise ValueError(f"{label}: refused, image too large ({exc}); the limit is {MAX_PIXELS:,} pixels") from exc
    check_size(image.size, label)
    return image


def check_size(size: tuple[int, int], label: str = "image") -> None:
    width, height = size
    if width * height > MAX_PIXELS:
        raise ValueError(f"{label}: refused, {width}x{height} = {width * height:,} pixels is over the limit of "
                         f"{MAX_PIXELS:,} (a decompression bomb, or a photo to shrink first)")
    if width < 1 or height < 1:
        raise ValueError(f"{label}: empty image ({width}x{height})")


def _pil_gray(image: Image.Image, opened_here: bool = False) -> np.ndarray:
    check_size(image.size)
    try:
        if opened_here and max(image.size) > WORK_SIDE:
            image.draft(image.mode, (WORK_SIDE, WORK_SIDE))  # JPEGs decode straight at a reduced size
        image = ImageOps.exif_transpose(image)  # phone photos are often stored sideways; returns a copy
        if image.mode in _SIXTEEN_BIT_MODES or image.mode in ("I", "F"):
            return _shrink_array(_scale_wide_values(np.asarray(image), image.mode))
        if image.mode in _ALPHA_MODES or (image.mode == "P" and "transparency" in image.info):
            rgba = np.asarray(_shrink_pil(image.convert("RGBA")), dtype=np.float32) / PIXEL_MAX
            return _over_contrasting_background(_luma(rgba[..., :3]), rgba[..., 3])
        if image.mode not in ("L", "1", "P", "RGB"):
            image = image.convert("RGB")  # CMYK, YCbCr, LAB, HSV: through RGB to grey
        return np.asarray(_shrink_pil(image.convert("L")), dtype=np.float32) / PIXEL_MAX
    except (OSError, SyntaxError) as exc:  # truncated or corrupt data surfaces only when decoded
        raise ValueError(f"{getattr(image, 'filename', '') or 'image'}: cannot decode ({exc})") from exc


def _shrink_pil(image: Image.Image) -> Image.Image:
    """Shrinks a large 8-bit image before it becomes a float array: the digit ends up 20 pixels tall."""
    if max(image.size) <= WORK_SIDE:
        return image
    return ImageOps.contain(image, (WORK_SIDE, WORK_SIDE), Image.Resampling.LANCZOS)


def _shrink_array(gray: np.ndarray) -> np.ndarray:
    if max(gray.shape) <= WORK_SIDE:
        return gray
    scale = WORK_SIDE / max(gray.shape)
    size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
    return _resize(gray, size)


def _scale_wide_values(values: np.ndarray, mode: str) -> np.ndarray:
    """16-bit, 32-bit integer and float PIL images -> [0, 1]. PIL's own convert("L") clips these
    instead of scaling them, which turns a 16-bit scan white."""
    values = values.astype(np.float32)
    if mode == "F":
        top = 1.0 if values.size == 0 or float(np.nanmax(values)) <= 1.0 else 255.0
    elif mode == "I":
        top = 65535.0 if values.size and float(values.max()) > 255 else 255.0
    else:
        top = 65535.0
    _check_finite(values, "image")
    return np.clip(values / top, 0.0, 1.0)


def _luma(rgb: np.ndarray) -> np.ndarray:
    # ITU-R 601-2, the weights PIL's convert("L") uses, so arrays and files of one picture agree.
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _over_contrasting_background(gray: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    if alpha.size == 0 or float(alpha.min()) >= 1.0:
        return gray
    weight = float(alpha.sum())
    ink = float((gray * alpha).sum() / weight) if weight > 0 else 0.0
    background = 1.0 if ink < 0.5 else 0.0
    return gray * alpha + background * (1.0 - alpha)


def _array_gray(source: Any) -> np.ndarray:
    """One image as an array: [H, W] grey, or [H, W, C] with C = 1 (grey), 2 (grey + alpha),
    3 (RGB) or 4 (RGBA)."""
    values = pixel_values(source)
    if values.ndim == 3 and values.shape[-1] in (1, 2, 3, 4):
        channels = values.shape[-1]
        check_size((values.shape[1], values.shape[0]))
        gray = values[..., 0] if channels <= 2 else _luma(values[..., :3])
        if channels in (2, 4):
            gray = _over_contrasting_background(gray, values[..., -1])
        return _shrink_array(gray)
    if values.ndim != 2:
        raise ValueError(f"expected one image shaped [H, W] or [H, W, C] with C in 1..4, got shape {values.shape}")
    check_size((values.shape[1], values.shape[0]))
    return _shrink_array(values)


def pixel_values(source: Any) -> np.ndarray:
    """Array-like -> float32 in [0, 1]: uint8 / 255, uint16 / 65535, bool as 0/1, other integers must lie
    in 0..255, floats must lie in [0, 1]. Anything else raises a TypeError or ValueError saying so."""
    try:
        array = np.asarray(source)
    except ValueError as exc:  # ragged nested lists
        raise ValueError(f"expected an image array, got a ragged sequence ({exc})") from exc
    kind = array.dtype.kind
    if kind == "b":
        return array.astype(np.float32)
    if kind in "iu":
        if array.dtype == np.uint16:
            return array.astype(np.float32) / 65535.0
        if array.size and (int(array.min()) < 0 or int(array.max()) > 255):
            raise ValueError(f"expected integer pixels in 0..255 (or uint16), found {array.dtype} values from "
                             f"{int(array.min())} to {int(array.max())}")
        return array.astype(np.float32) / PIXEL_MAX
    if kind == "f":
        _check_finite(array, "image")
        if array.size and (float(array.min()) < 0.0 or float(array.max()) > 1.0):
            raise ValueError(f"expected float pixels in [0, 1], found values from {float(array.min()):g} to "
                             f"{float(array.max()):g} (divide 0..255 images by 255, or pass uint8)")
        return array.astype(np.float32)
    if kind == "O":
        try:
            return pixel_values(array.astype(np.float64))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"expected image pixels as numbers, got an object array that is not numeric ({exc})") from exc
    raise TypeError(f"expected image pixels as numbers (uint8, uint16, bool or float), got dtype {array.dtype}")


def _check_finite(values: np.ndarray, what: str) -> None:
    if values.size and not np.isfinite(values).all():
        bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
        raise ValueError(f"{what} contains {bad} non-finite value(s) (NaN or infinity); expected finite numbers")


# ---------------------------------------------------------------------------------------------------
# MNIST-style normalisation


def preprocess(image: Any, layout: str | Layout = "mnist") -> np.ndarray:
    """Any picture of one digit -> float32 [28, 28] in [0, 1], white digit on black, MNIST-style.

    Steps: grey; invert when the ink is darker than the background (paper); subtract the background
    and its noise and stretch the ink to [0, 1]; crop to the ink; scale to fit 20x20 keeping the
    aspect ratio; put the centre of mass at the centre of a 28x28 field. A blank picture gives a
    black image. layout="fashion-mnist" (or a Layout) places the object the way that dataset does;
    layout="resize" only turns the picture grey and resizes all of it to 28x28."""
    layout = layout_for(layout)
    gray = read_gray(image)
    if not layout.crop:
        return gray if gray.shape == (IMAGE_SIDE, IMAGE_SIDE) else _resize(gray, (IMAGE_SIDE, IMAGE_SIDE))
    ink = _ink(gray)
    if ink is None:
        return np.zeros((IMAGE_SIDE, IMAGE_SIDE), dtype=np.float32)
    return _place(_fit_box(_crop(ink), layout.box), layout)


def is_blank(image: np.ndarray) -> bool:
    """True for a preprocessed image with nothing in it: what `preprocess` makes of a blank picture
    (all black), or a plain resize whose lightest and darkest pixels differ by less than MIN_CONTRAST."""
    return image.size == 0 or float(image.max()) - float(image.min()) < MIN_CONTRAST


def layout_for(name: str | Layout) -> Layout:
    if isinstance(name, Layout):
        return name
    if name not in LAYOUTS:
        raise ValueError(f"unknown layout {name!r}; expected one of {', '.join(LAYOUTS)} or a Layout")
    return LAYOUTS[name]


def _ink(gray: np.ndarray) -> np.ndarray | None:
    """Light-on-dark ink in [0, 1] with the background at 0, or None for a blank picture."""
    ring = _border(gray)
    background = float(np.median(ring))
    darkest, lightest = float(gray.min()), float(gray.max())
    dark_ink = background - darkest > lightest - background or (
        background - darkest == lightest - background and background > 0.5)
    if dark_ink:
        gray, ring, background = 1.0 - gray, 1.0 - ring, 1.0 - background
    # Paper texture and sensor noise: the border's spread (MAD scaled to a standard deviation).
    noise = 1.4826 * float(np.median(np.abs(ring - background)))
    floor = background + 4.0 * noise
    peak = float(gray.max())
    if peak - floor < MIN_CONTRAST:
        return None
    return np.clip((gray - floor) / (peak - floor), 0.0, 1.0)


def _border(gray: np.ndarray) -> np.ndarray:
    width = max(1, min(gray.shape) // 50)
    mask = np.ones(gray.shape, dtype=bool)
    mask[width:-width, width:-width] = False
    return gray[mask]


def _crop(ink: np.ndarray) -> np.ndarray:
    rows = np.flatnonzero((ink > INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((ink > INK_THRESHOLD).any(axis=0))
    return ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def _fit_box(digit: np.ndarray, box: int) -> np.ndarray:
    height, width = digit.shape
    scale = box / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if size != (width, height):
        digit = _resize(digit, size)
    peak = float(digit.max())
    return digit / peak if peak > 0 else digit


def _resize(gray: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Anti-aliased resize of a float image to size (width, height); Lanczos overshoot is clipped."""
    resized = Image.fromarray(np.ascontiguousarray(gray, dtype=np.float32)).resize(
        size, Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def _place(digit: np.ndarray, layout: Layout) -> np.ndarray:
    height, width = digit.shape
    if layout.centre_of_mass:
        mass = float(digit.sum())
        top = round(CENTRE - float((digit.sum(axis=1) * np.arange(height)).sum()) / mass)
        left = round(CENTRE - float((digit.sum(axis=0) * np.arange(width)).sum()) / mass)
    else:
        top, left = (IMAGE_SIDE - height + 1) // 2, (IMAGE_SIDE - width + 1) // 2  # odd margins: 1 more before
    # Whole-pixel shifts, as MNIST did, kept inside the field.
    top = min(max(top, 0), IMAGE_SIDE - height)
    left = min(max(left, 0), IMAGE_SIDE - width)
    out = np.zeros((IMAGE_SIDE, IMAGE_SIDE), dtype=np.float32)
    out[top:top + height, left:left + width] = digit
    return out


# ---------------------------------------------------------------------------------------------------
# Batches for the encoder


def prepare_batch(images: Any, preprocess_mode: str | bool = "auto",
                  layout: str | Layout = "mnist") -> tuple[np.ndarray, bool]:
    """What `encode` accepts -> (float32 [N, 1, 28, 28] in [0, 1], whether one image was given).

    Accepted: a file path, bytes, a PIL image, an array ([H, W] or [H, W, 3|4] for one image;
    [N, H, W] or [N, 1, H, W] or [N, H, W, 1|3|4] for a batch), or a list of any of these.
    preprocess_mode: "auto" passes grey 28x28 arrays through as they are (they are taken to be
    MNIST-format already) and preprocesses everything else; True preprocesses everything; False
    preprocesses nothing (everything must then be 28x28). layout: see `preprocess`."""
    layout = layout_for(layout)
    if not (preprocess_mode == "auto" or isinstance(preprocess_mode, bool)):
        raise ValueError(f"preprocess must be 'auto', True or False, got {preprocess_mode!r}")
    if isinstance(images, (str, os.PathLike, bytes, bytearray, Image.Image)):
        return _stack([_one(images, preprocess_mode, layout, from_array=False)]), True
    if isinstance(images, (list, tuple)) and (not images or any(_is_single_item(item) for item in images)):
        return _stack([_one(item, preprocess_mode, layout, from_array=not _is_file_like(item)) for item in images]), False
    values = pixel_values(images)
    if values.ndim == 2 or (values.ndim == 3 and values.shape[-1] in (3, 4)):
        return _stack([_one(values, preprocess_mode, layout, from_array=True)]), True
    if values.ndim == 4 and values.shape[1] == 1:
        values = values[:, 0]
    elif values.ndim == 4 and values.shape[-1] == 1:
        values = values[..., 0]
    elif values.ndim == 4 and values.shape[-1] in (3, 4):
        pass
    elif values.ndim != 3:
        raise ValueError("expected an image [H, W] or [H, W, 3|4], or a batch [N, H, W], [N, 1, H, W] or "
                         f"[N, H, W, 1|3|4]; got shape {values.shape}")
    if values.shape[0] and min(values.shape[1:3]) < 1:
        raise ValueError(f"images must be at least 1x1 pixels, got shape {values.shape}")
    if preprocess_mode is not True and values.ndim == 3 and values.shape[1:] == (IMAGE_SIDE, IMAGE_SIDE):
        return values[:, None].copy(), False  # already model input: the fast path
    return _stack([_one(image, preprocess_mode, layout, from_array=True) for image in values]), False


def _is_file_like(item: Any) -> bool:
    return isinstance(item, (str, os.PathLike, bytes, bytearray, Image.Image))


def _is_single_item(item: Any) -> bool:
    return _is_file_like(item) or isinstance(item, np.ndarray)


def _one(image: Any, preprocess_mode: str | bool, layout: Layout, from_array: bool) -> np.ndarray:
    if preprocess_mode is True or (preprocess_mode == "auto" and not _is_model_input(image, from_array)):
        return preprocess(image, layout)
    gray = read_gray(image)
    if gray.shape != (IMAGE_SIDE, IMAGE_SIDE):
        raise ValueError(f"with preprocess=False images must be {IMAGE_SIDE}x{IMAGE_SIDE}, got {gray.shape[1]}x"
                         f"{gray.shape[0]}")
    return gray


def _is_model_input(image: Any, from_array: bool) -> bool:
    """Grey 28x28 arrays are taken as MNIST-format already; files and PIL images never are."""
    return from_array and np.ndim(image) == 2 and np.shape(image) == (IMAGE_SIDE, IMAGE_SIDE)


def _stack(images: list[np.ndarray]) -> np.ndarray:
    if not images:
        return np.zeros((0, 1, IMAGE_SIDE, IMAGE_SIDE), dtype=np.float32)
    return np.stack(images)[:, None].astype(np.float32, copy=False)


def to_float(images: np.ndarray) -> np.ndarray:
    """A dataset's uint8 images, grey [N, H, W] or colour [N, H, W, 3] -> float32 [N, C, H, W] in [0, 1], the
    layout the model consumes."""
    images = np.asarray(images)
    colour = images.ndim == 4 and images.shape[-1] == 3
    if images.dtype != np.uint8 or not (images.ndim == 3 or colour):
        raise ValueError(f"expected uint8 images of shape [N, H, W] or [N, H, W, 3], found {images.dtype} {images.shape}")
    out = (images.transpose(0, 3, 1, 2) if colour else images[:, None, :, :]).astype(np.float32)
    out /= PIXEL_MAX
    return out
