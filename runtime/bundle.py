"""The model bundle: the directory that `latent-atlas export` writes and everything else loads.

The format (the bundle's files; every key of bundle.json, its type, whether it is required, what it
means; the compatibility promise) is declared once in runtime/bundle_schema.py: its
`reference_markdown()` is the format's reference, and bundle.schema.json beside it the JSON Schema that
this module and the browser explorer validate bundle.json against.

Each ONNX file also carries the manifest's descriptive keys (bundle_schema.METADATA_KEYS) in its
metadata_props, prefixed with "latent_atlas." and JSON-encoded, so a lone decoder.onnx embedded in
another app describes itself.

`Manifest` is bundle.json as a typed object, with one writer (`Manifest.write`) and one reader
(`Manifest.load`), both derived from bundle_schema.FIELDS; export fills it, everything else reads it.
`read` verifies every file against its recorded SHA-256 unless told not to.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import typing
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import bundle_schema as schema
from . import prior as priors
from .bundle_schema import IMAGE_SHAPE, METADATA_KEYS, METADATA_PREFIX, SCHEMA_VERSION  # noqa: F401  (re-exported)
from .image_shape import check_image_shape
from .json_schema import first_error
from . import untrusted
from .options import VARIANTS  # noqa: F401  (part of the format's definition)
from .preprocessing import LAYOUTS

MANIFEST = "bundle.json"
ENCODER = "encoder.onnx"
DECODER = "decoder.onnx"
ATLAS = "atlas.npz"
ATLAS_EXTRA = "atlas_extra.npz"
# Files a bundle may leave out: an absent atlas is an empty map, an absent atlas_extra.npz an explorer
# without neighbour thumbnails, aggregate layer or error colouring, not a broken bundle.
OPTIONAL_FILES = (ATLAS, ATLAS_EXTRA)
# The largest side of an atlas_extra.npz thumbnail: MNIST's 28 is kept whole, larger images are downscaled.
MAX_THUMBNAIL_SIDE = 32

# bundle.json "runtimes": where each form of the files is meant to run (README, "Which files for which
# runtime"; benchmarks/opencv_dnn.py). fp32 gives the Python runtime's numbers in all of these. int8 (QDQ)
# runs in onnxruntime (Python, Node), not in OpenCV's DNN: 4.x gives wrong numbers at batch > 1 (and
# was reported to crash), 5.0 refuses the graph. fp16 is meant for GPU providers; the CPU provider and
# OpenCV run it too (within 1e-4), the CPU provider more slowly than fp32.
VARIANT_RUNTIMES = {
    "fp32": ("onnxruntime", "onnxruntime-gpu", "onnxruntime-node", "onnxruntime-web", "opencv-dnn"),
    "int8": ("onnxruntime", "onnxruntime-node"),
    "fp16": ("onnxruntime-gpu", "onnxruntime", "onnxruntime-node", "opencv-dnn"),
}
# NNAPI and CoreML take no node with a dynamic input shape: only a static-batch file reaches them.
STATIC_BATCH_RUNTIMES = ("onnxruntime-mobile-nnapi", "onnxruntime-mobile-coreml")
# The ORT format is what onnxruntime's minimal (mobile) builds load; full builds load it too.
ORT_FORMAT_RUNTIMES = ("onnxruntime-mobile",)
ORT_SUFFIX = ".ort"

ENCODER_INPUT = "image"
ENCODER_OUTPUTS = ("z_mean", "z_logvar")
DECODER_INPUT = "z"
DECODER_OUTPUT = "image"
DEFAULT_LAYOUT = "mnist"

BUNDLED_MODELS_DIR = Path(__file__).parent / "models"
# metrics: the test IW bound under N(0, I), recorded beside `test_iw_nll` when a fitted prior made that its own
IW_NLL_STANDARD_NORMAL = "test_iw_nll_standard_normal"


class BundleError(ValueError):
    """A bundle directory or file that is missing, malformed or inconsistent."""


def layout_of(dataset: Any) -> str:
    """The preprocessing layout (a key of preprocessing.LAYOUTS) for a manifest's `dataset` entry:
    its `layout`, else its name when that names a layout (bundles written before `layout` existed),
    else MNIST's."""
    if isinstance(dataset, DatasetEntry):
        dataset = {"name": dataset.name, "layout": dataset.layout}
    if not isinstance(dataset, dict):
        return DEFAULT_LAYOUT
    for candidate in (dataset.get("layout"), dataset.get("name")):
        if candidate in LAYOUTS:
            return candidate
    return DEFAULT_LAYOUT


@dataclass(frozen=True)
class DatasetEntry:
    """bundle.json's `dataset`: what the model was trained on."""

    name: str
    class_names: tuple[str, ...]
    files: dict[str, str] = field(default_factory=dict)  # training file name -> SHA-256
    layout: str | None = None  # a key of preprocessing.LAYOUTS; None: told by the name (see layout_of)
    factor_names: tuple[str, ...] = ()  # the columns of atlas_extra.npz `factors`; () when none
    extra: dict = field(default_factory=dict)  # keys this version does not know, written back unchanged

    def to_json(self) -> dict:
        out = {"name": self.name, "class_names": list(self.class_names), "files": dict(self.files)}
        if self.layout is not None:
            out["layout"] = self.layout
        if self.factor_names:
            out["factor_names"] = list(self.factor_names)
        return {**out, **self.extra}

    @classmethod
    def from_json(cls, value: Any, source: Path) -> "DatasetEntry":
        # class_names empty or absent: a dataset without labels (your own unlabelled images).
        _check(schema.DATASET, value, source, "dataset")
        known = [f.name for f in dataclasses.fields(cls) if f.name != "extra"]
        return cls(name=value.get("name", ""), class_names=tuple(value.get("class_names", [])),
                   files=dict(value.get("files", {})), layout=value.get("layout"),
                   factor_names=tuple(value.get("factor_names", [])),
                   extra={k: v for k, v in value.items() if k not in known})


def _check(rules: dict, value: Any, source: Path, path: str = "") -> None:
    """BundleError naming the file and the field path unless `value` conforms to `rules` (a JSON Schema)."""
    error = first_error(rules, value, path)
    if error is None:
        return
    if error.path in ("", "schema_version"):
        raise BundleError(f"{source}: not a latent-atlas bundle manifest of schema_version {SCHEMA_VERSION} ({error}); "
                          f"export one with 'latent-atlas export'")
    raise BundleError(f"{source}: {error}")


@dataclass(frozen=True)
class Manifest:
    """bundle.json as a typed object: `write` is its one writer and `load` its one reader.

    Its attributes are bundle_schema.FIELDS' keys (that module says what each holds); new keys are optional
    fields with defaults, so bundles written before them still load."""

    name: str
    variant: str
    latent_dim: int
    dataset: DatasetEntry
    latent_stats: dict[str, list[float]]
    files: dict[str, dict] = field(default_factory=dict)  # filename -> {sha256, bytes}
    image_shape: tuple[int, ...] = schema.BY_KEY["image_shape"].default
    likelihood: dict = field(default_factory=dict)  # {"name": ..., parameters}; empty: the Bernoulli
    pixel_range: tuple[float, float] = schema.BY_KEY["pixel_range"].default
    training: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    onnx: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    export_command: str | None = None
    static_batch: int | None = None
    runtimes: tuple[str, ...] = ()
    ort_optimization_style: str | None = None
    prior: dict = field(default_factory=dict)
    schema_version: int = schema.BY_KEY["schema_version"].default
    extra: dict = field(default_factory=dict)  # keys this version does not know, written back unchanged

    @property
    def layout(self) -> str:
        """How preprocessing places an object for this model (see layout_of)."""
        return layout_of(self.dataset)

    @property
    def class_names(self) -> list[str]:
        return list(self.dataset.class_names)

    def replace(self, **changes) -> "Manifest":
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict:
        values = {f.key: _json_value(getattr(self, f.key)) for f in schema.FIELDS}
        # Empty optional sections are left out, as export left them out before it filled them; a key
        # `written_with` another (static_batch with runtimes) is written, null too, whenever that one is:
        # a reader then learns that the batch axis is dynamic, and older bundles are written back as they were.
        out = {f.key: values[f.key] for f in schema.FIELDS
               if f.required or f.always_written or values[f.key] or (f.written_with and values[f.written_with])}
        return {**out, **self.extra}

    def content(self) -> dict:
        """What the bundle is, without how it was made: two exports of the same weights compare equal. As
        bundle.json holds it (tuples as lists), so a manifest just built compares equal to the one read back."""
        values = json.loads(json.dumps(self.to_json()))
        values.pop("export_command", None)
        return values

    def text(self) -> str:
        """bundle.json's exact contents."""
        return json.dumps(self.to_json(), indent=2) + "\n"

    def write(self, directory: Path) -> Path:
        path = Path(directory) / MANIFEST
        path.write_text(self.text(), encoding="utf-8")
        return path

    @classmethod
    def from_json(cls, values: Any, source: Path) -> "Manifest":
        _check(schema.SCHEMA, values, source)
        hints = typing.get_type_hints(cls)
        known = {key: _python_value(hints[key], values[key], source) for key in schema.KEYS if key in values}
        known["prior"] = _checked_prior(values.get("prior"), known["latent_dim"], source)
        try:
            check_image_shape(list(known["image_shape"]))
        except ValueError as exc:
            raise BundleError(f"{source}: {exc}") from None
        return cls(**known, extra={k: v for k, v in values.items() if k not in schema.BY_KEY})

    @property
    def likelihood_name(self) -> str:
        """The decoder's likelihood (bundle_schema.LIKELIHOOD_NAMES); a bundle that records none: the Bernoulli."""
        return self.likelihood.get("name", schema.BERNOULLI)

    @property
    def latent_prior(self) -> priors.Prior:
        """The prior to sample z from: N(0, I) unless the export fitted one (runtime/prior.py)."""
        return priors.from_json(self.prior, self.latent_dim)

    @property
    def iw_nll_standard_normal(self) -> float | None:
        """The test IW bound under N(0, I), as the literature reports it (None when not measured).

        With a fitted prior `test_iw_nll` is the bound under that prior, and the export records the N(0, I)
        one beside it as `test_iw_nll_standard_normal`; without one, `test_iw_nll` is already under N(0, I)."""
        return self.metrics.get(IW_NLL_STANDARD_NORMAL, self.metrics.get("test_iw_nll"))

    @classmethod
    def load(cls, directory: Path) -> "Manifest":
        path = Path(directory) / MANIFEST
        if not path.is_file():
            raise BundleError(f"{directory}: not a model bundle (no {MANIFEST}); create one with 'latent-atlas export'")
        return cls.from_json(read_json(path, BundleError), path)


def _json_value(value: Any) -> Any:
    """A Manifest attribute as bundle.json holds it."""
    if isinstance(value, DatasetEntry):
        return value.to_json()
    return list(value) if isinstance(value, tuple) else value


def _python_value(hint: Any, value: Any, source: Path) -> Any:
    """A conforming bundle.json value as the Manifest attribute typed `hint` holds it."""
    if hint is DatasetEntry:
        return DatasetEntry.from_json(value, source)
    if typing.get_origin(hint) is tuple:
        return tuple(value)
    if int in (hint, *typing.get_args(hint)) and value is not None:
        return int(value)  # a whole number written as 2.0 is an integer (as JSON Schema and JavaScript read it)
    return value


def _checked_prior(value: Any, latent_dim: int, source: Path) -> dict:
    try:
        priors.from_json(value, latent_dim)
    except ValueError as exc:
        raise BundleError(f"{source}: {exc}") from None
    return value or {}


def read_json(path: Path, error: type[Exception] = ValueError) -> Any:
    """A JSON file's value, read as untrusted input (untrusted.read_json: size, depth, NaN and integer
    bounds); a file that is not strict UTF-8 JSON raises `error` naming it and, where it can, the field."""
    return untrusted.read_json(path, error)


def file_entries(directory: Path, filenames=(ENCODER, DECODER, ATLAS)) -> dict[str, dict]:
    """The manifest's `files`: {filename: {sha256, bytes}} of the files in `directory`."""
    directory = Path(directory)
    return {f: {"sha256": sha256_file(directory / f), "bytes": (directory / f).stat().st_size} for f in filenames}


@dataclass(frozen=True)
class AtlasExtra:
    """atlas_extra.npz: per atlas point (same order as atlas.npz), what the explorers explain with."""

    thumbnails: np.ndarray  # uint8 [M, h, w] grey or [M, h, w, 3] colour
    z_logvar: np.ndarray  # float32 [M, D]: the posterior's log-variance beside atlas.npz z_mean
    recon_error: np.ndarray  # float32 [M]: -log p(x | z = mean) in nats
    factors: np.ndarray | None = None  # float32 [M, F], or None
    factor_names: tuple[str, ...] = ()

    def thumbnail(self, index: int) -> np.ndarray:
        """One thumbnail as a float32 image in [0, 1] ([h, w] or [h, w, 3]), as the explorers draw images."""
        return self.thumbnails[index].astype(np.float32) / 255.0


def _check_atlas_extra(arrays: dict[str, np.ndarray], path: Path, points: int, latent_dim: int,
                       factor_names: tuple[str, ...]) -> AtlasExtra:
    """AtlasExtra of an .npz's arrays, or a BundleError saying what was expected."""
    thumbs, logvar, error, factors = (arrays.get(k) for k in ("thumbnails", "z_logvar", "recon_error", "factors"))
    expected = (f"thumbnails uint8 [{points}, h, w(, 3)] with sides at most {MAX_THUMBNAIL_SIDE}, z_logvar float32 "
                f"[{points}, {latent_dim}], recon_error float32 [{points}]"
                + (f", factors float32 [{points}, {len(factor_names)}]" if factor_names else ""))
    good = (thumbs is not None and thumbs.dtype == np.uint8 and thumbs.ndim in (3, 4) and len(thumbs) == points
            and (thumbs.ndim == 3 or thumbs.shape[3] == 3) and 0 < min(thumbs.shape[1:3])
            and max(thumbs.shape[1:3]) <= MAX_THUMBNAIL_SIDE
            and logvar is not None and logvar.dtype == np.float32 and logvar.shape == (points, latent_dim)
            and error is not None and error.dtype == np.float32 and error.shape == (points,)
            and (factors is None if not factor_names else
                 factors is not None and factors.dtype == np.float32 and factors.shape == (points, len(factor_names)))
            and np.isfinite(logvar).all() and np.isfinite(error).all()
            and (factors is None or np.isfinite(factors).all()))
    if not good:
        found = ", ".join(f"{k} {v.dtype} {list(v.shape)}" for k, v in arrays.items()) or "no arrays"
        raise BundleError(f"{path}: not a readable atlas extra (expected {expected}, all finite; found {found})")
    return AtlasExtra(thumbs, logvar, error, factors, factor_names)


@dataclass(frozen=True)
class Bundle:
    path: Path
    manifest: Manifest

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def variant(self) -> str:
        return self.manifest.variant

    @property
    def latent_dim(self) -> int:
        return self.manifest.latent_dim

    @property
    def class_names(self) -> list[str]:
        return self.manifest.class_names

    @property
    def latent_stats(self) -> dict[str, list[float]]:
        return self.manifest.latent_stats

    @property
    def layout(self) -> str:
        return self.manifest.layout

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of the images the model reads and writes."""
        return tuple(self.manifest.image_shape)

    @property
    def prior(self) -> priors.Prior:
        return self.manifest.latent_prior

    @property
    def encoder_path(self) -> Path:
        return self.path / ENCODER

    @property
    def decoder_path(self) -> Path:
        return self.path / DECODER

    @property
    def atlas_path(self) -> Path:
        return self.path / ATLAS

    def read_atlas(self) -> tuple[np.ndarray, np.ndarray]:
        """The test set's posterior means [M, D] and labels [M], read as untrusted input (untrusted.read_npz)."""
        path = untrusted.contained(self.path, ATLAS, BundleError, ATLAS)
        arrays = untrusted.read_npz(path, BundleError, rows=True)
        z_mean, labels = arrays.get("z_mean"), arrays.get("labels")
        if z_mean is None or labels is None or z_mean.ndim != 2 or z_mean.shape[1] != self.latent_dim:
            found = ", ".join(f"{k} {v.dtype} {list(v.shape)}" for k, v in arrays.items()) or "no arrays"
            raise BundleError(f"{path}: not a readable atlas (expected z_mean [M, {self.latent_dim}] and labels [M]; "
                              f"found {found})")
        return z_mean.astype(np.float32), labels

    @property
    def atlas_extra_path(self) -> Path:
        return self.path / ATLAS_EXTRA

    def read_atlas_extra(self) -> AtlasExtra | None:
        """atlas_extra.npz (thumbnails, z_logvar, recon_error, factors) checked against the atlas' M and D, read as
        untrusted input; None when the bundle has none (an explorer then says why its panel is empty)."""
        path = untrusted.contained(self.path, ATLAS_EXTRA, BundleError, ATLAS_EXTRA)
        if ATLAS_EXTRA not in self.manifest.files or not path.exists():  # unlisted: no checksum vouches for it
            return None
        if not self.atlas_path.is_file():
            raise BundleError(f"{path}: describes the points of {ATLAS}, which the bundle lacks")
        arrays = untrusted.read_npz(path, BundleError, rows=True)
        points = len(self.read_atlas()[0])
        return _check_atlas_extra(arrays, path, points, self.latent_dim, self.manifest.dataset.factor_names)

    def verify_checksums(self) -> None:
        """Raises BundleError unless every file present matches the SHA-256 recorded in bundle.json
        (an optional file, such as the atlas, may be absent)."""
        for filename, entry in self.manifest.files.items():
            path = untrusted.contained(self.path, filename, BundleError, f"{MANIFEST} files")
            if not path.is_file():
                if filename in OPTIONAL_FILES:
                    continue
                raise BundleError(f"{path}: missing (listed in {self.path / MANIFEST})")
            actual = sha256_file(path)
            if actual != entry["sha256"]:
                raise BundleError(f"{path}: SHA-256 {actual} does not match {entry['sha256']} in {MANIFEST} "
                                  f"(corrupt or modified file); if you changed it on purpose, load with "
                                  f"verify=False (--no-verify-checksums)")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def bundled_names() -> list[str]:
    """Names of the models shipped inside the package (e.g. "mnist", "fashion-mnist")."""
    if not BUNDLED_MODELS_DIR.is_dir():
        return []
    return sorted(p.name for p in BUNDLED_MODELS_DIR.iterdir() if (p / MANIFEST).is_file())


def resolve(bundle: str | Path) -> Path:
    """A bundled model's name or a bundle directory -> the bundle directory."""
    if isinstance(bundle, str) and bundle in bundled_names():
        return BUNDLED_MODELS_DIR / bundle
    path = Path(bundle)
    if path.is_dir():
        return path
    names = ", ".join(bundled_names()) or "none installed"
    raise BundleError(f"{bundle!r} is neither a bundled model ({names}) nor a bundle directory")


def read(bundle: str | Path, verify: bool = True) -> Bundle:
    """Reads and validates a bundle's manifest and checks every file against the SHA-256 it records
    (about a millisecond for these files); `verify=False` skips that for bundles edited on purpose."""
    path = resolve(bundle)
    manifest = Manifest.load(path)
    for filename in (ENCODER, DECODER):
        if not untrusted.contained(path, filename, BundleError, filename).is_file():
            raise BundleError(f"{path}: missing {filename}")
    result = Bundle(path, manifest)
    if verify:
        result.verify_checksums()
    return result


def onnx_metadata(manifest: Manifest, role: str) -> dict[str, str]:
    """The metadata_props an ONNX file of this bundle carries: {"latent_atlas.<key>": json}."""
    values = manifest.to_json()
    props = {f"{METADATA_PREFIX}{key}": json.dumps(values[key], sort_keys=True) for key in METADATA_KEYS if key in values}
    props[f"{METADATA_PREFIX}role"] = json.dumps(role)
    return props


def parse_onnx_metadata(props: dict[str, str]) -> dict:
    """Inverse of onnx_metadata: {"latent_atlas.<key>": json} -> {key: value}; other keys are ignored."""
    out = {}
    for key, value in props.items():
        if key.startswith(METADATA_PREFIX):
            try:  # an ONNX file is as untrusted as its bundle: the same strict JSON (untrusted.parse_json)
                out[key[len(METADATA_PREFIX):]] = untrusted.parse_json(value.encode("utf-8"), key)
            except ValueError:
                out[key[len(METADATA_PREFIX):]] = value
    return out


def write_npz(path: Path, **arrays: np.ndarray) -> None:
    """np.savez_compressed with fixed zip timestamps, so the same arrays give the same bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())
