"""Turning any picture of a digit into what the encoder was trained on.

MNIST digits were made this way (LeCun et al., http://yann.lecun.com/exdb/mnist/): the digit is
cropped, scaled to fit a 20x20 box keeping its aspect ratio (anti-aliased), and placed in a 28x28
field so that its centre of mass sits at the centre. White ink on black, values in [0, 1].
`preprocess` repeats those steps for a photo or a drawing of any size and mode, after turning it
grey and light-on-dark. Run on real MNIST digits it gives most of them back exactly and the rest
within a faint edge pixel or a one-pixel shift.

Models of other shapes (runtime/image_shape.py: 1 or 3 channels, any side that is a multiple of 4) get
the same steps in their own field (the box and the centre scale with the side), or, for pictures that
are already framed, one of the whole-picture layouts: "resize" stretches the picture to the field,
"pad" fits it inside keeping its aspect ratio and fills the rest with the picture's border colour, and
"crop" cuts the centre to the field's aspect ratio, then resizes. A colour model keeps the picture's
colour (a grey picture is repeated into 3 equal channels); a grey model gets a colour picture's luma.

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

from .image_shape import SEED_IMAGE_SHAPE, check_image_shape, shape_text
from .limits import MAX_PIXELS

IMAGE_SIDE = 28  # the seed models' side (SEED_IMAGE_SHAPE); other shapes scale the layouts' boxes from it
PIXEL_MAX = 255.0  # an 8-bit pixel's full scale: uint8 / PIXEL_MAX is the model's [0, 1]


@dataclass(frozen=True)
class Layout:
    """How a dataset places its object in the 28x28 field (other fields: the box scales with the side)."""

    box: int  # the object is scaled so that its longer side is this many pixels
    centre_of_mass: bool  # True: centre of mass at CENTRE (MNIST); False: bounding box centred
    # True: find the ink (light on dark), crop to it, then fit and place it. False: the whole picture,
    # as it is, brought to the field's size (for pictures that are already framed, like thumbnails).
    crop: bool = True
    # With crop=False, how the whole picture fills the field: one of FITS.
    fit: str = "stretch"


# "stretch": resized to the field, aspect ratio not kept; "pad": fitted inside, aspect ratio kept, the
# rest filled with the picture's border colour; "crop": the centre cut to the field's aspect ratio, resized.
FITS = ("stretch", "pad", "crop")


CENTRE = 14.0  # MNIST's centre of mass: the test set's mean, row and column, is 14.0 +- 0.3
LAYOUTS = {
    "mnist": Layout(box=20, centre_of_mass=True),
    # Fashion-MNIST (Xiao et al. 2017) resized each product's longer side to 28 and centred its box.
    "fashion-mnist": Layout(box=28, centre_of_mass=False),
    # Plain resize: no inversion, no crop; the aspect ratio is not kept (like torchvision's Resize((28, 28))).
    "resize": Layout(box=28, centre_of_mass=False, crop=False),
    # Framed pictures of another aspect ratio than the model's (photos, sprites): nothing is stretched.
    "pad": Layout(box=28, centre_of_mass=False, crop=False, fit="pad"),
    "crop": Layout(box=28, centre_of_mass=False, crop=False, fit="crop"),
}
# The ink layouts find light strokes on a dark ground in one channel; colour models use a whole-picture one.
COLOUR_LAYOUTS = tuple(name for name, layout in LAYOUTS.items() if not layout.crop)
# What own images get when no layout is asked for: digit-like grey images are placed as MNIST did,
# colour pictures are kept whole.
DEFAULT_GREY_LAYOUT = "mnist"
DEFAULT_COLOUR_LAYOUT = "pad"
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


def read_colour(source: Any) -> np.ndarray:
    """A file path, bytes, PIL image or array -> float32 [H, W, 3] RGB in [0, 1]. A grey picture gives
    three equal channels; transparency is laid over a contrasting background as in `read_gray`."""
    if isinstance(source, Image.Image):
        return _pil_colour(source)
    if isinstance(source, (str, os.PathLike, bytes, bytearray)):
        return _pil_colour(open_image(source), opened_here=True)
    return _array_colour(source)


def read_image(source: Any, channels: int = 1) -> np.ndarray:
    """`read_gray` (channels=1: [H, W]) or `read_colour` (channels=3: [H, W, 3])."""
    return read_gray(source) if channels == 1 else read_colour(source)


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


def _pil_colour(image: Image.Image, opened_here: bool = False) -> np.ndarray:
    check_size(image.size)
    if image.mode in _SIXTEEN_BIT_MODES or image.mode in ("I", "F") or image.mode in ("L", "1"):
        return _grey_to_colour(_pil_gray(image, opened_here))  # single-channel: grey's own scaling
    try:
        if opened_here and max(image.size) > WORK_SIDE:
            image.draft(image.mode, (WORK_SIDE, WORK_SIDE))
        image = ImageOps.exif_transpose(image)
        if image.mode in _ALPHA_MODES or (image.mode == "P" and "transparency" in image.info):
            rgba = np.asarray(_shrink_pil(image.convert("RGBA")), dtype=np.float32) / PIXEL_MAX
            return _colour_over_contrasting_background(rgba[..., :3], rgba[..., 3])
        return np.asarray(_shrink_pil(image.convert("RGB")), dtype=np.float32) / PIXEL_MAX
    except (OSError, SyntaxError) as exc:
        raise ValueError(f"{getattr(image, 'filename', '') or 'image'}: cannot decode ({exc})") from exc


def _grey_to_colour(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[..., None], 3, axis=-1)


def _colour_over_contrasting_background(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """As `_over_contrasting_background`, the background chosen from the content's luma."""
    if alpha.size == 0 or float(alpha.min()) >= 1.0:
        return rgb
    background = _contrasting_background(_luma(rgb), alpha)
    return rgb * alpha[..., None] + background * (1.0 - alpha[..., None])


def _shrink_pil(image: Image.Image) -> Image.Image:
    """Shrinks a large 8-bit image before it becomes a float array: the digit ends up 20 pixels tall."""
    if max(image.size) <= WORK_SIDE:
        return image
    return ImageOps.contain(image, (WORK_SIDE, WORK_SIDE), Image.Resampling.LANCZOS)


def _shrink_array(gray: np.ndarray) -> np.ndarray:
    """[H, W] or [H, W, 3]: large arrays are shrunk as large files are."""
    if max(gray.shape[:2]) <= WORK_SIDE:
        return gray
    scale = WORK_SIDE / max(gray.shape[:2])
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
    return gray * alpha + _contrasting_background(gray, alpha) * (1.0 - alpha)


def _contrasting_background(gray: np.ndarray, alpha: np.ndarray) -> float:
    """White behind dark content, black behind light content (judged on the opaque pixels' mean)."""
    weight = float(alpha.sum())
    ink = float((gray * alpha).sum() / weight) if weight > 0 else 0.0
    return 1.0 if ink < 0.5 else 0.0


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


def _array_colour(source: Any) -> np.ndarray:
    """One image as an array, as `_array_gray` accepts it -> [H, W, 3]."""
    values = pixel_values(source)
    if values.ndim == 3 and values.shape[-1] in (3, 4):
        check_size((values.shape[1], values.shape[0]))
        rgb = values[..., :3]
        if values.shape[-1] == 4:
            rgb = _colour_over_contrasting_background(rgb, values[..., 3])
        return _shrink_array(rgb)
    return _grey_to_colour(_array_gray(values))


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


def preprocess(image: Any, layout: str | Layout = "mnist", image_shape=SEED_IMAGE_SHAPE) -> np.ndarray:
    """Any picture of one digit -> float32 [28, 28] in [0, 1], white digit on black, MNIST-style.

    Steps: grey; invert when the ink is darker than the background (paper); subtract the background
    and its noise and stretch the ink to [0, 1]; crop to the ink; scale to fit 20x20 keeping the
    aspect ratio; put the centre of mass at the centre of a 28x28 field. A blank picture gives a
    black image. layout="fashion-mnist" (or a Layout) places the object the way that dataset does;
    layout="resize" only turns the picture grey and resizes all of it to 28x28.

    image_shape (channels, height, width) is the model's: the field is height x width (the box and
    the centre scale with it), and the result is [H, W] for 1 channel, [H, W, 3] RGB for 3. A colour
    picture for a grey model is turned into its luma; a grey picture for a colour model is repeated
    into three equal channels. Colour models take one of the whole-picture layouts (COLOUR_LAYOUTS):
    "resize" stretches, "pad" fits inside keeping the aspect ratio and fills with the border colour,
    "crop" cuts the centre to the field's aspect ratio; the ink layouts are refused for them."""
    channels, height, width = check_image_shape(image_shape)
    layout = check_layout(layout, image_shape)
    picture = read_image(image, channels)
    if not layout.crop:
        return _fill(picture, layout.fit, height, width)
    ink = _ink(picture)
    if ink is None:
        return np.zeros((height, width), dtype=np.float32)
    return _place(_fit_box(_crop(ink), round(layout.box * min(height, width) / IMAGE_SIDE)), layout, height, width)


def check_layout(layout: str | Layout, image_shape) -> Layout:
    """The layout, or ValueError in one line when it cannot serve a model of this shape."""
    found = layout_for(layout)
    if check_image_shape(image_shape)[0] != 1 and found.crop:
        name = next((key for key, value in LAYOUTS.items() if value == found), "given")
        raise ValueError(f"the {name} layout finds light ink on a dark ground in grey pictures; a colour model "
                         f"({shape_text(tuple(image_shape))}) takes one of {', '.join(COLOUR_LAYOUTS)}")
    return found


def default_layout(image_shape) -> str:
    """The layout own images get when none is asked for."""
    return DEFAULT_GREY_LAYOUT if check_image_shape(image_shape)[0] == 1 else DEFAULT_COLOUR_LAYOUT


def _fill(picture: np.ndarray, fit: str, height: int, width: int) -> np.ndarray:
    """A whole picture ([h, w] or [h, w, 3]) brought to height x width by `fit` (see FITS)."""
    h, w = picture.shape[:2]
    if (h, w) == (height, width):
        return picture
    if fit == "crop":
        if w * height > h * width:  # wider than the field: keep the middle columns
            keep = max(1, round(h * width / height))
            picture = picture[:, (w - keep) // 2:(w - keep) // 2 + keep]
        else:
            keep = max(1, round(w * height / width))
            picture = picture[(h - keep) // 2:(h - keep) // 2 + keep]
    elif fit == "pad":
        scale = min(width / w, height / h)
        size = (min(width, max(1, round(w * scale))), min(height, max(1, round(h * scale))))
        fitted = _resize(picture, size) if size != (w, h) else picture
        background = np.median(picture[_border_mask(picture.shape[:2])], axis=0).astype(np.float32)
        out = np.empty((height, width, *picture.shape[2:]), dtype=np.float32)
        out[...] = background
        top, left = (height - size[1] + 1) // 2, (width - size[0] + 1) // 2
        out[top:top + size[1], left:left + size[0]] = fitted
        return out
    return _resize(picture, (width, height))


def is_blank(image: np.ndarray) -> bool:
    """True for a preprocessed image with nothing in it: what `preprocess` makes of a blank picture
    (all black), or a whole-picture layout whose lightest and darkest pixels differ by less than
    MIN_CONTRAST (in every channel, for a colour image [H, W, 3])."""
    if image.size == 0:
        return True
    if image.ndim == 3:
        return bool((image.max(axis=(0, 1)) - image.min(axis=(0, 1)) < MIN_CONTRAST).all())
    return float(image.max()) - float(image.min()) < MIN_CONTRAST


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
    return gray[_border_mask(gray.shape)]


def _border_mask(shape: tuple[int, int]) -> np.ndarray:
    """The picture's outer ring (a fiftieth of the shorter side, at least one pixel) as a bool [H, W]."""
    width = max(1, min(shape) // 50)
    mask = np.ones(shape, dtype=bool)
    mask[width:-width, width:-width] = False
    return mask


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
    """Anti-aliased resize of a float image ([H, W], or [H, W, C] channel by channel) to size (width,
    height); Lanczos overshoot is clipped."""
    if gray.ndim == 3:
        return np.stack([_resize(gray[..., c], size) for c in range(gray.shape[-1])], axis=-1)
    resized = Image.fromarray(np.ascontiguousarray(gray, dtype=np.float32)).resize(
        size, Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def _place(digit: np.ndarray, layout: Layout, field_height: int = IMAGE_SIDE,
           field_width: int = IMAGE_SIDE) -> np.ndarray:
    height, width = digit.shape
    if layout.centre_of_mass:
        mass = float(digit.sum())
        top = round(CENTRE * field_height / IMAGE_SIDE - float((digit.sum(axis=1) * np.arange(height)).sum()) / mass)
        left = round(CENTRE * field_width / IMAGE_SIDE - float((digit.sum(axis=0) * np.arange(width)).sum()) / mass)
    else:
        top, left = (field_height - height + 1) // 2, (field_width - width + 1) // 2  # odd margins: 1 more before
    # Whole-pixel shifts, as MNIST did, kept inside the field.
    top = min(max(top, 0), field_height - height)
    left = min(max(left, 0), field_width - width)
    out = np.zeros((field_height, field_width), dtype=np.float32)
    out[top:top + height, left:left + width] = digit
    return out


# ---------------------------------------------------------------------------------------------------
# Batches for the encoder


def prepare_batch(images: Any, preprocess_mode: str | bool = "auto", layout: str | Layout = "mnist",
                  image_shape=SEED_IMAGE_SHAPE) -> tuple[np.ndarray, bool]:
    """What `encode` accepts -> (float32 [N, C, H, W] in [0, 1], whether one image was given), for a
    model of image_shape (C, H, W); the seed's [N, 1, 28, 28] by default.

    Accepted: a file path, bytes, a PIL image, an array ([H, W] or [H, W, 3|4] for one image;
    [N, H, W], [N, H, W, 1|3|4], [N, 1, H, W] or, for a colour model, [N, 3, H, W] for a batch), or a list of any of
    these. preprocess_mode: "auto" passes arrays that already are the model's input through as they
    are (grey [H, W] for a grey model, RGB [H, W, 3] for a colour one, of the model's size; grey 28x28
    ones are taken to be MNIST-format already) and preprocesses everything else; True preprocesses
    everything; False preprocesses nothing (everything must then have the model's size; colour is
    converted as `preprocess` states). layout: see `preprocess`."""
    shape = check_image_shape(image_shape)
    layout = check_layout(layout, shape)
    if not (preprocess_mode == "auto" or isinstance(preprocess_mode, bool)):
        raise ValueError(f"preprocess must be 'auto', True or False, got {preprocess_mode!r}")
    if isinstance(images, (str, os.PathLike, bytes, bytearray, Image.Image)):
        return _stack([_one(images, preprocess_mode, layout, shape, from_array=False)], shape), True
    if isinstance(images, (list, tuple)) and (not images or any(_is_single_item(item) for item in images)):
        return _stack([_one(item, preprocess_mode, layout, shape, from_array=not _is_file_like(item))
                       for item in images], shape), False
    values = pixel_values(images)
    if values.ndim == 2 or (values.ndim == 3 and values.shape[-1] in (3, 4)):
        return _stack([_one(values, preprocess_mode, layout, shape, from_array=True)], shape), True
    if values.ndim == 4 and values.shape[1] == 1:
        values = values[:, 0]
    elif values.ndim == 4 and values.shape[-1] == 1:
        values = values[..., 0]
    elif values.ndim == 4 and values.shape[-1] in (3, 4):
        pass
    elif values.ndim == 4 and values.shape[1] == shape[0]:
        values = values.transpose(0, 2, 3, 1)  # a colour model's own input layout, channels first
    elif values.ndim != 3:
        raise ValueError(f"expected an image [H, W] or [H, W, 3|4], or a batch [N, H, W], [N, {shape[0]}, H, W] or "
                         f"[N, H, W, 1|3|4]; got shape {values.shape}")
    if values.shape[0] and min(values.shape[1:3]) < 1:
        raise ValueError(f"images must be at least 1x1 pixels, got shape {values.shape}")
    if preprocess_mode is not True and values.shape[1:] == _display_shape(shape):
        return _stack(list(values), shape) if shape[0] != 1 else values[:, None].copy(), False  # the fast path
    return _stack([_one(image, preprocess_mode, layout, shape, from_array=True) for image in values], shape), False


def _display_shape(image_shape: tuple[int, int, int]) -> tuple[int, ...]:
    """How one image of the model's shape is laid out for a user: [H, W] grey, [H, W, 3] colour."""
    channels, height, width = image_shape
    return (height, width) if channels == 1 else (height, width, channels)


def _is_file_like(item: Any) -> bool:
    return isinstance(item, (str, os.PathLike, bytes, bytearray, Image.Image))


def _is_single_item(item: Any) -> bool:
    return _is_file_like(item) or isinstance(item, np.ndarray)


def _one(image: Any, preprocess_mode: str | bool, layout: Layout, image_shape: tuple[int, int, int],
         from_array: bool) -> np.ndarray:
    if preprocess_mode is True or (preprocess_mode == "auto" and not (
            from_array and np.shape(image) == _display_shape(image_shape))):
        return preprocess(image, layout, image_shape)
    picture = read_image(image, image_shape[0])
    if picture.shape[:2] != image_shape[1:]:
        raise ValueError(f"with preprocess=False images must be {image_shape[2]}x{image_shape[1]}, got "
                         f"{picture.shape[1]}x{picture.shape[0]}")
    return picture


def _stack(images: list[np.ndarray], image_shape: tuple[int, int, int] = SEED_IMAGE_SHAPE) -> np.ndarray:
    """Display-layout images ([H, W] or [H, W, 3]) -> float32 [N, C, H, W]."""
    if not images:
        return np.zeros((0, *image_shape), dtype=np.float32)
    stacked = np.stack(images)
    if stacked.ndim == 4:
        return np.ascontiguousarray(stacked.transpose(0, 3, 1, 2), dtype=np.float32)
    return stacked[:, None].astype(np.float32, copy=False)


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

