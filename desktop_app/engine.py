"""The one narrow interface between the explorer and the runtime.

Everything numerical the app does (decode, encode, sampling, interpolation, manifolds, image
preprocessing) is a call on the `latent_atlas.runtime` model an `Engine` holds (`engine.model`); the
engine itself adds only what the explorer needs beyond the runtime.

Images travel through the app in the runtime's display layout, float32 in [0, 1]: grey [H, W] (one) or
[N, H, W] (several), colour [H, W, 3] or [N, H, W, 3], at the model's own size (its bundle's image_shape).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latent_atlas import runtime
from latent_atlas.runtime import bundle as bundle_format
from latent_atlas.runtime.explorer_rules import VIEW_PERCENTILES


SESSION_THREADS = 1


def bundled_names() -> list[str]:
    return bundle_format.bundled_names()


# Listed by onnxruntime as available, but it sends requests to a cloud endpoint rather than running
# the model here; offering it would only confuse.
REMOTE_PROVIDERS = {"AzureExecutionProvider"}


def available_providers() -> list[str]:
    """Execution providers that can run a model on this machine, best first."""
    return [p for p in runtime.available_providers() if p not in REMOTE_PROVIDERS]


@dataclass(frozen=True)
class Encoding:
    """One image run through the encoder: what the network saw, where it landed, what comes back."""
    name: str
    image: np.ndarray           # the preprocessed input, [H, W] or [H, W, 3]
    z: np.ndarray               # the posterior mean, [D]
    reconstruction: np.ndarray  # decode(z), shaped like image


@dataclass(frozen=True)
class Interpolation:
    path: np.ndarray    # [steps, D]
    frames: np.ndarray  # [steps, H, W] or [steps, H, W, 3]
    method: str


class Engine:
    """A runtime model as the explorer uses it: `engine.model` is the `runtime.LatentModel`, and callers use
    it directly for everything it does (name, latent size, classes, statistics, sampling, manifolds). The
    engine adds only what the explorer needs beyond it: the thread policy it is opened with, the source it
    is remembered by, timed decodes for the status bar, an absent atlas as an empty map, and the records
    of an encoding and an interpolation that the panels show."""

    def __init__(self, model: runtime.LatentModel, source: str):
        self.model = model
        # What the user asked for ("mnist" or a directory): the key for recents and settings.
        self.source = source
        self.last_decode_ms = 0.0

    @classmethod
    def open(cls, bundle: str | Path, provider: str = "auto", verify: bool = True) -> "Engine":
        """Loads a bundled model by name or a bundle directory; raises ValueError (incl. BundleError).
        verify=False skips the files' SHA-256 check (bundles edited on purpose)."""
        source = str(bundle)
        # One CPU thread per session: a single-point decode is too small to split, and a second ONNX
        # Runtime thread only waits for a core, which on a busy machine made rare hover decodes many
        # times slower (docs/benchmarks.md). The grid runs on its own worker thread, no slower.
        return cls(runtime.load(source, providers=provider, threads=SESSION_THREADS, verify=verify), source)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """The model's images as channels x height x width (its bundle's image_shape)."""
        return tuple(int(v) for v in self.model.bundle.manifest.image_shape)

    @property
    def grey(self) -> bool:
        """One channel: the draw pad (white ink on black) can stand in for an image."""
        return self.image_shape[0] == 1

    def atlas(self) -> tuple[np.ndarray, np.ndarray]:
        """The test set's posterior means [M, D] and labels [M]; read once. An absent atlas is an empty one."""
        if not self.model.bundle.atlas_path.is_file():  # optional in the bundle format: an empty map, not an error
            return np.zeros((0, self.model.latent_dim), np.float32), np.zeros(0, np.uint8)
        return self.model.atlas()

    def percentile_extent(self, dims: tuple[int, int]) -> tuple[tuple[float, float], tuple[float, float]]:
        """The VIEW_PERCENTILES box of the test set's means along two dims: a view that shows nearly every point."""
        stats = self.model.latent_stats
        low, high = VIEW_PERCENTILES
        return tuple((float(stats[low][d]), float(stats[high][d])) for d in dims)

    def decode(self, z: np.ndarray) -> np.ndarray:
        """[N, D] -> images [N, H, W] (or [N, H, W, 3]); records the call's wall time in last_decode_ms."""
        start = time.perf_counter()
        images = self.model.decode(np.asarray(z, dtype=np.float32).reshape(-1, self.model.latent_dim))
        self.last_decode_ms = (time.perf_counter() - start) * 1000.0
        return images

    def decode_one(self, z: np.ndarray) -> np.ndarray:
        return self.decode(np.asarray(z, dtype=np.float32)[None])[0]

    def encode(self, image, name: str) -> Encoding:
        """Preprocesses (in the model's own layout), encodes and reconstructs one image; raises
        ValueError/TypeError on a bad one."""
        pixels = np.asarray(self.model.preprocess(image), dtype=np.float32)
        # An array already of the model's shape is taken as model input as it is: the preprocessing is not repeated.
        z = self.model.encode(pixels).mean
        return Encoding(name, pixels, z, self.decode_one(z))

    def interpolate(self, a: np.ndarray, b: np.ndarray, steps: int, method: str) -> Interpolation:
        path, frames = self.model.interpolate(a, b, steps, method=method)
        return Interpolation(path, frames, method)
