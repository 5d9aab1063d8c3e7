"""Sprites: a procedural colour data set in the manner of dSprites (Matthey, Higgins, Hassabis & Lerchner
2017, https://github.com/deepmind/dsprites-dataset), for the image shapes beyond MNIST's.

Each image is one filled shape on black, drawn from six known, independent factors:

    shape     square, ellipse, triangle or heart (also the image's label)
    hue       the colour's hue in [0, 1), at full saturation and brightness
    scale     the shape's size, 0.5 to 1 of the largest (whose outline reaches a quarter of the image's side)
    rotation  radians, over the shape's own symmetry period (a square's quarter turn, an ellipse's half, a
              triangle's third, a heart's full turn): every value is a different picture
    x, y      the shape's centre as a fraction of the image's width and height, 0.29 to 0.71, so every
              shape is whole whatever its scale and rotation

each uniform, from numpy's PCG64 seeded with `seed`: the same (count, size, seed) always gives the
same file. `centred` puts every shape at the image's centre (x = y = 0.5): position is the factor that
moves the most pixels, so a 2-D latent spends itself on it; held fixed, the map sorts shape and colour. Shapes are filled at 4 times the size and averaged down, so their edges are antialiased.

`write_sprites` saves an .npz that `--dataset PATH` reads as it reads any other (train/sources.py):
`images` uint8 [N, size, size, 3], `labels` int32 [N] (the shape) and `class_names`, plus `factors`
float32 [N, 6] and `factor_names`, the six factors above in that order, for colouring a map by any of
them. Torch-free (numpy and Pillow), so `latent-atlas make-dataset` runs on the plain install.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from latent_atlas.runtime.files import atomic_write
from latent_atlas.runtime.limits import MAX_GENERATED_BYTES

from .family import architecture

SHAPES = ("square", "ellipse", "triangle", "heart")
FACTOR_NAMES = ("shape", "hue", "scale", "rotation", "x", "y")
FILE_NAME = "sprites.npz"
DEFAULT_COUNT = 20_000
DEFAULT_SIZE = 64
DEFAULT_SEED = 0
CHANNELS = 3
SCALE_RANGE = (0.5, 1.0)
# The largest outline reaches MAX_RADIUS x the side from its centre, and centres keep that far from every
# edge and a margin more (over a pixel at 28 x 28), so no sprite is ever cut off or touches the border.
MAX_RADIUS = 0.25
MARGIN = 0.04
POSITION_RANGE = (MAX_RADIUS + MARGIN, 1.0 - MAX_RADIUS - MARGIN)
SUPERSAMPLE = 4  # drawn at this multiple of the size, then box-filtered down: antialiased edges
_OUTLINE_POINTS = 96  # vertices of the curved outlines (ellipse, heart): smooth at 4 x 256 pixels


def _ellipse() -> np.ndarray:
    t = np.linspace(0.0, 2 * math.pi, _OUTLINE_POINTS, endpoint=False)
    return np.stack([np.cos(t), 0.5 * np.sin(t)], axis=1)


def _regular(sides: int, phase: float) -> np.ndarray:
    t = phase + np.arange(sides) * 2 * math.pi / sides
    return np.stack([np.cos(t), np.sin(t)], axis=1)


def _heart() -> np.ndarray:
    """The classic heart curve (x = 16 sin^3 t, y = 13 cos t - 5 cos 2t - 2 cos 3t - cos 4t), centred on its
    bounding box and scaled to reach 1."""
    t = np.linspace(0.0, 2 * math.pi, _OUTLINE_POINTS, endpoint=False)
    points = np.stack([16 * np.sin(t) ** 3, 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)], 1)
    points -= (points.max(0) + points.min(0)) / 2
    return points / np.linalg.norm(points, axis=1).max()


# Unit outlines (farthest point at distance 1 from the centre, y up) and the rotation that maps each onto
# itself: rotations are drawn below it.
OUTLINES = {"square": _regular(4, math.pi / 4), "ellipse": _ellipse(), "triangle": _regular(3, math.pi / 2),
            "heart": _heart()}
SYMMETRY = {"square": math.pi / 2, "ellipse": math.pi, "triangle": 2 * math.pi / 3, "heart": 2 * math.pi}


@dataclass(frozen=True)
class Sprites:
    images: np.ndarray  # uint8 [N, size, size, 3]
    factors: np.ndarray  # float32 [N, 6], columns FACTOR_NAMES

    @property
    def labels(self) -> np.ndarray:
        return self.factors[:, 0].astype(np.int32)

    def arrays(self) -> dict[str, np.ndarray]:
        """What the .npz holds, under the names train/sources.py reads (and the factors beside them)."""
        return {"images": self.images, "labels": self.labels, "class_names": np.array(SHAPES),
                "factors": self.factors, "factor_names": np.array(FACTOR_NAMES)}


def check_request(count: int, size: int, seed: int) -> None:
    """ValueError in one line unless the model family supports size x size colour images and the set fits the
    memory limit."""
    if count < 1:
        raise ValueError(f"--count {count}: expected at least 1 image")
    if seed < 0:
        raise ValueError(f"--seed {seed}: expected a non-negative integer")
    try:
        architecture((CHANNELS, size, size))
    except ValueError as exc:
        raise ValueError(f"--size {size}: {exc}") from None
    needed = count * size * size * CHANNELS
    if needed > MAX_GENERATED_BYTES:
        raise ValueError(f"--count {count} at --size {size} is {needed / 2**30:.1f} GiB of pixels, more than the "
                         f"{MAX_GENERATED_BYTES / 2**30:.0f} GiB limit; expected at most "
                         f"{MAX_GENERATED_BYTES // (size * size * CHANNELS):,} images of that size")


def _between(u: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
    return bounds[0] + u * (bounds[1] - bounds[0])


def draw_factors(count: int, seed: int, centred: bool = False) -> np.ndarray:
    """float32 [count, 6]: each image's factors (columns FACTOR_NAMES), uniform and independent (x = y = 0.5
    if `centred`). One row of uniforms per image, so a larger count keeps the smaller one's images as its
    first ones."""
    u = np.random.default_rng(seed).random((count, len(FACTOR_NAMES)))
    shape = np.minimum((u[:, 0] * len(SHAPES)).astype(int), len(SHAPES) - 1)
    rotation = u[:, 3] * np.array([SYMMETRY[name] for name in SHAPES])[shape]
    x, y = (np.full(count, 0.5) if centred else _between(u[:, i], POSITION_RANGE) for i in (4, 5))
    columns = [shape, u[:, 1], _between(u[:, 2], SCALE_RANGE), rotation, x, y]
    return np.stack(columns, axis=1).astype(np.float32)


def hue_colour(hue: float) -> tuple[int, int, int]:
    """The 8-bit RGB a sprite of this hue is filled with: full saturation and brightness."""
    return tuple(round(255 * c) for c in colorsys.hsv_to_rgb(float(hue), 1.0, 1.0))


def render(factors: np.ndarray, size: int) -> np.ndarray:
    """uint8 [N, size, size, 3]: one sprite per row of `factors`."""
    images = np.zeros((len(factors), size, size, CHANNELS), np.uint8)
    big = size * SUPERSAMPLE
    for i, (shape, hue, scale, rotation, x, y) in enumerate(factors.astype(np.float64)):
        cos, sin = math.cos(rotation), math.sin(rotation)
        outline = OUTLINES[SHAPES[int(shape)]] @ np.array([[cos, sin], [-sin, cos]])  # counter-clockwise
        radius = scale * MAX_RADIUS * big
        # Pixel (column, row) coordinates, pixel i covering [i, i + 1): the outline's y points up, rows go down.
        points = np.stack([x * big + radius * outline[:, 0], y * big - radius * outline[:, 1]], axis=1)
        colour = hue_colour(hue)
        canvas = Image.new("RGB", (big, big))
        ImageDraw.Draw(canvas).polygon([tuple(p) for p in points.tolist()], fill=colour)
        images[i] = np.asarray(canvas.resize((size, size), Image.Resampling.BOX))
    return images


def make_sprites(count: int = DEFAULT_COUNT, size: int = DEFAULT_SIZE, seed: int = DEFAULT_SEED,
                 centred: bool = False) -> Sprites:
    check_request(count, size, seed)
    factors = draw_factors(count, seed, centred)
    return Sprites(render(factors, size), factors)


def write_sprites(out_dir: str | Path, count: int = DEFAULT_COUNT, size: int = DEFAULT_SIZE,
                  seed: int = DEFAULT_SEED, centred: bool = False) -> Path:
    """Writes OUT_DIR/sprites.npz and returns its path. An existing file is never replaced."""
    path = Path(out_dir).expanduser() / FILE_NAME
    if path.exists():
        raise FileExistsError(f"{path} exists; expected a folder without {FILE_NAME}: remove it or choose "
                              f"another --out")
    check_request(count, size, seed)  # before the folder is created
    sprites = make_sprites(count, size, seed, centred)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: given a name, numpy would add its own .npz suffix
            np.savez_compressed(f, **sprites.arrays())

    atomic_write(path, write)
    return path
