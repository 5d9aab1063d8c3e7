"""Fixtures for "your own images": letters rendered from the fonts the system has, a real,
non-trivial dataset built by the tests themselves.

Each picture is one capital letter in one of several fonts and sizes, at a small random angle and
offset, on a canvas of a random size, with noise; dark ink on light paper or the other way round.
"""

from __future__ import annotations

import functools
import glob
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

LETTERS = "ACEHKMOSTX"
FONT_GLOBS = ("/usr/share/fonts/truetype/dejavu/DejaVu*.ttf", "/usr/share/fonts/**/*.ttf")


def system_fonts(limit: int = 8) -> list[str]:
    """Up to `limit` TrueType fonts of the system, spread over its families (fonts-dejavu-core on Debian)."""
    for pattern in FONT_GLOBS:
        found = sorted(p for p in glob.glob(pattern, recursive=True) if "Math" not in p)
        if found:
            step = max(1, len(found) // limit)
            return found[::step][:limit]
    return []


@functools.lru_cache(maxsize=None)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def render(letter: str, font_path: str, rng: np.random.Generator) -> Image.Image:
    """One letter: a font size of 24 to 56 px on a 48 to 96 px canvas, rotated up to 12 degrees, noisy."""
    side = int(rng.integers(48, 97))
    size = int(rng.integers(24, min(57, side - 4)))
    font = _font(font_path, size)
    dark_ink = rng.random() < 0.7
    paper, ink = (235, 20) if dark_ink else (15, 230)
    canvas = Image.new("L", (side * 2, side * 2), paper)
    ImageDraw.Draw(canvas).text((side, side), letter, fill=ink, font=font, anchor="mm")
    canvas = canvas.rotate(float(rng.uniform(-12, 12)), resample=Image.Resampling.BICUBIC, fillcolor=paper)
    dx, dy = rng.integers(-side // 8, side // 8 + 1, size=2)
    canvas = canvas.crop((side // 2 + dx, side // 2 + dy, side // 2 + dx + side, side // 2 + dy + side))
    pixels = np.asarray(canvas, np.float32) + rng.normal(0.0, 10.0, (side, side))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def write_letters(root: Path, per_class: int, seed: int = 0, letters: str = LETTERS) -> Path:
    """`per_class` renderings of each letter as PNG files in one folder per letter, under root."""
    fonts = system_fonts()
    rng = np.random.default_rng(seed)
    for letter in letters:
        folder = root / letter
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            render(letter, fonts[i % len(fonts)], rng).save(folder / f"{letter}-{i:05d}.png")
    return root


@pytest.fixture(scope="session")
def fonts() -> list[str]:
    found = system_fonts()
    if not found:
        pytest.fail("no TrueType fonts found (expected fonts-dejavu-core); run scripts/install-system-deps.sh")
    return found


@pytest.fixture(scope="session")
def make_letters(fonts):
    """write_letters, after checking that the system has fonts."""
    return write_letters


@pytest.fixture(scope="session")
def render_letter(fonts):
    """render(letter, index, rng): one new rendering in the index-th font."""
    return lambda letter, index, rng: render(letter, fonts[index % len(fonts)], rng)
