"""The one narrow interface between the explorer and the runtime.

Everything numerical the app does (decode, encode, sampling, interpolation, manifolds, image
preprocessing) is a call on an `Engine`, which forwards to a `latent_atlas.runtime` model. The rest of
the app never imports the runtime's model API directly, so a change there is absorbed here.

Images travel through the app as float32 [28, 28] (one) or [N, 28, 28] (several) in [0, 1].
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latent_atlas import runtime
from latent_atlas.runtime import bundle as bundle_format


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
    image: np.ndarray           # the preprocessed input, [28, 28]
    z: np.ndarray               # the posterior mean, [D]
    reconstruction: np.ndarray  # decode(z), [28, 28]


@dataclass(frozen=True)
class Manifold:
    points: np.ndarray  # [n*n, D], row-major, top row = largest y
    images: np.ndarray  # [n*n, 28, 28]
    n: int


@dataclass(frozen=True)
class Interpolation:
    path: np.ndarray    # [steps, D]
    frames: np.ndarray  # [steps, 28, 28]
    method: str


class Engine:
    """A loaded model: decode/encode/sample/interpolate/manifold through the runtime."""

    def __init__(self, model, source: str):
        self.model = model
        # What the user asked for ("mnist" or a directory): the key for recents and settings.
        self.source = source
        self.bundle = model.bundle
        self.latent_dim = int(model.latent_dim)
        self.class_names = list(self.bundle.class_names)
        self.last_decode_ms = 0.0

    @classmethod
    def open(cls, bundle: str | Path, provider: str = "auto") -> "Engine":
        """Loads a bundled model by name or a bundle directory; raises ValueError (incl. BundleError)."""
        source = str(bundle)
        # One CPU thread per session: a single-point decode is too small to split, and a second ONNX
        # Runtime thread only waits for a core, which on a busy 2-core machine made one hover decode in
        # a hundred take 7 ms instead of 0.2 ms. The 40 x 40 grid, on its own worker thread, was no slower.
        return cls(runtime.load(source, providers=provider, threads=SESSION_THREADS), source)

    @property
    def name(self) -> str:
        return self.bundle.name

    @property
    def provider(self) -> str:
        return self.model.provider

    @property
    def latent_stats(self) -> dict:
        return self.bundle.latent_stats

    def atlas(self) -> tuple[np.ndarray, np.ndarray]:
        """The test set's posterior means [M, D] and labels [M]; read once. An absent atlas is an empty one."""
        if not self.bundle.atlas_path.is_file():  # optional in the bundle format: an empty map, not an error
            return np.zeros((0, self.latent_dim), np.float32), np.zeros(0, np.uint8)
        return self.model.atlas()

    def percentile_extent(self, dims: tuple[int, int]) -> tuple[tuple[float, float], tuple[float, float]]:
        """The p01..p99 box of the test set's means along two dims: a view that shows nearly every point."""
        stats = self.latent_stats
        return tuple((float(stats["p01"][d]), float(stats["p99"][d])) for d in dims)

    def decode(self, z: np.ndarray) -> np.ndarray:
        """[N, D] -> [N, 28, 28]; records the call's wall time in last_decode_ms."""
        start = time.perf_counter()
        images = self.model.decode(np.asarray(z, dtype=np.float32).reshape(-1, self.latent_dim))
        self.last_decode_ms = (time.perf_counter() - start) * 1000.0
        return images

    def decode_one(self, z: np.ndarray) -> np.ndarray:
        return self.decode(np.asarray(z, dtype=np.float32)[None])[0]

    def preprocess(self, image) -> np.ndarray:
        """Any image the runtime accepts (path, PIL image, array) -> the [28, 28] model input, placed with
        the layout the model's training images were preprocessed with (the bundle's)."""
        return np.asarray(runtime.preprocess(image, self.model.encoder.layout), dtype=np.float32)

    def encode(self, image, name: str) -> Encoding:
        """Preprocesses, encodes and reconstructs one image; raises ValueError/TypeError on a bad one."""
        pixels = self.preprocess(image)
        # A grey 28 x 28 array is taken as model input as it is: the preprocessing is not repeated.
        z = self.model.encode(pixels).mean
        return Encoding(name, pixels, z, self.decode_one(z))

    def sample(self, n: int = 1, seed: int | None = None) -> np.ndarray:
        """n latent points drawn from the prior N(0, I): [n, D]."""
        return self.model.sample(n, seed=seed).z

    def interpolate(self, a: np.ndarray, b: np.ndarray, steps: int, method: str) -> Interpolation:
        path, frames = self.model.interpolate(a, b, steps, method=method)
        return Interpolation(path, frames, method)

    def manifold(self, n: int, extent, dims: tuple[int, int], base: np.ndarray | None) -> Manifold:
        """n x n decodes over `extent` ("percentiles" or ((xmin, xmax), (ymin, ymax))) in the plane `dims`."""
        points, images = self.model.manifold(n, extent=extent, dims=tuple(dims), base=base)
        return Manifold(points, images, n)
