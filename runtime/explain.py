"""What the explorers show to explain a model (torch-free, numpy): the encoder's uncertainty, the real
images nearest a latent point, and the landscape layers behind the map.

- `posterior_ellipses`, `posterior_samples`: the diagonal Gaussian posterior q(z|x) = N(mean, exp(logvar))
  of one image, as axis-aligned ellipses over the two shown dims and as seeded reparameterised draws.
- `NeighbourIndex`: exact k nearest atlas points in the full latent space, bucketed on a uniform grid over
  the two shown dims. The distance in those two dims never exceeds the full one, so a ring of cells is
  searched only while a point in it could still beat the k-th best: the answer is the brute-force one.
- `LayerGrid` and the layers: `prior_log_density`, `aggregate_log_density` (the mixture of the atlas'
  posteriors, the aggregate posterior q(z)), `decoder_entropy` (mean per-pixel Bernoulli entropy of a
  decode), `difference_image`. A layer is a [rows, cols] array, row 0 at the top (largest y), like
  runtime.latent.grid_points; dims other than the two shown are held at `base` (the slice through it).

web/app/js/explain.js mirrors this module function by function; tests/web/test_explain_parity.py runs both
on the same inputs in Chromium.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .latent import check_dims, grid_points
from .limits import MAX_POINTS
from .prior import LOG_2PI, logsumexp

# Points per grid cell the neighbour index aims at: a few, so the first 3 x 3 block of cells around a
# query usually holds the k = 8 answers and a query touches tens of points, not the whole atlas.
POINTS_PER_CELL = 4
# Cells per side of the neighbour grid, at most: beyond this the per-cell offsets cost more than they save.
MAX_INDEX_SIDE = 1024
# Relative slack of the ring search's stopping bound (see NeighbourIndex._bound).
BOUND_SLACK = 1e-9
# A mixture sum below this (after scaling by the row and column maxima) has lost its digits to underflow;
# such cells are summed again in the log domain, component by component.
UNDERFLOW = 1e-280
# Components per chunk of that exact fallback: bounds its [cells, chunk] temporary.
FALLBACK_CHUNK = 2048


def browser_constants() -> dict:
    """The constants web/app/js/explain.js takes from the site's config.json ("explain"), so it retypes none."""
    return {"points_per_cell": POINTS_PER_CELL, "max_index_side": MAX_INDEX_SIDE, "bound_slack": BOUND_SLACK,
            "underflow": UNDERFLOW, "max_layer_cells": MAX_POINTS}


def _vector(value, name: str, length: int | None = None) -> np.ndarray:
    array = np.asarray(value, np.float64)
    if array.ndim != 1 or (length is not None and len(array) != length) or not np.isfinite(array).all():
        expected = f"{length} finite numbers" if length is not None else "a vector of finite numbers"
        raise ValueError(f"{name} must be {expected}, got shape {list(array.shape)}")
    return array


def _posterior(mean, logvar) -> tuple[np.ndarray, np.ndarray]:
    mean = _vector(mean, "mean")
    return mean, _vector(logvar, "logvar", len(mean))


# --- uncertainty ------------------------------------------------------------------------------------

def posterior_ellipses(mean, logvar, dims: tuple[int, int] = (0, 1),
                       sigmas: tuple[float, ...] = (1, 2)) -> list[tuple[float, float, float, float]]:
    """(cx, cy, rx, ry) of the posterior's s-sigma ellipse over `dims` for each s in `sigmas`: centre at the
    mean, radii s * exp(logvar / 2). The posterior is diagonal, so the ellipses are axis-aligned."""
    mean, logvar = _posterior(mean, logvar)
    check_dims(tuple(dims), len(mean))
    std = np.exp(0.5 * logvar)
    i, j = dims
    return [(float(mean[i]), float(mean[j]), float(s * std[i]), float(s * std[j])) for s in sigmas]


def posterior_samples(mean, logvar, n: int, seed: int | None = 0) -> np.ndarray:
    """n draws of q(z|x) = N(mean, diag exp(logvar)), reparameterised (mean + std * eps, eps ~ N(0, I)
    from numpy's generator seeded with `seed`): float32 [n, D]."""
    mean, logvar = _posterior(mean, logvar)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_POINTS:
        raise ValueError(f"n must be an integer in [1, {MAX_POINTS}], got {n!r}")
    eps = np.random.default_rng(seed).standard_normal((int(n), len(mean)))
    return (mean + np.exp(0.5 * logvar) * eps).astype(np.float32)


# --- neighbours -------------------------------------------------------------------------------------

def grid_shape(width: float, height: float, count: int) -> tuple[int, int]:
    """(cols, rows) of the neighbour grid over a width x height box holding `count` points: square cells
    of about POINTS_PER_CELL points each, at most MAX_INDEX_SIDE per side, at least one."""
    cells = max(1, math.ceil(count / POINTS_PER_CELL))
    if width <= 0 and height <= 0:
        return 1, 1
    if height <= 0:
        return min(cells, MAX_INDEX_SIDE), 1
    if width <= 0:
        return 1, min(cells, MAX_INDEX_SIDE)
    cell = math.sqrt(width * height * POINTS_PER_CELL / max(count, 1))
    return min(MAX_INDEX_SIDE, max(1, math.ceil(width / cell))), min(MAX_INDEX_SIDE, max(1, math.ceil(height / cell)))


class NeighbourIndex:
    """Exact k nearest neighbours of atlas points [M, D] (Euclidean, all D dims), bucketed on a uniform
    grid over `dims`. Ties are broken by the lower index, so Python and JavaScript answer alike."""

    def __init__(self, points, dims: tuple[int, int] = (0, 1)):
        points = np.asarray(points, np.float64)
        if points.ndim != 2 or not np.isfinite(points).all():
            raise ValueError(f"points must be a [M, D] array of finite numbers, got shape {list(points.shape)}")
        check_dims(tuple(dims), points.shape[1])
        self.points, self.dims = points, (int(dims[0]), int(dims[1]))
        plane = points[:, list(self.dims)]
        self.low = plane.min(0) if len(points) else np.zeros(2)
        extent = (plane.max(0) - self.low) if len(points) else np.zeros(2)
        self.cols, self.rows = grid_shape(float(extent[0]), float(extent[1]), len(points))
        # A zero extent still gets a positive cell size (every point then lies in cell 0).
        self.cell = np.where(extent > 0, extent / np.array([self.cols, self.rows]), 1.0)
        col, row = self._cell(plane)
        order = np.lexsort((np.arange(len(points)), row * self.cols + col))
        self.order = order  # point indices, cell by cell (row-major), by index within a cell
        counts = np.bincount(row * self.cols + col, minlength=self.rows * self.cols)
        self.starts = np.concatenate([[0], np.cumsum(counts)])  # cell c holds order[starts[c]:starts[c + 1]]

    def _cell(self, plane: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(col, row) of each planar point, clamped into the grid."""
        index = np.floor((plane - self.low) / self.cell).astype(np.int64)
        return np.clip(index[..., 0], 0, self.cols - 1), np.clip(index[..., 1], 0, self.rows - 1)

    def _block(self, col: int, row: int, r: int) -> np.ndarray:
        """Indices of the points in the cells within r of (col, row), clipped to the grid."""
        lo, hi = max(col - r, 0), min(col + r, self.cols - 1)
        parts = [self.order[self.starts[y * self.cols + lo]: self.starts[y * self.cols + hi + 1]]
                 for y in range(max(row - r, 0), min(row + r, self.rows - 1) + 1)]
        return np.concatenate(parts)

    def _bound(self, z2: np.ndarray, col: int, row: int, r: int) -> float:
        """A lower bound of the planar distance from z2 to any cell outside the block; inf when the block
        covers the grid."""
        sides = []
        if col - r > 0:
            sides.append(z2[0] - (self.low[0] + (col - r) * self.cell[0]))
        if col + r < self.cols - 1:
            sides.append(self.low[0] + (col + r + 1) * self.cell[0] - z2[0])
        if row - r > 0:
            sides.append(z2[1] - (self.low[1] + (row - r) * self.cell[1]))
        if row + r < self.rows - 1:
            sides.append(self.low[1] + (row + r + 1) * self.cell[1] - z2[1])
        # Shrunk a hair: a point on a cell's edge may have been binned by a rounding to either side.
        return max(0.0, min(sides)) * (1 - BOUND_SLACK) if sides else math.inf

    def query(self, z, k: int = 8) -> tuple[np.ndarray, np.ndarray]:
        """(indices [k], distances [k]) of the k atlas points nearest z [D], nearest first (fewer when the
        atlas holds fewer)."""
        z = _vector(z, "z", self.points.shape[1])
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        k = min(int(k), len(self.points))
        if k == 0:
            return np.zeros(0, np.int64), np.zeros(0)
        z2 = z[list(self.dims)]
        col, row = (int(v) for v in self._cell(z2))
        r = 0
        while True:
            candidates = self._block(col, row, r)
            bound = self._bound(z2, col, row, r)
            if len(candidates) >= k:
                if len(candidates) == len(self.points):  # the whole atlas: skip the gather
                    candidates = np.arange(len(self.points))
                diff = (self.points if len(candidates) == len(self.points) else self.points[candidates]) - z
                squared = np.einsum("ij,ij->i", diff, diff)
                kth = np.partition(squared, k - 1)[k - 1] if len(squared) > k else squared.max()
                if kth <= bound * bound:
                    near = squared <= kth
                    candidates, squared = candidates[near], squared[near]
                    best = np.lexsort((candidates, squared))[:k]
                    return candidates[best], np.sqrt(squared[best])
            r = 2 * r if r else 1  # doubling: in many dims the planar bound is weak, and few passes beat many


# --- landscape layers -------------------------------------------------------------------------------

@dataclass(frozen=True)
class LayerGrid:
    """cols x rows cells over x_range x y_range of the two shown dims; a layer's value is taken at each
    cell's centre. Row 0 is the top (largest y)."""

    x_range: tuple[float, float]
    y_range: tuple[float, float]
    cols: int
    rows: int

    def __post_init__(self):
        for name in ("cols", "rows"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.cols * self.rows > MAX_POINTS:
            raise ValueError(f"a layer of {self.cols} x {self.rows} cells is above the limit of {MAX_POINTS:,}")
        for name in ("x_range", "y_range"):
            lo, hi = (float(v) for v in getattr(self, name))
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ValueError(f"{name} must be (low, high) with finite low < high, got {getattr(self, name)!r}")

    def xs(self) -> np.ndarray:
        """The cells' centres across, float64 [cols], left to right."""
        lo, hi = self.x_range
        return lo + (np.arange(self.cols) + 0.5) * ((hi - lo) / self.cols)

    def ys(self) -> np.ndarray:
        """The cells' centres up, float64 [rows], top row first (largest y)."""
        lo, hi = self.y_range
        return lo + (self.rows - 0.5 - np.arange(self.rows)) * ((hi - lo) / self.rows)

    def points(self, latent_dim: int, dims: tuple[int, int] = (0, 1), base=None) -> np.ndarray:
        """The cells' centres as latent points, float32 [rows * cols, D], row-major from the top row: what
        the entropy layer decodes."""
        return grid_points(self.xs(), self.ys()[::-1], latent_dim, dims, base)


def _base(base, latent_dim: int) -> np.ndarray:
    return np.zeros(latent_dim) if base is None else _vector(base, "base", latent_dim)


def _cell_points(grid: LayerGrid, latent_dim: int, dims, base) -> np.ndarray:
    """float64 [rows, cols, D] cell centres (float64 throughout, unlike the decoder's float32 points)."""
    check_dims(tuple(dims), latent_dim)
    z = np.broadcast_to(_base(base, latent_dim), (grid.rows, grid.cols, latent_dim)).copy()
    z[:, :, dims[0]] = grid.xs()[None, :]
    z[:, :, dims[1]] = grid.ys()[:, None]
    return z


def prior_log_density(prior, grid: LayerGrid, dims: tuple[int, int] = (0, 1), base=None) -> np.ndarray:
    """log p(z) of the bundle's prior (runtime.prior: N(0, I) or the fitted mixture) at each cell's centre,
    float64 [rows, cols]."""
    z = _cell_points(grid, prior.latent_dim, dims, base)
    return np.asarray(prior.log_prob(z.reshape(-1, prior.latent_dim)), np.float64).reshape(grid.rows, grid.cols)


def aggregate_log_density(means, logvars, grid: LayerGrid, dims: tuple[int, int] = (0, 1), base=None) -> np.ndarray:
    """log q(z) of the aggregate posterior q(z) = 1/M sum_m N(z; means[m], diag exp(logvars[m])) at each
    cell's centre, float64 [rows, cols].

    Each component is a product of a factor along x, one along y and a constant from the other dims, so the
    whole layer is one matrix product [rows, M] @ [M, cols] of factors scaled by their row and column
    maxima: every component counts, none is skipped. Cells where that product underflows (far from every
    point) are summed again exactly in the log domain."""
    means, logvars = np.asarray(means, np.float64), np.asarray(logvars, np.float64)
    if means.ndim != 2 or logvars.shape != means.shape or len(means) == 0:
        raise ValueError(f"means and logvars must be two [M, D] arrays with M >= 1, got shapes "
                         f"{list(means.shape)} and {list(logvars.shape)}")
    if not (np.isfinite(means).all() and np.isfinite(logvars).all()):
        raise ValueError("means and logvars must be finite")
    m, d = means.shape
    check_dims(tuple(dims), d)
    i, j = dims
    base = _base(base, d)
    inv_var = np.exp(-logvars)
    others = np.ones(d, bool)
    others[[i, j]] = False
    const = (-math.log(m) - 0.5 * (d * LOG_2PI + logvars.sum(1))
             - 0.5 * (((base - means)[:, others] ** 2) * inv_var[:, others]).sum(1))  # [M]
    xs, ys = grid.xs(), grid.ys()
    log_x = -0.5 * (xs[None, :] - means[:, i:i + 1]) ** 2 * inv_var[:, i:i + 1]  # [M, cols]
    log_y = const[:, None] - 0.5 * (ys[None, :] - means[:, j:j + 1]) ** 2 * inv_var[:, j:j + 1]  # [M, rows]
    top_x, top_y = log_x.max(0), log_y.max(0)
    scaled = np.exp(log_y - top_y).T @ np.exp(log_x - top_x)  # [rows, cols]
    with np.errstate(divide="ignore"):
        out = top_y[:, None] + top_x[None, :] + np.log(scaled)
    lost = scaled < UNDERFLOW
    if lost.any():
        rows, cols = np.nonzero(lost)
        parts = [logsumexp(log_y[s:s + FALLBACK_CHUNK, rows] + log_x[s:s + FALLBACK_CHUNK, cols], axis=0)
                 for s in range(0, m, FALLBACK_CHUNK)]
        out[rows, cols] = logsumexp(np.stack(parts), axis=0)
    return out


def decoder_entropy(images) -> np.ndarray:
    """Mean per-pixel Bernoulli entropy in nats of each decoded image (values in [0, 1], any shape after the
    first axis; a colour image's channels count as pixels): float64 [N]. 0 where the decoder draws every
    pixel fully on or off, log 2 where it draws 0.5 everywhere."""
    p = np.clip(np.asarray(images, np.float64), 0.0, 1.0)
    if p.ndim < 2 or p.shape[0] == 0 or p[0].size == 0:
        raise ValueError(f"images must be [N, ...] with N >= 1 pixels each, got shape {list(p.shape)}")
    if not np.isfinite(p).all():
        raise ValueError("images must be finite")
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(np.where(p > 0, p * np.log(p), 0.0) + np.where(p < 1, (1 - p) * np.log1p(-p), 0.0))
    return h.reshape(len(p), -1).mean(1)


def difference_image(a, b) -> np.ndarray:
    """a - b of two decodes of the same shape (values in [0, 1]): float32 in [-1, 1], what the compare view
    draws with the diverging colour map."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    if a.shape != b.shape:
        raise ValueError(f"the two images must have the same shape, got {list(a.shape)} and {list(b.shape)}")
    return np.clip(a - b, -1.0, 1.0)
