"""Writing what the explorer shows to files: PNGs of the preview, the grid, the interpolation strip,
and the interpolation as an animated GIF. Pixels are upscaled by nearest neighbour so they stay crisp."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from latent_atlas.runtime.images import grid_image, to_pil, write_gif, write_picture

PREVIEW_SCALE = 10
GRID_SCALE = 2
STRIP_SCALE = 4
GIF_SCALE = 8
GIF_FRAME_MS = 80


def _target(path: str | Path, suffixes: tuple[str, ...]) -> Path:
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise ValueError(f"{path.name}: expected a file name ending in {' or '.join(suffixes)}")
    return path


def save_image(image: np.ndarray, path: str | Path, scale: int = PREVIEW_SCALE) -> Path:
    path = _target(path, (".png",))
    write_picture(path, to_pil(image, scale=scale))
    return path


def save_grid(images: np.ndarray, n: int, path: str | Path, scale: int = GRID_SCALE) -> Path:
    path = _target(path, (".png",))
    write_picture(path, grid_image(images, ncols=n, padding=0, scale=scale))
    return path


def save_frames(frames: np.ndarray, path: str | Path) -> Path:
    """An interpolation: a one-row PNG strip, or a looping GIF when the name ends in .gif."""
    path = _target(path, (".png", ".gif"))
    if path.suffix.lower() == ".png":
        write_picture(path, grid_image(frames, ncols=len(frames), padding=2, scale=STRIP_SCALE))
        return path
    write_gif(path, frames, scale=GIF_SCALE, frame_ms=GIF_FRAME_MS, there_and_back=True)
    return path
