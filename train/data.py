"""MNIST and Fashion-MNIST: find, verify, download and parse the original IDX files.

The files are the original distribution ones (`train-images-idx3-ubyte.gz`, ...), kept gzipped on
disk under `<data_dir>/<dataset>/`. Every file is checked against its published SHA-256 before it
is parsed, so a half-downloaded or tampered file fails loudly instead of training on garbage.

This module is deliberately torch-free (numpy, the standard library and the runtime's file hashing):
the runtime and the apps import it in environments where torch is not installed.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence, Union

import numpy as np

from latent_atlas.runtime.bundle import sha256_file
from latent_atlas.runtime.cache import user_cache_dir
from latent_atlas.runtime.files import permissions_for
from latent_atlas.runtime.preprocessing import IMAGE_SIDE, to_float  # noqa: F401  (defined once there; kept importable here)
DOWNLOAD_TIMEOUT_S = 30.0
USER_AGENT = "latent-atlas-dataset-loader/0.1 (+python-urllib)"
DATA_DIR_ENV = "LATENT_ATLAS_DATA"
MIRRORS_ENV = "LATENT_ATLAS_MIRRORS"

# The split -> (images file, labels file) naming is fixed by the IDX distribution convention,
# which both datasets follow, so it is not repeated in each registry entry.
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

_IDX_UINT8 = 0x08
_GZIP_MAGIC = b"\x1f\x8b"


class DatasetError(ValueError):
    """A dataset file is missing, corrupt, or cannot be fetched; the message says how to fix it."""


@dataclass(frozen=True)
class DatasetFile:
    filename: str
    sha256: str
    size: int  # compressed size in bytes, as distributed


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    files: tuple[DatasetFile, ...]
    class_names: tuple[str, ...]
    mirrors: tuple[str, ...]

    def file(self, filename: str) -> DatasetFile:
        for entry in self.files:
            if entry.filename == filename:
                return entry
        raise DatasetError(f"dataset {self.name!r} has no file {filename!r}")


@dataclass(frozen=True)
class LoadedDataset:
    info: DatasetInfo
    train_images: np.ndarray  # uint8 [60000, 28, 28]
    train_labels: np.ndarray  # uint8 [60000]
    test_images: np.ndarray  # uint8 [10000, 28, 28]
    test_labels: np.ndarray  # uint8 [10000]


def _files(*entries: tuple[str, str, int]) -> tuple[DatasetFile, ...]:
    return tuple(DatasetFile(name, sha, size) for name, sha, size in entries)


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        name="mnist",
        files=_files(
            ("train-images-idx3-ubyte.gz", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
            ("train-labels-idx1-ubyte.gz", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
            ("t10k-images-idx3-ubyte.gz", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
            ("t10k-labels-idx1-ubyte.gz", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
        ),
        class_names=tuple(str(digit) for digit in range(10)),
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
    ),
    "fashion-mnist": DatasetInfo(
        name="fashion-mnist",
        files=_files(
            ("train-images-idx3-ubyte.gz", "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880),
            ("train-labels-idx1-ubyte.gz", "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515),
            ("t10k-images-idx3-ubyte.gz", "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102),
            ("t10k-labels-idx1-ubyte.gz", "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148),
        ),
        class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                     "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
    ),
}

DatasetLike = Union[str, DatasetInfo]
PathLike = Union[str, "os.PathLike[str]"]

# (path, inode, size, mtime_ns) -> sha256 hex. Hashing the 26 MB Fashion-MNIST training images on
# every load is wasteful; any rewrite of the file changes at least one of the key's fields.
_hash_cache: dict[tuple[str, int, int, int], str] = {}


def resolve_data_dir(data_dir: PathLike | None = None) -> Path:
    """The data root: `data_dir` if given, else $LATENT_ATLAS_DATA, else a per-user cache dir."""
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser().absolute()
    from_env = os.environ.get(DATA_DIR_ENV, "").strip()
    if from_env:
        return Path(from_env).expanduser().absolute()
    return user_cache_dir("datasets")


def get_info(dataset: DatasetLike) -> DatasetInfo:
    """Look a dataset up by name; a DatasetInfo passes through (tests and custom mirrors use that)."""
    if isinstance(dataset, DatasetInfo):
        return dataset
    try:
        return DATASETS[dataset]
    except KeyError:
        raise DatasetError(f"unknown dataset {dataset!r}; valid names: {', '.join(sorted(DATASETS))}") from None


def read_idx(path: PathLike, ndim: int | None = None) -> np.ndarray:
    """Parse a (gzipped or plain) uint8 IDX file; `ndim` (1 labels, 3 images) rejects the wrong kind."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as exc:
            raise DatasetError(f"{path}: not a valid gzip stream ({exc}); the file is truncated or corrupt") from None
    else:
        data = raw

    if len(data) < 4 or data[0:2] != b"\x00\x00":
        raise DatasetError(
            f"{path}: expected a gzip-compressed IDX file (gzip magic 1f8b or IDX magic 0000080x), "
            f"found leading bytes {data[:4].hex() or '(empty file)'}"
        )
    dtype_code, file_ndim = data[2], data[3]
    if dtype_code != _IDX_UINT8:
        raise DatasetError(f"{path}: expected IDX dtype byte 0x08 (uint8), found 0x{dtype_code:02x}")
    if file_ndim not in (1, 3) or (ndim is not None and file_ndim != ndim):
        expected = {1: "0x00000801 (labels)", 3: "0x00000803 (images)"}.get(
            ndim, "0x00000801 (labels) or 0x00000803 (images)")
        raise DatasetError(f"{path}: expected IDX magic {expected}, found 0x{int.from_bytes(data[:4], 'big'):08x}")

    header_size = 4 + 4 * file_ndim
    if len(data) < header_size:
        raise DatasetError(f"{path}: expected a {header_size}-byte IDX header, found only {len(data)} bytes")
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(file_ndim))
    expected_bytes = int(np.prod(dims, dtype=np.int64))
    found_bytes = len(data) - header_size
    if found_bytes != expected_bytes:
        what = "labels" if file_ndim == 1 else f"image data ({' x '.join(map(str, dims))})"
        why = "truncated or corrupt file" if found_bytes < expected_bytes else "trailing data; corrupt file"
        raise DatasetError(
            f"{path}: expected {expected_bytes} bytes of {what} after the header, found {found_bytes} ({why})"
        )
    # Copy so callers get a writable array that does not pin the decompressed buffer.
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(dims).copy()


def file_sha256(path: PathLike) -> str:
    """Stream-hash a file, remembering the result for as long as the file is unchanged."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.absolute()), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if key not in _hash_cache:
        _hash_cache[key] = sha256_file(path)
    return _hash_cache[key]


def _mirror_list(info: DatasetInfo, mirrors: Sequence[str] | None) -> list[str]:
    # Explicit argument beats the environment, which beats the registry: users behind a firewall
    # set LATENT_ATLAS_MIRRORS once, tests pass mirrors= directly.
    if mirrors is None:
        from_env = os.environ.get(MIRRORS_ENV, "")
        mirrors = [m.strip() for m in from_env.split(",") if m.strip()] or list(info.mirrors)
    return list(mirrors)


def _move_aside(path: Path) -> Path:
    # Never delete a user's file: it may be the only copy of something they care about.
    target = path.with_name(path.name + ".corrupt")
    counter = 2
    while target.exists():
        target = path.with_name(f"{path.name}.corrupt.{counter}")
        counter += 1
    os.replace(path, target)
    return target


def _describe_failure(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"cannot connect ({exc.reason})"
    if isinstance(exc, TimeoutError):
        return f"timed out after {DOWNLOAD_TIMEOUT_S:g} s"
    return f"{type(exc).__name__}: {exc}"


def _download(url: str, entry: DatasetFile, target: Path) -> None:
    """Fetch `url` to `target` atomically: only bytes with the right size and SHA-256 land there."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    tmp = tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", suffix=".part", delete=False)
    try:
        digest, received = hashlib.sha256(), 0
        with tmp, urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                received += len(chunk)
                if received > entry.size:  # a wrong file: stop before filling the disk with it
                    raise DatasetError(f"served more than the expected {entry.size} bytes")
                digest.update(chunk)
                tmp.write(chunk)
        if received != entry.size:
            raise DatasetError(f"served {received} bytes, expected {entry.size}")
        if digest.hexdigest() != entry.sha256:
            raise DatasetError(f"served bytes with SHA-256 {digest.hexdigest()}, expected {entry.sha256}")
        os.chmod(tmp.name, permissions_for(target, 0o666))  # a data directory is often shared
        os.replace(tmp.name, target)
    finally:
        if os.path.exists(tmp.name):
            os.unlink(tmp.name)


def _missing_files_error(info: DatasetInfo, directory: Path, missing: list[str],
                         failures: list[str], download: bool, corrupt: dict[str, str] | None = None) -> DatasetError:
    """One line that says which file is wrong and how, then what to do, then the details."""
    corrupt = {name: problem for name, problem in (corrupt or {}).items() if name in missing}
    if corrupt:
        lines = [next(iter(corrupt.values())) + ", and no fresh copy could be downloaded"]
        lines += [f"  also: {problem}" for problem in list(corrupt.values())[1:]]
        others = [name for name in missing if name not in corrupt]
        if others:
            lines.append(f"  also missing: {', '.join(others)}")
    else:
        lines = [f"missing {info.name} files in {directory}: {', '.join(missing)}"]
    lines += [
        f"To fix: put the original gzipped files into {directory}{os.sep}",
        f"  or point at an existing copy with --data-dir DIR or {DATA_DIR_ENV}=DIR "
        f"(DIR must contain {info.name}{os.sep}<files>),",
        f"  or list other mirrors (base URLs) in {MIRRORS_ENV}=URL1,URL2.",
    ]
    if not download:
        lines.append("Downloading is disabled (download=False).")
    elif failures:
        lines.append("Tried these mirrors:")
        lines += [f"  {failure}" for failure in failures]
    return DatasetError("\n".join(lines))


def ensure_files(dataset: DatasetLike, data_dir: PathLike | None = None, download: bool = True,
                 mirrors: Sequence[str] | None = None, filenames: Iterable[str] | None = None,
                 ) -> dict[str, Path]:
    """Make sure the dataset's files (or just `filenames`) are on disk and verified; return their paths."""
    info = get_info(dataset)
    directory = resolve_data_dir(data_dir) / info.name
    entries = [info.file(name) for name in filenames] if filenames is not None else list(info.files)
    paths = {entry.filename: directory / entry.filename for entry in entries}

    missing: list[DatasetFile] = []
    corrupt: dict[str, str] = {}  # filename -> what was wrong with the local copy, and where it went
    for entry in entries:
        path = paths[entry.filename]
        if not path.exists():
            missing.append(entry)
            continue
        actual = file_sha256(path)
        if actual == entry.sha256:
            continue
        problem = (f"{path}: SHA-256 mismatch: expected {entry.sha256}, found {actual} "
                   f"({path.stat().st_size} bytes, expected {entry.size}); the file is corrupt or incomplete")
        if not download:
            raise DatasetError(f"{problem}. Delete it, or allow downloading so it can be re-fetched.")
        try:
            moved = _move_aside(path)
        except OSError as exc:
            raise DatasetError(f"{problem}. It could not be moved aside ({exc}); delete it by hand.") from None
        print(f"latent-atlas: {problem}; moved it to {moved.name} and will download it again", file=sys.stderr)
        corrupt[entry.filename] = f"{problem}; moved it to {moved.name}"
        missing.append(entry)

    if not missing:
        return paths
    if not download:
        raise _missing_files_error(info, directory, [e.filename for e in missing], [], download=False)

    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"cannot create the data directory {directory}: {exc}. "
                           f"Point {DATA_DIR_ENV} or --data-dir at a writable directory.") from None

    bases = _mirror_list(info, mirrors)
    for index, entry in enumerate(missing):
        failures = []
        for base in bases:
            url = base.rstrip("/") + "/" + entry.filename
            print(f"latent-atlas: downloading {url} ({entry.size / 1e6:.1f} MB)", file=sys.stderr)
            try:
                _download(url, entry, paths[entry.filename])
                break
            except (DatasetError, OSError, http.client.HTTPException, ValueError) as exc:
                # OSError covers URLError/HTTPError, refused connections and timeouts; HTTPException a
                # connection cut mid-body; ValueError a malformed mirror URL.
                reason = str(exc) if isinstance(exc, DatasetError) else _describe_failure(exc)
                failures.append(f"{base}: {entry.filename}: {reason}")
                print(f"latent-atlas: mirror {base} failed for {entry.filename}: {reason}", file=sys.stderr)
        else:
            # Every mirror failed this file; the rest would most likely fail the same way, one
            # timeout at a time, so report now instead of making the user wait for all of them.
            remaining = [e.filename for e in missing[index:]]
            raise _missing_files_error(info, directory, remaining, failures or ["(no mirrors configured)"], True, corrupt)
        file_sha256(paths[entry.filename])  # prime the cache: the caller is about to verify it again
    return paths


def load_split(dataset: DatasetLike = "mnist", split: str = "train", data_dir: PathLike | None = None,
               download: bool = True, mirrors: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 [N, 28, 28] and labels uint8 [N] of one split, verified against the registry."""
    info = get_info(dataset)
    if split not in SPLIT_FILES:
        raise DatasetError(f"unknown split {split!r}; valid names: {', '.join(SPLIT_FILES)}")
    images_name, labels_name = SPLIT_FILES[split]
    paths = ensure_files(info, data_dir, download=download, mirrors=mirrors, filenames=SPLIT_FILES[split])

    images = read_idx(paths[images_name], ndim=3)
    labels = read_idx(paths[labels_name], ndim=1)
    if images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise DatasetError(f"{paths[images_name]}: expected {IMAGE_SIDE}x{IMAGE_SIDE} images, "
                           f"found {images.shape[1]}x{images.shape[2]}")
    if len(images) != len(labels):
        raise DatasetError(f"{paths[images_name]} holds {len(images)} images but "
                           f"{paths[labels_name]} holds {len(labels)} labels; expected the same count")
    num_classes = len(info.class_names)
    if len(labels) and int(labels.max()) >= num_classes:
        raise DatasetError(f"{paths[labels_name]}: expected labels in 0..{num_classes - 1}, "
                           f"found {int(labels.max())}")
    return images, labels


def load_dataset(dataset: DatasetLike = "mnist", data_dir: PathLike | None = None,
                 download: bool = True, mirrors: Sequence[str] | None = None) -> LoadedDataset:
    """Both splits of a dataset."""
    info = get_info(dataset)
    train_images, train_labels = load_split(info, "train", data_dir, download, mirrors)
    test_images, test_labels = load_split(info, "test", data_dir, download, mirrors)
    return LoadedDataset(info, train_images, train_labels, test_images, test_labels)


# Fixed, not the run's seed: every run on a dataset holds out the same images, so their validation
# figures compare.
VALIDATION_SEED = 0


def validation_split(n: int, val_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(training indices, validation indices) of a training set of n images: `val_size` of them chosen
    at random with VALIDATION_SEED, both in their original order."""
    if not 0 <= val_size < n:
        raise DatasetError(f"cannot hold out {val_size} validation images from a training set of {n}; "
                           f"expected a --val-size from 0 to {n - 1}")
    held_out = np.zeros(n, dtype=bool)
    held_out[np.random.default_rng(VALIDATION_SEED).permutation(n)[:val_size]] = True
    return np.flatnonzero(~held_out), np.flatnonzero(held_out)

