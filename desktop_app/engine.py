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
from latent_atlas.runtime import explain
from latent_atlas.runtime.explorer_rules import HEADLINE_METRICS, VIEW_PERCENTILES
from latent_atlas.runtime.image_shape import shape_text


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
    logvar: np.ndarray          # the posterior log-variance, [D]: how sure the encoder is


@dataclass(frozen=True)
class Neighbours:
    """The atlas images nearest a latent point, nearest first."""
    indices: np.ndarray     # [k] into the atlas
    distances: np.ndarray   # [k] in the full latent space
    thumbnails: np.ndarray  # [k, h, w] or [k, h, w, 3] floats in [0, 1]
    labels: list[str]       # class names, or "" where the bundle has none


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
        self._indexes: dict[tuple[int, int], explain.NeighbourIndex] = {}

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

    def atlas_extra(self):
        """The bundle's atlas extras (runtime AtlasExtra: thumbnails, z_logvar, recon_error, factors), or None."""
        return self.model.atlas_extra

    def missing_extra(self, what: str) -> str:
        """Why `what` is empty for this bundle, in one line."""
        return (f"{self.model.name} has no atlas extras (atlas_extra.npz), so there are no {what}: export the "
                f"bundle again without --no-atlas-extra")

    def factor_names(self) -> list[str]:
        """The known generating factors of the atlas images (a procedural data set's), if the bundle has them."""
        extra = self.atlas_extra()
        return list(extra.factor_names) if extra is not None and extra.factors is not None else []

    def neighbours(self, z: np.ndarray, k: int, dims: tuple[int, int]) -> Neighbours:
        """The k atlas images nearest z (all dims count; the index buckets the two shown ones); raises
        ValueError without atlas extras."""
        extra = self.atlas_extra()
        if extra is None:
            raise ValueError(self.missing_extra("neighbour images"))
        index = self._indexes.get(tuple(dims))
        if index is None:
            index = self._indexes[tuple(dims)] = explain.NeighbourIndex(self.atlas()[0], dims)
        indices, distances = index.query(z, k)
        names, labels = self.model.class_names, self.atlas()[1]
        shown = [names[labels[i]] if names and labels[i] < len(names) else "" for i in indices]
        thumbnails = [extra.thumbnail(i) for i in indices]
        return Neighbours(indices, distances, np.stack(thumbnails) if thumbnails else np.zeros(0, np.float32), shown)

    def posterior_samples(self, encoding: Encoding, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """n draws of the encoding's posterior and their decodes: (z [n, D], images)."""
        z = explain.posterior_samples(encoding.z, encoding.logvar, n, seed)
        return z, self.model.decode(z)

    def layer(self, name: str, grid: explain.LayerGrid, dims: tuple[int, int], base: np.ndarray | None) -> np.ndarray:
        """One background layer's values [rows, cols] over the grid (log densities in nats, or the decoder's
        entropy in nats per pixel); raises ValueError when the bundle lacks what the layer needs."""
        if name == "prior":
            return explain.prior_log_density(self.model.prior, grid, dims, base)
        if name == "aggregate":
            extra = self.atlas_extra()
            if extra is None:
                raise ValueError(self.missing_extra("posterior variances for the aggregate posterior"))
            return explain.aggregate_log_density(self.atlas()[0], extra.z_logvar, grid, dims, base)
        if name == "entropy":
            images = self.model.decode(grid.points(self.model.latent_dim, dims, base))
            return explain.decoder_entropy(images).reshape(grid.rows, grid.cols)
        raise ValueError(f"unknown layer {name!r}")

    def point_values(self, colouring: str) -> np.ndarray | None:
        """What the atlas points are coloured by: None for the class colours, else one number per point
        (the reconstruction error, or a known factor "factor:NAME"); raises ValueError when absent."""
        if colouring == "class":
            return None
        extra = self.atlas_extra()
        if extra is None:
            raise ValueError(self.missing_extra("reconstruction errors or factors to colour the points by"))
        if colouring == "error":
            return extra.recon_error
        names = self.factor_names()
        name = colouring.removeprefix("factor:")
        if not colouring.startswith("factor:") or name not in names:
            raise ValueError(f"{self.model.name} has no factor {name!r} to colour by; it has "
                             f"{', '.join(names) or 'none'}")
        return extra.factors[:, names.index(name)]

    def headline(self) -> dict[str, str]:
        """The bundle's headline figures from its bundle.json, as the compare view lists them."""
        manifest = self.model.bundle.manifest
        metrics = manifest.metrics
        rows = {"variant": manifest.variant, "image": shape_text(tuple(manifest.image_shape))}
        for key, label, unit, decimals in HEADLINE_METRICS:
            if isinstance(metrics.get(key), (int, float)):
                rows[label] = f"{metrics[key]:.{decimals}f} {unit}"
        return rows

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
        posterior = self.model.encode(pixels)
        return Encoding(name, pixels, posterior.mean, self.decode_one(posterior.mean), posterior.logvar)

    def interpolate(self, a: np.ndarray, b: np.ndarray, steps: int, method: str) -> Interpolation:
        path, frames = self.model.interpolate(a, b, steps, method=method)
        return Interpolation(path, frames, method)
