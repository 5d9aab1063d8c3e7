"""Writing what the explorer shows to files: PNGs of the preview, the grid, the interpolation strip,
and the interpolation as an animated GIF. Pixels are upscaled by nearest neighbour so they stay crisp."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from latent_atlas.runtime.images import grid_image, to_pil

PREVIEW_SCALE = 10
GRID_SCALE = 2
STRIP_SCALE = 4
GIF_SCALE = 8
GIF_FRAME_MS = 80


def _target(path: str | Path, suffixes: tuple[str, ...]) -> Path:
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise ValueError(f"{path.name}: expected a file name ending in {' or '.join(suffixes)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def save_image(image: np.ndarray, path: str | Path, scale: int = PREVIEW_SCALE) -> Path:
    path = _target(path, (".png",))
    to_pil(image, scale=scale).save(path)
    return path


def save_grid(images: np.ndarray, n: int, path: str | Path, scale: int = GRID_SCALE) -> Path:
    path = _target(path, (".png",))
    grid_image(images, ncols=n, padding=0, scale=scale).save(path)
    return path


def save_frames(frames: np.ndarray, path: str | Path) -> Path:
    """An interpolation: a one-row PNG strip, or a looping GIF when the name ends in .gif."""
    path = _target(path, (".png", ".gif"))
    if path.suffix.lower() == ".png":
        grid_image(frames, ncols=len(frames), padding=2, scale=STRIP_SCALE).save(path)
        return path
    # Forth and back, so the loop has no jump from the last frame to the first.
    order = list(range(len(frames))) + list(range(len(frames) - 2, 0, -1))
    pictures = [to_pil(frames[i], scale=GIF_SCALE) for i in order]
    pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=GIF_FRAME_MS, loop=0)
    return path
