"""Rasterising the scatter of ten thousand points with numpy.

QPainter needs one Python QPointF per point and draws antialiased round dots one by one, a cost paid
on every pan or zoom. Here each dot is a small soft disc stamped with whole-array operations, several
times faster for the same picture (docs/benchmarks.md).
"""

from __future__ import annotations

import numpy as np


def disc_kernel(radius: float) -> list[tuple[int, int, float]]:
    """(dx, dy, coverage) of the pixels a disc of `radius` centred on a pixel covers, edges antialiased."""
    reach = int(np.ceil(radius + 0.5))
    kernel = []
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            coverage = float(np.clip(radius + 0.5 - np.hypot(dx, dy), 0.0, 1.0))
            if coverage > 0:
                kernel.append((dx, dy, coverage))
    return kernel


def splat(xs: np.ndarray, ys: np.ndarray, colours: np.ndarray, size: tuple[int, int],
          background: tuple[int, int, int] | np.ndarray, radius: float = 1.6, alpha: float = 0.8) -> np.ndarray:
    """Draws dots at pixel positions (xs, ys) in colours [N, 3] (uint8) over `background`: one RGB colour,
    or a picture uint8 [height, width, 3] to draw on (a background layer; it is not modified).

    Returns an RGB image uint8 [height, width, 3]. Dots are drawn in the given order, so a later dot
    covers an earlier one: shuffle the points beforehand to keep one class from hiding another."""
    width, height = size
    kernel = disc_kernel(radius)
    reach = max(max(abs(dx), abs(dy)) for dx, dy, _ in kernel)
    xi, yi = np.rint(xs).astype(np.int64), np.rint(ys).astype(np.int64)
    # Dots whose centre is within `reach` of the edge are left out: every stamp then stays inside, and
    # one flat index per dot, shifted per kernel pixel, replaces per-pixel bounds checks.
    inside = (xi >= reach) & (xi < width - reach) & (yi >= reach) & (yi < height - reach)
    base = yi[inside] * width + xi[inside]
    colours = colours[inside].astype(np.float32)
    # The canvas stays uint8: float arithmetic on the whole picture would cost more than the dots.
    canvas = np.empty((height * width, 3), np.uint8)
    canvas[:] = np.reshape(background, (-1, 3))
    for dx, dy, coverage in kernel:
        index = base + (dy * width + dx)
        weight = np.float32(alpha * coverage)
        canvas[index] = canvas[index] * (1 - weight) + colours * weight + 0.5
    return canvas.reshape(height, width, 3)
