"""The model bundle: the directory that `latent-atlas export` writes and everything else loads.

    BUNDLE_DIR/
        encoder.onnx   image float32 [N, 1, 28, 28] in [0, 1] -> z_mean, z_logvar float32 [N, D]
        decoder.onnx   z float32 [N, D] -> image float32 [N, 1, 28, 28], pixel probabilities
        bundle.json    the manifest below
        atlas.npz      z_mean float32 [M, D] and labels uint8 [M] of the test set (no pickles)

bundle.json keys: schema_version, name, variant ("fp32" | "int8" | "fp16"), latent_dim, image_shape,
pixel_range, dataset {name, class_names (empty or absent: unlabelled), layout (a preprocessing.LAYOUTS
key), source {kind "folder" | "npz" | "idx" | "builtin", path, checksum, counts, split_seed}, files:
{filename: sha256} (built-in datasets)}, training {config, commands,
seed, epoch, weights}, metrics {test_neg_elbo, test_recon, test_kl, test_iw_nll, iw_samples},
latent_stats {mean, std, min, max, p01, p05, p95, p99: one value per latent dim}, files {filename:
{sha256, bytes}}, onnx {opset, encoder, decoder: input/output names and shapes}, versions, export_command.

Each ONNX file also carries the manifest's descriptive keys in its metadata_props, prefixed with
"latent_atlas." and JSON-encoded, so a lone decoder.onnx embedded in another app describes itself.

This module is the single definition of the format: export writes with it, the runtime reads with it.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SCHEMA_VERSION = 1
MANIFEST = "bundle.json"
ENCODER = "encoder.onnx"
DECODER = "decoder.onnx"
ATLAS = "atlas.npz"
VARIANTS = ("fp32", "int8", "fp16")
METADATA_PREFIX = "latent_atlas."
# Manifest keys copied into each ONNX file's metadata_props.
METADATA_KEYS = ("schema_version", "name", "variant", "latent_dim", "image_shape", "pixel_range", "dataset",
                 "training", "metrics", "latent_stats", "versions")

ENCODER_INPUT = "image"
ENCODER_OUTPUTS = ("z_mean", "z_logvar")
DECODER_INPUT = "z"
DECODER_OUTPUT = "image"

BUNDLED_MODELS_DIR = Path(__file__).parent / "models"


class BundleError(ValueError):
    """A bundle directory or file that is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class Bundle:
    path: Path
    manifest: dict

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def variant(self) -> str:
        return self.manifest["variant"]

    @property
    def latent_dim(self) -> int:
        return int(self.manifest["latent_dim"])

    @property
    def class_names(self) -> list[str]:
        """The classes the atlas labels index; empty for a dataset without labels."""
        return list(self.manifest["dataset"].get("class_names") or [])

    @property
    def latent_stats(self) -> dict[str, list[float]]:
        return self.manifest["latent_stats"]

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
        """The test set's posterior means [M, D] and labels [M]."""
        try:
            with np.load(self.atlas_path, allow_pickle=False) as atlas:
                return atlas["z_mean"].astype(np.float32), atlas["labels"]
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise BundleError(f"{self.atlas_path}: not a readable atlas (expected z_mean and labels arrays): {exc}") from exc

    def verify_checksums(self) -> None:
        """Raises BundleError unless every file matches the SHA-256 recorded in bundle.json."""
        for filename, entry in self.manifest["files"].items():
            path = self.path / filename
            if not path.is_file():
                raise BundleError(f"{path}: missing (listed in {self.path / MANIFEST})")
            actual = sha256_file(path)
            if actual != entry["sha256"]:
                raise BundleError(f"{path}: SHA-256 {actual} does not match {entry['sha256']} in {MANIFEST} "
                                  f"(corrupt or modified file)")


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


def read(bundle: str | Path, verify: bool = False) -> Bundle:
    """Reads and validates a bundle's manifest; `verify=True` also checks every file's SHA-256."""
    path = resolve(bundle)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(f"{path}: not a model bundle (no {MANIFEST}); create one with 'latent-atlas export'")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{manifest_path}: not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict):
        raise BundleError(f"{manifest_path}: expected a JSON object")
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise BundleError(f"{manifest_path}: schema_version {version!r} is not supported (expected {SCHEMA_VERSION})")
    required = ("name", "variant", "latent_dim", "image_shape", "dataset", "latent_stats", "files")
    missing = [key for key in required if key not in manifest]
    if missing:
        raise BundleError(f"{manifest_path}: missing keys {missing}")
    for filename in (ENCODER, DECODER):
        if not (path / filename).is_file():
            raise BundleError(f"{path}: missing {filename}")
    result = Bundle(path, manifest)
    if verify:
        result.verify_checksums()
    return result


def onnx_metadata(manifest: dict, role: str) -> dict[str, str]:
    """The metadata_props an ONNX file of this bundle carries: {"latent_atlas.<key>": json}."""
    props = {f"{METADATA_PREFIX}{key}": json.dumps(manifest[key], sort_keys=True) for key in METADATA_KEYS if key in manifest}
    props[f"{METADATA_PREFIX}role"] = json.dumps(role)
    return props


def parse_onnx_metadata(props: dict[str, str]) -> dict:
    """Inverse of onnx_metadata: {"latent_atlas.<key>": json} -> {key: value}; other keys are ignored."""
    out = {}
    for key, value in props.items():
        if key.startswith(METADATA_PREFIX):
            try:
                out[key[len(METADATA_PREFIX):]] = json.loads(value)
            except json.JSONDecodeError:
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
