"""Turning model outputs into pictures: float images in [0, 1] -> uint8 arrays, tiled grids, PIL images.

Torch-free: the trainer's plots, the runtime and the explorer all draw through these functions. Images
are in the display layout (runtime/image_shape.py's convention): grey [H, W] / [N, H, W], colour
[H, W, 3] / [N, H, W, 3]; `to_display` turns the model's [N, C, H, W] into it. A last axis of 3 always
means colour: image sides are multiples of 4, so 3 cannot be a width.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from .files import atomic_write
from .limits import MAX_PICTURE_PIXELS, MAX_SCALE
from .preprocessing import PIXEL_MAX


def check_scale(scale: int) -> int:
    """A pixel scale as an integer in 1..MAX_SCALE, or a ValueError saying what was expected."""
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or not 1 <= scale <= MAX_SCALE:
        raise ValueError(f"scale must be an integer from 1 to {MAX_SCALE} (one 28-pixel image at {MAX_SCALE}x is "
                         f"{28 * MAX_SCALE} pixels wide), got {scale!r}")
    return int(scale)


def check_picture_size(width: int, height: int, frames: int = 1, channels: int = 1) -> None:
    """Refuses a picture (or animation of `frames` such pictures) of more than MAX_PICTURE_PIXELS 8-bit
    values (pixels times `channels`)."""
    values = width * height * frames * channels
    if values > MAX_PICTURE_PIXELS:
        what = f"{frames} frames of {width}x{height}" if frames > 1 else f"{width}x{height}"
        colour = " in colour" if channels > 1 else ""
        raise ValueError(f"the picture would be {what} pixels{colour} ({values:,} values), above the limit of "
                         f"{MAX_PICTURE_PIXELS:,} ({MAX_PICTURE_PIXELS >> 20} M 8-bit values) that keeps memory "
                         f"bounded; lower the scale or the number of images")


def to_uint8(images: np.ndarray) -> np.ndarray:
    """[..., H, W] or [..., H, W, 3] floats in [0, 1] (values outside are clipped) -> uint8 of the same shape."""
    images = np.asarray(images, dtype=np.float32)
    return (np.clip(images, 0.0, 1.0) * PIXEL_MAX + 0.5).astype(np.uint8)


def to_display(images: np.ndarray) -> np.ndarray:
    """The model's images [N, C, H, W] -> the display layout: grey [N, H, W] (C = 1), colour [N, H, W, 3]."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected model images [N, 1 or 3, H, W], got shape {images.shape}")
    return images[:, 0] if images.shape[1] == 1 else images.transpose(0, 2, 3, 1)


def _is_colour(images: np.ndarray) -> bool:
    return images.shape[-1] == 3


def _as_stack(images: np.ndarray) -> np.ndarray:
    """Accepts one image [H, W] or [H, W, 3], or several: [N, H, W], [N, H, W, 3] or the model's [N, C, H, W];
    returns [N, H, W] (grey) or [N, H, W, 3] (colour)."""
    images = np.asarray(images)
    if images.ndim == 2 or (images.ndim == 3 and _is_colour(images)):
        return images[None]
    if images.ndim == 4 and images.shape[1] in (1, 3) and not _is_colour(images):
        return to_display(images)
    if images.ndim == 3 or (images.ndim == 4 and _is_colour(images)):
        return images
    raise ValueError(f"expected images shaped [H, W], [H, W, 3], [N, H, W], [N, H, W, 3] or [N, 1 or 3, H, W], "
                     f"got {images.shape}")


def tile(images: np.ndarray, ncols: int | None = None, padding: int = 0, background: float = 0.0) -> np.ndarray:
    """Lays N images out row by row on a grid (square by default): grey [N, H, W] -> [rows*H', ncols*W'],
    colour [N, H, W, 3] -> [rows*H', ncols*W', 3] (see _as_stack for the shapes taken)."""
    stack = _as_stack(images)
    n, h, w = stack.shape[:3]
    if n == 0:
        raise ValueError("cannot tile an empty set of images")
    ncols = ncols or math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    out = np.full((nrows * (h + padding) + padding, ncols * (w + padding) + padding, *stack.shape[3:]), background,
                  dtype=stack.dtype)
    for i, image in enumerate(stack):
        r, c = divmod(i, ncols)
        top, left = padding + r * (h + padding), padding + c * (w + padding)
        out[top:top + h, left:left + w] = image
    return out


def to_pil(image: np.ndarray, scale: int = 1) -> Image.Image:
    """One image in [0, 1], grey ([H, W]) or colour ([H, W, 3]) -> a PIL 'L' or 'RGB' image, upscaled by
    nearest neighbour so pixels stay crisp."""
    image = _as_stack(image)
    if image.shape[0] != 1:
        raise ValueError(f"to_pil takes one image; got {image.shape[0]} (use grid_image for several)")
    scale = check_scale(scale)
    check_picture_size(image.shape[2] * scale, image.shape[1] * scale, channels=_channels(image))
    pil = Image.fromarray(to_uint8(image[0]))
    if scale != 1:
        pil = pil.resize((pil.width * scale, pil.height * scale), Image.Resampling.NEAREST)
    return pil


def _channels(stack: np.ndarray) -> int:
    return 3 if stack.ndim == 4 else 1


def grid_image(images: np.ndarray, ncols: int | None = None, padding: int = 2, scale: int = 1) -> Image.Image:
    """Several images in [0, 1] (grey or colour, see `tile`) -> one tiled PIL image with a thin dark gutter."""
    return to_pil(tile(np.clip(np.asarray(images, dtype=np.float32), 0, 1), ncols, padding, background=0.15), scale)


def write_gif(path: str | Path, images: np.ndarray, scale: int = 1, frame_ms: int = 100,
              there_and_back: bool = False) -> int:
    """Writes images [N, H, W] or [N, H, W, 3] in [0, 1] as a looping GIF, atomically (a failed write keeps the old
    file); returns the number of frames. there_and_back plays the frames forth and back, so the loop
    has no jump from the last frame to the first."""
    stack = _as_stack(images)
    if len(stack) == 0:
        raise ValueError("cannot write an animation without frames")
    scale = check_scale(scale)
    order = list(range(len(stack)))
    if there_and_back:
        order += list(range(len(stack) - 2, 0, -1))
    check_picture_size(stack.shape[2] * scale, stack.shape[1] * scale, len(order), _channels(stack))
    frames = [to_pil(stack[i], scale) for i in order]
    atomic_write(Path(path), lambda tmp: frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:],
                                                        duration=max(1, int(frame_ms)), loop=0))
    return len(frames)


def write_picture(path: str | Path, image: Image.Image, format: str | None = None) -> None:
    """Saves a PIL image atomically: a full disk or Ctrl-C leaves an existing picture untouched.
    format: Pillow's name ("PNG", "GIF", ...); default: from the file's extension."""
    path = Path(path)
    format = format or Image.registered_extensions().get(path.suffix.lower())
    atomic_write(path, lambda tmp: image.save(tmp, format=format))
