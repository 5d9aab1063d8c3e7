"""Latent-space geometry shared by the trainer's plots, the runtime and the explorer (torch-free)."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

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


def grid_points(xs: np.ndarray, ys: np.ndarray, latent_dim: int = 2, dims: tuple[int, int] = (0, 1),
                base: np.ndarray | None = None) -> np.ndarray:
    """Latent points of a len(ys) x len(xs) grid, row-major, top row first.

    The top row takes the largest y, so the picture is oriented like a scatter plot of the latent
    plane (y up). Dims other than `dims` are held at `base` (zeros, the prior mean, by default)."""
    if len(dims) != 2 or dims[0] == dims[1] or not all(0 <= d < latent_dim for d in dims):
        raise ValueError(f"dims must be two different latent dims in [0, {latent_dim}), got {dims}")
    z = np.zeros((len(ys), len(xs), latent_dim), dtype=np.float32)
    if base is not None:
        base = np.asarray(base, dtype=np.float32)
        if base.shape != (latent_dim,):
            raise ValueError(f"base must have shape ({latent_dim},), got {base.shape}")
        z[:] = base
    z[:, :, dims[0]] = np.asarray(xs, dtype=np.float32)[None, :]
    z[:, :, dims[1]] = np.asarray(ys, dtype=np.float32)[::-1, None]
    return z.reshape(-1, latent_dim)
