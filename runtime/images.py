"""Turning model outputs into pictures: float images in [0, 1] -> uint8 arrays, tiled grids, PIL images.

Torch-free: the trainer's plots, the runtime and the explorer all draw through these functions.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image


def to_uint8(images: np.ndarray) -> np.ndarray:
    """[..., H, W] floats in [0, 1] (values outside are clipped) -> uint8 of the same shape."""
    images = np.asarray(images, dtype=np.float32)
    return (np.clip(images, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _as_stack(images: np.ndarray) -> np.ndarray:
    """Accepts [H, W], [N, H, W] or [N, 1, H, W]; returns [N, H, W]."""
    images = np.asarray(images)
    if images.ndim == 2:
        return images[None]
    if images.ndim == 4 and images.shape[1] == 1:
        return images[:, 0]
    if images.ndim == 3:
        return images
    raise ValueError(f"expected images shaped [H, W], [N, H, W] or [N, 1, H, W], got {images.shape}")


def tile(images: np.ndarray, ncols: int | None = None, padding: int = 0, background: float = 0.0) -> np.ndarray:
    """Lays N images out row by row on a grid (square by default): [N, (1,) H, W] -> [rows*H', ncols*W']."""
    stack = _as_stack(images)
    n, h, w = stack.shape
    if n == 0:
        raise ValueError("cannot tile an empty set of images")
    ncols = ncols or math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    out = np.full((nrows * (h + padding) + padding, ncols * (w + padding) + padding), background, dtype=stack.dtype)
    for i, image in enumerate(stack):
        r, c = divmod(i, ncols)
        top, left = padding + r * (h + padding), padding + c * (w + padding)
        out[top:top + h, left:left + w] = image
    return out


def to_pil(image: np.ndarray, scale: int = 1) -> Image.Image:
    """One grey image in [0, 1] ([H, W] or [1, H, W]) -> a PIL 'L' image, upscaled by nearest
    neighbour so pixels stay crisp."""
    image = _as_stack(image)
    if image.shape[0] != 1:
        raise ValueError(f"to_pil takes one image; got {image.shape[0]} (use grid_image for several)")
    pil = Image.fromarray(to_uint8(image[0]))
    if scale != 1:
        pil = pil.resize((pil.width * scale, pil.height * scale), Image.Resampling.NEAREST)
    return pil


def grid_image(images: np.ndarray, ncols: int | None = None, padding: int = 2, scale: int = 1) -> Image.Image:
    """Several grey images in [0, 1] -> one tiled PIL image with a thin dark gutter."""
    return to_pil(tile(np.clip(np.asarray(images, dtype=np.float32), 0, 1), ncols, padding, background=0.15), scale)
