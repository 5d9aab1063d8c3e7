"""Latent-space geometry shared by the trainer's plots, the runtime and the explorer (torch-free)."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

from .limits import MAX_GRID_SIDE, SEED_IMAGE_VALUES, max_points
from .options import INTERPOLATION_METHODS

# The Keras original spans its manifold over these quantiles of N(0, 1): the prior's central 90 %.
DEFAULT_QUANTILES = (0.05, 0.95)


def normal_quantiles(n: int, low: float = DEFAULT_QUANTILES[0], high: float = DEFAULT_QUANTILES[1]) -> np.ndarray:
    """n points of N(0, 1) at evenly spaced probabilities in [low, high] (scipy's norm.ppf, without scipy)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not 0.0 < low <= high < 1.0:
        raise ValueError(f"quantiles must satisfy 0 < low <= high < 1, got {low}, {high}")
    ppf = NormalDist().inv_cdf
    return np.array([ppf(p) for p in np.linspace(low, high, n)], dtype=np.float32)


def check_dims(dims: tuple[int, int], latent_dim: int) -> None:
    """Raises ValueError unless dims names two different latent dims."""
    if len(dims) != 2 or dims[0] == dims[1] or not all(0 <= d < latent_dim for d in dims):
        raise ValueError(f"dims must be two different latent dims in [0, {latent_dim}), got {dims}")


def grid_points(xs: np.ndarray, ys: np.ndarray, latent_dim: int = 2, dims: tuple[int, int] = (0, 1),
                base: np.ndarray | None = None) -> np.ndarray:
    """Latent points of a len(ys) x len(xs) grid, row-major, top row first.

    The top row takes the largest y, so the picture is oriented like a scatter plot of the latent
    plane (y up). Dims other than `dims` are held at `base` (zeros, the prior mean, by default)."""
    check_dims(dims, latent_dim)
    z = np.zeros((len(ys), len(xs), latent_dim), dtype=np.float32)
    if base is not None:
        base = np.asarray(base, dtype=np.float32)
        if base.shape != (latent_dim,):
            raise ValueError(f"base must have shape ({latent_dim},), got {base.shape}")
        z[:] = base
    z[:, :, dims[0]] = np.asarray(xs, dtype=np.float32)[None, :]
    z[:, :, dims[1]] = np.asarray(ys, dtype=np.float32)[::-1, None]
    return z.reshape(-1, latent_dim)


# ---------------------------------------------------------------------------------------------------
# Paths and grids for the runtime (decode them to get pictures)



def check_count(n: int, what: str, limit: int | None = None, image_values: int = SEED_IMAGE_VALUES) -> int:
    """Refuses a count above `limit` (default: limits.max_points for images of `image_values` values,
    channels x height x width), saying why; the caller has checked it is a positive integer."""
    limit = max_points(image_values) if limit is None else limit
    if n > limit:
        most = max_points(image_values)
        raise ValueError(f"{what} is {n:,}, above the limit of {limit:,}: every point is decoded into an image of "
                         f"{image_values:,} float32 values ({image_values * 4 / 1024:.0f} kB), and {most:,} of them "
                         f"take about {most * image_values * 4 / 2**20:.0f} MB")
    return int(n)


def interpolation_path(a: np.ndarray, b: np.ndarray, steps: int, method: str = "linear",
                       image_values: int = SEED_IMAGE_VALUES) -> np.ndarray:
    """`steps` latent points from a to b, both ends included: float32 [steps, D].

    "slerp" moves the direction along the great circle from a to b (Shoemake 1985; White, "Sampling
    Generative Networks", 2016) and the length linearly from |a| to |b|, so the path keeps a typical
    distance from the origin under a Gaussian prior instead of cutting through its low-density
    centre. For endpoints of equal length this is exactly White's slerp; unlike his formula applied
    to unequal lengths, it cannot overshoot near antiparallel endpoints. Where a or b is zero, or they
    are (anti)parallel, the circle is undefined and the path is linear."""
    if method not in INTERPOLATION_METHODS:
        raise ValueError(f"method must be one of {', '.join(INTERPOLATION_METHODS)}, got {method!r}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 2:
        raise ValueError(f"steps must be an integer >= 2 (the path includes both ends), got {steps!r}")
    check_count(steps, "steps", image_values=image_values)
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"expected two latent vectors of the same length, got shapes {a.shape} and {b.shape}")
    t = np.linspace(0.0, 1.0, int(steps))[:, None]
    if method == "slerp":
        length_a, length_b = np.linalg.norm(a), np.linalg.norm(b)
        if length_a > 0 and length_b > 0:
            unit_a, unit_b = a / length_a, b / length_b
            omega = np.arccos(np.clip(np.dot(unit_a, unit_b), -1.0, 1.0))
            sin_omega = np.sin(omega)
            if sin_omega > 1e-6:
                direction = (np.sin((1.0 - t) * omega) * unit_a + np.sin(t * omega) * unit_b) / sin_omega
                return (direction * ((1.0 - t) * length_a + t * length_b)).astype(np.float32)
    return ((1.0 - t) * a + t * b).astype(np.float32)


# Which of the bundle's per-dim percentiles "percentiles" spans: the central 90 %, the same share of
# the encoded test set as the default grid covers of the prior.
PERCENTILE_EXTENT = ("p05", "p95")


def manifold_axes(n: int, extent=None, dims: tuple[int, int] = (0, 1),
                  latent_stats: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The x and y values of an n x n latent grid over dims (dims[0] across, dims[1] up).

    extent None: the prior's 0.05..0.95 normal quantiles, as the Keras original draws it.
    extent "percentiles": evenly spaced from the bundle's p05 to p95 of each dim (needs latent_stats).
    extent ((xmin, xmax), (ymin, ymax)): evenly spaced over those bounds."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer (points per side), got {n!r}")
    check_count(n, "n (points per side)", MAX_GRID_SIDE)
    if extent is None:
        axis = normal_quantiles(int(n))
        return axis, axis.copy()
    if isinstance(extent, str):
        if extent != "percentiles":
            raise ValueError(f"extent must be None, 'percentiles' or ((xmin, xmax), (ymin, ymax)), got {extent!r}")
        if not latent_stats:
            raise ValueError("extent='percentiles' needs the model's latent_stats, which this model does not carry")
        low, high = (np.asarray(latent_stats[key], dtype=np.float64) for key in PERCENTILE_EXTENT)
        bounds = [(low[d], high[d]) for d in dims]
    else:
        try:
            bounds = np.asarray(extent, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"extent must be ((xmin, xmax), (ymin, ymax)), got {extent!r}") from exc
        if bounds.shape != (2, 2) or not np.isfinite(bounds).all():
            raise ValueError(f"extent must be ((xmin, xmax), (ymin, ymax)) of finite numbers, got {extent!r}")
    xs, ys = (np.linspace(lo, hi, int(n)).astype(np.float32) for lo, hi in bounds)
    return xs, ys
