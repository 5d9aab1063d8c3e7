"""The models: a lone `Encoder` or `Decoder` (one ONNX file each), and `LatentModel`, a whole bundle.

Every public method validates its input and raises ValueError/TypeError naming what was expected.
All state is read-only after construction (plus one lock-guarded cache), and ONNX Runtime's
`InferenceSession.run` is thread-safe, so one model can serve many threads.
"""

from __future__ import annotations

import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import numpy as np
from PIL import Image

from . import bundle as bundle_format
from .bundle_schema import BERNOULLI
from .image_shape import SEED_IMAGE_SHAPE, check_image_shape, shape_text
from .images import grid_image, to_display, to_pil
from .latent import check_count, check_dims, grid_points, interpolation_path, manifold_axes
from .preprocessing import LAYOUTS, pixel_values, prepare_batch
from .preprocessing import preprocess as preprocess_image
from . import prior as priors
from .prior import Prior
from .session import CPU, ProviderSpec, cpu_count, make_session

# On GPU providers, larger batches are run in chunks of this many, so memory stays bounded (~150 kB of
# activations per image) while a 30x30 grid still goes through in one call.
MAX_BATCH = 1024
# On the CPU, a batch of PARALLEL_BATCH or more is cut into slices of CPU_CHUNK images, whose
# activations stay in cache where a whole grid's (~100 MB for 30x30) do not. With the default threads
# the slices run side by side, one per core, on the same single-threaded session: ONNX Runtime's own
# intra-op threads barely split this model's small per-image convolutions (benchmarks/runtime_latency.py
# measures the gain). A single point stays on the calling thread:
# it is too small to split, and leaves the other cores to the app's GUI or a training run.
PARALLEL_BATCH = 8
CPU_CHUNK = 32
_FLOAT = "tensor(float)"
_IMAGE_AXES = ("C", "H", "W")


class Posterior(NamedTuple):
    """q(z|x) = N(mean, diag(exp(logvar))); unpacks as `mean, logvar = encoder.encode(x)`.

    Shapes are [N, D] for a batch and [D] for a single image."""

    mean: np.ndarray
    logvar: np.ndarray

    @property
    def std(self) -> np.ndarray:
        return np.exp(0.5 * self.logvar)

    def sample(self, seed: int | None = None) -> np.ndarray:
        """One draw z = mean + std * eps per image (the reparameterised sample), float32."""
        eps = np.random.default_rng(seed).standard_normal(self.mean.shape, dtype=np.float32)
        return (self.mean + self.std * eps).astype(np.float32)


@dataclass(frozen=True)
class Decoded:
    """Latent points and the images decoded from them: z [N, D], images in [0, 1] in the display layout,
    grey [N, H, W] ([N, 28, 28] for the seed's models) or colour [N, H, W, 3].

    Unpacks as `z, images = model.sample(16)`. `ncols` is the grid width a manifold was laid out with."""

    z: np.ndarray
    images: np.ndarray
    ncols: int | None = None

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter((self.z, self.images))

    def __len__(self) -> int:
        return len(self.images)

    def grid(self, ncols: int | None = None, scale: int = 1, padding: int = 2) -> Image.Image:
        """All images tiled into one PIL image (a manifold keeps its n x n layout)."""
        return grid_image(self.images, ncols or self.ncols, padding=padding, scale=scale)

    def pil(self, index: int = 0, scale: int = 1) -> Image.Image:
        return to_pil(self.images[index], scale=scale)


class _OnnxFile:
    """One ONNX file in a session, with its signature checked against the bundle format."""

    role = ""
    # (names, shape) of the graph's inputs and outputs; None = any size, "D" = the latent size, "C", "H", "W"
    # = the image's channels, height and width (any static size, checked by image_shape.check_image_shape).
    inputs: tuple[tuple[str, ...], tuple] = ((), ())
    outputs: tuple[tuple[str, ...], tuple] = ((), ())

    def __init__(self, path: str | Path, providers: ProviderSpec = "auto", strict: bool = False,
                 threads: int | None = None):
        """threads: intra-op CPU threads for every call; None = one thread for small batches and,
        on the CPU, slices run on every core for batches of PARALLEL_BATCH or more."""
        self.path = Path(path)
        self._threads = threads
        self._session = make_session(self.path, providers, strict, 1 if threads is None else threads)
        self.session = self._session.inference
        try:
            props = self.session.get_modelmeta().custom_metadata_map
        except UnicodeDecodeError as exc:
            raise ValueError(f"{self.path}: its metadata is not UTF-8 text (a corrupt file?): {exc}") from None
        self.metadata: dict = bundle_format.parse_onnx_metadata(props)
        static_dims = (self._expect(self.session.get_inputs(), *self.inputs, "inputs")
                       + self._expect(self.session.get_outputs(), *self.outputs, "outputs"))
        self.latent_dim = self._latent_dim([d for d, want in static_dims if want == "D"])
        self.image_shape = self._image_shape([d for d, want in static_dims if want in _IMAGE_AXES])
        self.static_batch = self._static_batch()

    @property
    def provider(self) -> str:
        """The execution provider actually running this file, e.g. "CPUExecutionProvider"."""
        return self._session.provider

    def _expect(self, args, names: tuple[str, ...], shape: tuple, kind: str) -> list[tuple[int | None, str]]:
        """Checks inputs or outputs against names and a shape (None = any size, "D" = the latent size, "C",
        "H", "W" = the image's); returns (the static value found or None where dynamic, which) of each
        named axis."""
        found = [(a.name, a.type, list(a.shape)) for a in args]
        wanted = ", ".join(f"{n} float32 {_shape_text(shape)}" for n in names)
        ok = [a.name for a in args] == list(names) and all(
            a.type == _FLOAT and len(a.shape) == len(shape) and all(
                want is None or isinstance(want, str) or have == want for have, want in zip(a.shape, shape)) for a in args)
        if not ok:
            have = ", ".join(f"{n} {t} {s}" for n, t, s in found) or "none"
            raise ValueError(f"{self.path}: not a latent-atlas {self.role}: expected {kind} {wanted}; found {have}")
        return [(dim if isinstance(dim, int) else None, want) for a in args for dim, want in zip(a.shape, shape)
                if isinstance(want, str)]

    def _image_shape(self, dims: list[int | None]) -> tuple[int, int, int]:
        """The image's (C, H, W) from the graph's static shape, which the metadata's image_shape (if any)
        must match; ValueError in one line for a shape the model family does not have."""
        if None in dims:
            raise ValueError(f"{self.path}: its image axes must have fixed sizes, got {_shape_text(tuple(dims))}")
        try:
            found = check_image_shape(tuple(dims))
        except ValueError as exc:
            raise ValueError(f"{self.path}: {exc}") from None
        recorded = self._recorded_image_shape()
        if recorded is not None and recorded != found:
            raise ValueError(f"{self.path}: its latent_atlas.image_shape metadata says {shape_text(recorded)} but the "
                             f"graph's images are {shape_text(found)}; expected them to agree")
        return found

    def _recorded_image_shape(self) -> tuple[int, ...] | None:
        recorded = self.metadata.get("image_shape")
        return tuple(recorded) if isinstance(recorded, list) else None

    @property
    def image_values(self) -> int:
        """Values per image, channels x height x width: what the limits on decoded points scale with."""
        channels, height, width = self.image_shape
        return channels * height * width

    @property
    def display_shape(self) -> tuple[int, ...]:
        """One image's shape as the runtime gives it: (H, W) grey, (H, W, 3) colour."""
        channels, height, width = self.image_shape
        return (height, width) if channels == 1 else (height, width, channels)

    def _latent_dim(self, static_dims: list[int | None]) -> int:
        """The latent size from the graph's static shapes and the metadata, which must agree."""
        candidates = {d for d in static_dims if d is not None}
        if "latent_dim" in self.metadata:
            candidates.add(self.metadata["latent_dim"])
        if len(candidates) != 1 or not isinstance(next(iter(candidates)), int) or next(iter(candidates)) < 1:
            raise ValueError(f"{self.path}: cannot tell the latent size: the graph's shapes and its "
                             f"latent_atlas.latent_dim metadata give {sorted(map(str, candidates)) or 'nothing'}")
        return next(iter(candidates))

    def _static_batch(self) -> int | None:
        """The fixed batch size of a `latent-atlas export --static-batch N` file; None when dynamic."""
        batch = self.session.get_inputs()[0].shape[0]
        static = batch if isinstance(batch, int) and batch > 0 else None
        recorded = self.metadata.get("static_batch")
        if recorded is not None and recorded != static:
            raise ValueError(f"{self.path}: its latent_atlas.static_batch metadata says {recorded} but the graph's "
                             f"batch axis is {batch}; expected them to agree")
        return static

    def _run_chunked(self, outputs: list[str], name: str, batch: np.ndarray) -> list[np.ndarray]:
        if self.static_batch is not None:
            return self._run_static(outputs, name, batch)
        on_cpu = self.provider == CPU
        if len(batch) < (PARALLEL_BATCH if on_cpu else MAX_BATCH + 1):
            return self.session.run(outputs, {name: batch})
        size = CPU_CHUNK if on_cpu else MAX_BATCH

        def run(start: int) -> list[np.ndarray]:
            return self.session.run(outputs, {name: batch[start:start + size]})

        starts = range(0, len(batch), size)
        if on_cpu and self._threads is None and cpu_count() > 1:
            parts = list(_cpu_pool().map(run, starts))
        else:  # the caller fixed the threads (the explorer keeps grids to one): slices one after another
            parts = [run(start) for start in starts]
        return [np.concatenate(column) for column in zip(*parts)]

    def _run_static(self, outputs: list[str], name: str, batch: np.ndarray) -> list[np.ndarray]:
        """A fixed-batch file runs static_batch rows per call: the last slice is padded with zeros,
        whose outputs are dropped."""
        size = self.static_batch
        padded = np.concatenate([batch, np.zeros((-len(batch) % size, *batch.shape[1:]), batch.dtype)])
        parts = [self.session.run(outputs, {name: padded[start:start + size]}) for start in range(0, len(padded), size)]
        return [np.concatenate(column)[:len(batch)] for column in zip(*parts)]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, latent_dim={self.latent_dim}, provider={self.provider!r})"


@functools.lru_cache(maxsize=1)
def _cpu_pool() -> ThreadPoolExecutor:
    """One pool for every model: a worker per core (ONNX Runtime releases the GIL while it runs)."""
    return ThreadPoolExecutor(max_workers=cpu_count(), thread_name_prefix="latent-atlas-cpu")


def _shape_text(shape: tuple) -> str:
    return "[" + ", ".join("N" if d is None else str(d) for d in shape) + "]"


def _check_model_input(batch: np.ndarray, image_shape: tuple[int, int, int]) -> np.ndarray:
    """A preprocessed batch must be the model's [N, C, H, W]: one line otherwise (never ONNX Runtime's)."""
    if batch.shape[1:] != tuple(image_shape):
        raise ValueError(f"expected images of {shape_text(image_shape)} (channels x height x width) for this model, "
                         f"got a batch of shape {batch.shape}; pass preprocess=True to resize and convert them")
    return batch


class Encoder(_OnnxFile):
    """encoder.onnx on its own: images -> Posterior. See `encode` for what it accepts."""

    role = "encoder"
    inputs = ((bundle_format.ENCODER_INPUT,), (None, *_IMAGE_AXES))
    outputs = (bundle_format.ENCODER_OUTPUTS, (None, "D"))

    def __init__(self, path: str | Path, providers: ProviderSpec = "auto", strict: bool = False,
                 threads: int | None = None, layout: str | None = None):
        super().__init__(path, providers, strict, threads)
        if layout is not None and layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        # A bundle's manifest says the layout; a lone file says it in its metadata.
        self._layout = layout or bundle_format.layout_of(self.metadata.get("dataset"))

    @property
    def layout(self) -> str:
        """How preprocessing places an object: the training dataset's way (a key of LAYOUTS)."""
        return self._layout

    def preprocess(self, image: Any) -> np.ndarray:
        """One picture (path, bytes, PIL image, array) -> the input this model was trained on, in the display
        layout: [H, W] grey ([28, 28] for the seed's models), [H, W, 3] colour."""
        if self.image_shape == SEED_IMAGE_SHAPE:
            return preprocess_image(image, self.layout)
        return preprocess_image(image, self.layout, image_shape=self.image_shape)

    def _prepare(self, images: Any, preprocess: str | bool) -> tuple[np.ndarray, bool]:
        """(float32 [N, C, H, W], whether one image was given): the model's own input layout is taken as it
        is (validated as pixels); everything else goes through preprocessing.prepare_batch, which keeps a
        colour picture's colour, converts grey to colour and colour to grey as it states, and resizes."""
        if (preprocess is not True and isinstance(images, np.ndarray) and images.ndim == 4
                and images.shape[1:] == self.image_shape):
            return pixel_values(images), False
        if self.image_shape == SEED_IMAGE_SHAPE:
            batch, single = prepare_batch(images, preprocess, self.layout)
        else:
            batch, single = prepare_batch(images, preprocess, self.layout, image_shape=self.image_shape)
        return _check_model_input(batch, self.image_shape), single

    def encode(self, images: Any, preprocess: str | bool = "auto") -> Posterior:
        """Images -> the posterior q(z|x): `mean, logvar`, each [N, D] ([D] for a single image).

        Accepts a file path, bytes, a PIL image (any size and mode), an array ([H, W] or [H, W, 3|4]
        for one image; [N, H, W], [N, 1, H, W] or [N, H, W, 1|3|4] for a batch, and the model's own
        [N, C, H, W]; uint8, uint16, bool or floats in [0, 1]) or a list of these. With preprocess="auto",
        arrays already of the model's shape are used as they are (grey 28x28 for MNIST models) and
        everything else is preprocessed to the model's image shape (see `latent_atlas.runtime.preprocessing`:
        MNIST-style for MNIST models, each dataset's layout otherwise; a grey picture for a colour model
        and a colour one for a grey model are converted, as it states); True/False force it on/off for
        everything."""
        batch, single = self._prepare(images, preprocess)
        if len(batch) == 0:
            empty = np.zeros((0, self.latent_dim), dtype=np.float32)
            return Posterior(empty, empty.copy())
        mean, logvar = self._run_chunked(list(bundle_format.ENCODER_OUTPUTS), bundle_format.ENCODER_INPUT, batch)
        return Posterior(mean[0], logvar[0]) if single else Posterior(mean, logvar)


class Decoder(_OnnxFile):
    """decoder.onnx on its own: latent points -> images, plus the ways of choosing points."""

    role = "decoder"
    inputs = ((bundle_format.DECODER_INPUT,), (None, "D"))
    outputs = ((bundle_format.DECODER_OUTPUT,), (None, *_IMAGE_AXES))

    def __init__(self, path: str | Path, providers: ProviderSpec = "auto", strict: bool = False,
                 threads: int | None = None, latent_stats: dict | None = None, prior: Prior | None = None):
        super().__init__(path, providers, strict, threads)
        self._latent_stats = latent_stats
        self._prior = prior

    @property
    def latent_stats(self) -> dict | None:
        """Per-dim statistics of the test set's encodings (mean, std, min, max, p01, p05, p95, p99),
        from the bundle or the file's metadata; None when neither has them."""
        return self._latent_stats or self.metadata.get("latent_stats")

    @property
    def likelihood(self) -> str:
        """The likelihood whose mean this file outputs (its metadata's; a file without one: the Bernoulli)."""
        recorded = self.metadata.get("likelihood")
        return recorded.get("name", BERNOULLI) if isinstance(recorded, dict) else BERNOULLI

    @property
    def prior(self) -> Prior:
        """What `sample` draws from: the bundle's prior, else the one in the file's metadata, else N(0, I)."""
        if self._prior is None:
            try:
                self._prior = priors.from_json(self.metadata.get("prior"), self.latent_dim)
            except ValueError as exc:
                raise ValueError(f"{self.path}: its metadata's prior: {exc}") from None
        return self._prior

    def decode(self, z: Any) -> np.ndarray:
        """Latent points [N, D] -> images float32 in [0, 1] (the likelihood's mean: pixel probabilities for a
        Bernoulli model) in the display layout: grey [N, H, W] ([N, 28, 28] for the seed's models), colour
        [N, H, W, 3]; one point [D] -> one image [H, W] or [H, W, 3]."""
        z = self.latents(z)
        single = z.ndim == 1
        batch = z[None] if single else z
        if len(batch) == 0:
            return np.zeros((0, *self.display_shape), dtype=np.float32)
        images = to_display(self._run_chunked([bundle_format.DECODER_OUTPUT], bundle_format.DECODER_INPUT, batch)[0])
        return images[0] if single else images

    def latents(self, z: Any) -> np.ndarray:
        """Validates latent points: [D] or [N, D] of finite real numbers -> contiguous float32."""
        try:
            array = np.asarray(z)
        except ValueError as exc:
            raise ValueError(f"expected latent points [N, {self.latent_dim}] or [{self.latent_dim}], "
                             f"got a ragged sequence") from exc
        if array.dtype.kind == "O":  # e.g. a list mixing numpy scalars and floats
            try:
                array = array.astype(np.float64)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"expected latent points as real numbers, got non-numeric objects ({exc})") from exc
        if array.dtype.kind not in "biuf":
            raise TypeError(f"expected latent points as real numbers, got dtype {array.dtype}")
        if array.dtype != np.float32:
            with np.errstate(over="ignore"):  # values beyond float32 become inf, refused just below
                array = array.astype(np.float32)
        array = np.ascontiguousarray(array)
        if array.ndim not in (1, 2) or array.shape[-1] != self.latent_dim:
            raise ValueError(f"expected latent points [N, {self.latent_dim}] or [{self.latent_dim}], "
                             f"got shape {array.shape}")
        if not np.isfinite(array).all():
            raise ValueError("latent points must be finite (no NaN or infinity, and within float32 range)")
        return array

    def sample(self, n: int, seed: int | None = None) -> Decoded:
        """n points drawn from the bundle's prior (N(0, I) unless its export fitted one, runtime/prior.py) and
        their images; the same seed gives the same draw."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        check_count(n, "n (samples)", image_values=self.image_values)
        z = self.prior.sample(int(n), seed)
        return Decoded(z, self.decode(z))

    def interpolate(self, a: Any, b: Any, steps: int = 10, method: str = "linear") -> Decoded:
        """The path from latent point a to b (both included, `steps` points) and its images.
        method: "linear" or "slerp" (see latent.interpolation_path)."""
        path = interpolation_path(self.latent_point(a, "a"), self.latent_point(b, "b"), steps, method,
                                  image_values=self.image_values)
        return Decoded(path, self.decode(path))

    def manifold(self, n: int = 10, extent=None, dims: tuple[int, int] = (0, 1), base: Any = None) -> Decoded:
        """An n x n grid of decoded points, row-major, top row = largest y; `ncols` = n.

        extent: None (the prior's 0.05..0.95 normal quantiles, like the Keras original), "percentiles"
        (the bundle's p05..p95 of the test set's encodings, per dim) or ((xmin, xmax), (ymin, ymax)).
        Above 2-D, dims picks the two dims spanned (x, y); the others are held at base (default 0)."""
        dims = tuple(dims)
        check_dims(dims, self.latent_dim)
        if base is not None:
            base = self.latent_point(base, "base")
        xs, ys = manifold_axes(n, extent, dims, self.latent_stats)
        check_count(len(xs) * len(ys), f"an {n} x {n} grid", image_values=self.image_values)
        z = grid_points(xs, ys, self.latent_dim, dims, base)
        return Decoded(z, self.decode(z), ncols=len(xs))

    def latent_point(self, value: Any, name: str = "z") -> np.ndarray:
        """One latent point [D], validated."""
        point = self.latents(value)
        if point.ndim != 1:
            raise ValueError(f"{name} must be one latent point [{self.latent_dim}], got shape {point.shape}")
        return point


class LatentModel:
    """A bundle loaded for inference: its Encoder, its Decoder and its manifest. Create with `load`."""

    def __init__(self, bundle: bundle_format.Bundle, encoder: Encoder, decoder: Decoder):
        if encoder.latent_dim != decoder.latent_dim:
            raise bundle_format.BundleError(
                f"{bundle.path}: the encoder's latent size ({encoder.latent_dim}) differs from the decoder's "
                f"({decoder.latent_dim}); expected one model's pair")
        if bundle.latent_dim != decoder.latent_dim:
            raise bundle_format.BundleError(
                f"{bundle.path}: {bundle_format.MANIFEST} says latent_dim {bundle.latent_dim} but the ONNX files "
                f"have {decoder.latent_dim}")
        shapes = {"its encoder": encoder.image_shape, "its decoder": decoder.image_shape}
        for which, shape in shapes.items():
            if shape != bundle.image_shape:
                raise bundle_format.BundleError(
                    f"{bundle.path}: {bundle_format.MANIFEST} says image_shape {shape_text(bundle.image_shape)} but "
                    f"{which}'s images are {shape_text(shape)}; expected one model's files")
        self.bundle = bundle
        self.encoder = encoder
        self.decoder = decoder
        self._atlas: tuple[np.ndarray, np.ndarray] | None = None
        self._class_means: np.ndarray | None = None
        self._lock = threading.RLock()

    # --- what it is -------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.bundle.name

    @property
    def latent_dim(self) -> int:
        return self.decoder.latent_dim

    @property
    def class_names(self) -> list[str]:
        return self.bundle.class_names

    @property
    def latent_stats(self) -> dict[str, list[float]]:
        return self.bundle.latent_stats

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of the model's images: (1, 28, 28) for MNIST, (3, 64, 64) for 64-pixel RGB."""
        return self.decoder.image_shape

    @property
    def likelihood(self) -> str:
        """The decoder's likelihood (bundle_schema.LIKELIHOOD_NAMES): what its figures are measured under;
        `decode` gives its mean whatever it is."""
        return self.bundle.manifest.likelihood_name

    @property
    def prior(self) -> Prior:
        """What `sample` draws from: N(0, I), or the mixture the export fitted to the training codes."""
        return self.decoder.prior

    @property
    def layout(self) -> str:
        """How preprocessing places an object for this model (the bundle's dataset.layout)."""
        return self.encoder.layout

    @property
    def atlas_extra(self) -> bundle_format.AtlasExtra | None:
        """The bundle's atlas_extra.npz (thumbnails, z_logvar, recon_error, factors), read once; None without one."""
        with self._lock:
            if not hasattr(self, "_atlas_extra"):
                self._atlas_extra = self.bundle.read_atlas_extra()
            return self._atlas_extra

    def preprocess(self, image: Any) -> np.ndarray:
        """One picture -> the input this model was trained on (its own layout and image shape), [H, W] grey
        or [H, W, 3] colour."""
        return self.encoder.preprocess(image)

    @property
    def providers(self) -> dict[str, str]:
        """The execution provider actually running each file: {"encoder": ..., "decoder": ...}."""
        return {"encoder": self.encoder.provider, "decoder": self.decoder.provider}

    @property
    def provider(self) -> str:
        """The active execution provider, e.g. "CPUExecutionProvider" (both files, unless they differ)."""
        if self.encoder.provider == self.decoder.provider:
            return self.decoder.provider
        return f"{self.encoder.provider} (encoder), {self.decoder.provider} (decoder)"

    def __repr__(self) -> str:
        return f"LatentModel({self.name!r}, latent_dim={self.latent_dim}, provider={self.provider!r})"

    # --- inference --------------------------------------------------------------------------------

    def encode(self, images: Any, preprocess: str | bool = "auto") -> Posterior:
        return self.encoder.encode(images, preprocess)

    def decode(self, z: Any) -> np.ndarray:
        return self.decoder.decode(z)

    def reconstruct(self, images: Any, preprocess: str | bool = "auto") -> np.ndarray:
        """decode(posterior mean): the model's deterministic reconstruction, shaped like decode's output."""
        return self.decoder.decode(self.encoder.encode(images, preprocess).mean)

    def sample(self, n: int, seed: int | None = None) -> Decoded:
        return self.decoder.sample(n, seed)

    def manifold(self, n: int = 10, extent=None, dims: tuple[int, int] = (0, 1), base: Any = None) -> Decoded:
        return self.decoder.manifold(n, extent, dims, base)

    def interpolate(self, a: Any, b: Any, steps: int = 10, method: str = "linear") -> Decoded:
        """Like Decoder.interpolate, but a and b may also be images (anything `encode` takes, one
        image each): they are replaced by their posterior means."""
        return self.decoder.interpolate(self.as_latent(a), self.as_latent(b), steps, method)

    def as_latent(self, value: Any) -> np.ndarray:
        """A latent vector [D] as it is, or one image -> its posterior mean [D]."""
        if isinstance(value, (list, tuple, np.ndarray)) and np.ndim(value) == 1 and np.asarray(value).dtype.kind in "iuf":
            return self.decoder.latent_point(value, "a latent endpoint")
        mean = self.encoder.encode(value).mean
        if mean.ndim != 1:
            raise ValueError(f"expected a latent vector [{self.latent_dim}] or one image, got {len(mean)} images")
        return mean

    # --- the atlas: where the test set landed -------------------------------------------------------

    def atlas(self) -> tuple[np.ndarray, np.ndarray]:
        """The test set's posterior means [M, D] and labels [M], read on first use."""
        with self._lock:
            if self._atlas is None:
                self._atlas = self.bundle.read_atlas()
            return self._atlas

    def nearest_class(self, z: Any) -> np.ndarray:
        """Index of the class whose mean test encoding is nearest to each point ([N], or a scalar for [D])."""
        points = self.decoder.latents(z)
        if not self.class_names:
            raise ValueError(f"{self.name}: this bundle's dataset has no class labels, so there is no nearest class")
        with self._lock:
            if self._class_means is None:
                means, labels = self.atlas()
                # A class absent from the atlas gets an infinitely far centre: never the nearest.
                self._class_means = np.stack([means[labels == k].mean(axis=0) if np.any(labels == k)
                                              else np.full(self.latent_dim, np.inf, np.float32)
                                              for k in range(len(self.class_names))])
            centres = self._class_means
        distances = np.linalg.norm(np.atleast_2d(points)[:, None, :] - centres[None], axis=-1)
        nearest = np.argmin(distances, axis=1)
        return nearest[0] if points.ndim == 1 else nearest


def load(bundle: str | Path = "mnist", providers: ProviderSpec = "auto", strict: bool = False,
         verify: bool = True, threads: int | None = None) -> LatentModel:
    """Loads a bundled model by name ("mnist", "fashion-mnist") or a bundle directory.

    providers: "auto" (a GPU provider when one is available, else CPU), "cpu", "cuda", "tensorrt",
    "directml", "coreml", a full ONNX Runtime provider name, or a list of them. strict=True raises
    unless the asked provider is the one running. Every file's SHA-256 is checked against bundle.json
first (a bundle altered by accident is refused); verify=False skips that for bundles edited on purpose.
    threads: CPU threads per session (default: one per core)."""
    found = bundle_format.read(bundle, verify=verify)
    # The manifest's latent_stats are the bundle's own; the decoder's metadata copy may be absent.
    decoder = Decoder(found.decoder_path, providers, strict, threads, latent_stats=found.latent_stats,
                      prior=found.prior)
    encoder = Encoder(found.encoder_path, providers, strict, threads, layout=found.layout)
    return LatentModel(found, encoder, decoder)
