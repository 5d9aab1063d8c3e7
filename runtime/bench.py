"""Latency and throughput measurements, shared by `latent-atlas bench` and benchmarks/runtime_latency.py."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

GRID_SIDE = 30
THROUGHPUT_BATCH = 256


def timings(call: Callable[[], object], repeats: int, warmup: int = 20) -> np.ndarray:
    """Wall time of each of `repeats` calls, in seconds, after `warmup` untimed calls."""
    for _ in range(warmup):
        call()
    clock = time.perf_counter
    out = np.empty(repeats, dtype=np.float64)
    for i in range(repeats):
        start = clock()
        call()
        out[i] = clock() - start
    return out


def quantiles_us(seconds: np.ndarray) -> dict[str, float]:
    return {"p50_us": float(np.percentile(seconds, 50) * 1e6), "p99_us": float(np.percentile(seconds, 99) * 1e6)}


def measure(model, repeats: int = 2000) -> dict[str, float]:
    """The figures `latent-atlas bench` prints for a loaded LatentModel (CPU time on this machine)."""
    rng = np.random.default_rng(0)
    point = rng.standard_normal((1, model.latent_dim)).astype(np.float32)
    grid = rng.standard_normal((GRID_SIDE * GRID_SIDE, model.latent_dim)).astype(np.float32)
    batch = rng.standard_normal((THROUGHPUT_BATCH, model.latent_dim)).astype(np.float32)
    image = model.decode(point)
    single = timings(lambda: model.decode(point), repeats)
    grid_s = timings(lambda: model.decode(grid), max(5, repeats // 200), warmup=2)
    batch_s = timings(lambda: model.decode(batch), max(5, repeats // 200), warmup=2)
    encode_s = timings(lambda: model.encode(image), max(50, repeats // 4))
    return {
        "decode_p50_us": quantiles_us(single)["p50_us"],
        "decode_p99_us": quantiles_us(single)["p99_us"],
        "grid_30x30_ms": float(np.median(grid_s) * 1e3),
        "decode_images_per_s": float(THROUGHPUT_BATCH / np.median(batch_s)),
        "encode_p50_us": quantiles_us(encode_s)["p50_us"],
    }
