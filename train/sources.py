"""Your own images as a dataset: a folder, an .npz file or IDX files, read and preprocessed on every core.

    folder  one subfolder per class (the ImageFolder convention: the subfolder names are the class
            names, images may sit deeper inside them); images directly in the folder and no class
            folders = unlabelled. PNG, JPEG, BMP, WebP, GIF (first frame); other files are ignored.
    npz     `images` [N, H, W] or [N, H, W, C] (uint8, or floats in [0, 1]), optional `labels` [N]
            (integers) and `class_names` [K] (strings), optional `factors` [N, F] (numbers) with
            `factor_names` [F] (strings), the known factors each image was made from (what
            `latent-atlas make-dataset sprites` writes); loaded with allow_pickle=False, always.
    idx     a folder with MNIST-style IDX files (`*train-images-idx3-ubyte[.gz]` and its
            `*train-labels-idx1-ubyte[.gz]`, optionally `*t10k-...` or `*test-...` for a test split),
            e.g. your own EMNIST or KMNIST copy.

Every image goes through the runtime's own `preprocess` with the chosen layout and the model's image
shape (grey [H, W] or colour [H, W, 3] uint8 kept), so `encode` treats a new picture exactly like the
training images. Nothing in a source is ever written or moved.
The checksum of a source is the SHA-256 of its `sha256sum`-style listing ("<sha256>  <path>" per
file, sorted by path), so `sha256sum` reproduces it for a folder.

Torch-free: numpy, Pillow and the runtime's preprocessing.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import re
import zipfile
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from latent_atlas.runtime.bundle import sha256_file
from latent_atlas.runtime.bundle_schema import OWN_DATA_SOURCE_KINDS as KINDS
from latent_atlas.runtime.images import to_uint8
from latent_atlas.runtime.image_shape import SEED_IMAGE_SHAPE
from latent_atlas.runtime.preprocessing import is_blank, layout_for, open_image, pixel_values, preprocess

from .data import DATASETS, DatasetError, read_idx

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif")
MAX_CLASSES = 256  # the atlas stores labels as uint8
# Below this many images one process does it all: starting worker processes costs about a second.
PARALLEL_MIN_ITEMS = 512
# Under the "resize" layout every picture is stretched to the model's size, so aspect ratios that differ by
# more than this would distort one class differently from another: refused.
ASPECT_TOLERANCE = 0.05
UNLABELLED = -1

_IDX_IMAGES = re.compile(r"^(?P<prefix>.*?)(?P<split>train|t10k|test)-images-idx3-ubyte(?P<gz>\.gz)?$")


class SourceError(DatasetError):
    """A dataset of your own that cannot be used as it is; the message names the file and what was expected."""


@dataclass(frozen=True)
class SourceFile:
    """One file a source is made of, with the stat fields that tell whether it changed."""

    relpath: str  # POSIX path relative to the source's root (the file's name for an .npz)
    size: int
    mtime_ns: int
    label: int = UNLABELLED  # folders: the class folder's index


@dataclass
class Source:
    kind: str  # "folder", "npz" or "idx"
    path: str  # as the user gave it
    root: Path  # the folder (folder, idx) or the file's folder (npz)
    name: str  # the dataset's name: the folder's or file's name
    files: list[SourceFile]
    class_names: list[str] = field(default_factory=list)  # folders; arrays read theirs when loaded

    def display(self, relpath: str) -> str:
        """A file of the source as the user would name it (with ~ expanded): what is opened and reported."""
        return os.path.join(self.root, relpath) if self.kind != "npz" else self.path

    def signature(self) -> list[list]:
        """[relpath, size, mtime_ns] per file: equal signatures mean unchanged files."""
        return [[f.relpath, f.size, f.mtime_ns] for f in self.files]


# PIL modes of single-channel pictures: a folder of only these is a grey image set.
GREY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F")


@dataclass
class Ingested:
    """A source preprocessed: uint8 images (grey [N, H, W], colour [N, H, W, 3] of the model's shape), their
    labels and where each came from."""

    images: np.ndarray
    labels: np.ndarray  # int32 [N], UNLABELLED (-1) for a dataset without labels
    predefined_test: np.ndarray  # bool [N]: rows of a test split the source itself defines (IDX)
    class_names: list[str]
    checksum: str
    file_hashes: dict[str, str]  # relpath -> sha256
    origins: list[str]  # per row: the file (and, for arrays, the index) it came from
    bad: list[tuple[str, str]] = field(default_factory=list)  # (origin, one-line reason), left out
    pictures: dict[str, list] = field(default_factory=dict)  # folders: relpath -> [width, height, PIL mode]
    preprocessed: int = 0  # how many images this ingest read and preprocessed (the rest came from the cache)
    factors: np.ndarray | None = None  # float32 [N, F]: the known factors of each image (an .npz's), or None
    factor_names: list[str] = field(default_factory=list)
    grey_source: bool = True  # whether every picture of the source was grey (a grey set for a colour model)

    def sizes_and_modes(self) -> tuple[Counter, Counter]:
        """How many of a folder's pictures come in each (width, height) and each PIL mode."""
        return (Counter((w, h) for w, h, _ in self.pictures.values()),
                Counter(mode for _, _, mode in self.pictures.values()))


def is_builtin(dataset: str) -> bool:
    return dataset in DATASETS


def listing_checksum(file_hashes: dict[str, str]) -> str:
    """SHA-256 of the `sha256sum`-style listing of the files, sorted by path."""
    listing = "".join(f"{digest}  {relpath}\n" for relpath, digest in sorted(file_hashes.items()))
    return hashlib.sha256(listing.encode("utf-8")).hexdigest()


def _stat(path: Path, relpath: str, label: int = UNLABELLED) -> SourceFile:
    stat = path.stat()
    return SourceFile(relpath, stat.st_size, stat.st_mtime_ns, label)


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")


def _image_files(folder: str, prefix: str, label: int) -> list[SourceFile]:
    """The images under `folder`, sorted by name at each level, as paths relative to the source's root.
    os.scandir rather than pathlib: listing 60,000 files is then a fraction of a second, which is what
    checking a cache costs. Hidden entries are skipped; symbolic links to folders are not followed."""
    found = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir(follow_symlinks=False):
            found += _image_files(entry.path, f"{prefix}{entry.name}/", label)
        elif _is_image(entry.name) and entry.is_file():
            stat = entry.stat()
            found.append(SourceFile(prefix + entry.name, stat.st_size, stat.st_mtime_ns, label))
    return found


def open_source(spec: str) -> Source:
    """Lists what `spec` (a folder, an .npz file or a folder of IDX files) holds; reads no image yet."""
    path = Path(spec).expanduser()
    if not path.exists():
        builtin = ", ".join(sorted(DATASETS))
        raise SourceError(f"{spec}: no such file or folder; expected a built-in dataset ({builtin}), a folder of "
                          f"images, an .npz file or a folder of IDX files")
    if path.is_file():
        if path.suffix.lower() != ".npz":
            raise SourceError(f"{spec}: expected a folder of images, an .npz file or a folder of IDX files")
        return Source("npz", spec, path.parent, path.stem, [_stat(path, path.name)])
    idx = _idx_files(path)
    if idx:
        return Source("idx", spec, path, path.absolute().name, [_stat(path / name, name) for name in idx])
    return _folder_source(spec, path)


def _folder_source(spec: str, root: Path) -> Source:
    entries = sorted(os.scandir(root), key=lambda e: e.name)
    class_dirs = [e for e in entries if e.is_dir() and not e.name.startswith(".")]
    loose = [Path(e.path) for e in entries if e.is_file() and _is_image(e.name)]
    kinds = "PNG, JPEG, BMP, WebP or GIF"
    if class_dirs and loose:
        raise SourceError(f"{spec}: holds both class folders ({class_dirs[0].name}, ...) and images directly inside "
                          f"({loose[0].name}, ...); expected one subfolder per class, or only images (unlabelled)")
    if not class_dirs:
        if not loose:
            raise SourceError(f"{spec}: no images found; expected {kinds} files in one subfolder per class, "
                              f"or directly in the folder")
        return Source("folder", spec, root, root.absolute().name, _image_files(str(root), "", UNLABELLED))
    if len(class_dirs) > MAX_CLASSES:
        raise SourceError(f"{spec}: {len(class_dirs)} class folders; at most {MAX_CLASSES} classes are supported")
    files: list[SourceFile] = []
    for label, entry in enumerate(class_dirs):
        found = _image_files(entry.path, f"{entry.name}/", label)
        if not found:
            raise SourceError(f"{Path(spec) / entry.name}: empty class folder (no {kinds} images); expected at "
                              f"least one image per class folder: add images or remove the folder")
        files += found
    return Source("folder", spec, root, root.absolute().name, files, [e.name for e in class_dirs])


def _idx_files(folder: Path) -> list[str]:
    """The IDX files of a folder laid out like MNIST's, train split first; [] when it is not one."""
    images = {}
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        match = _IDX_IMAGES.match(entry.name)
        if match and entry.is_file():
            if match["split"] in images:
                raise SourceError(f"{folder}: two IDX {match['split']} image files ({images[match['split']]} and "
                                  f"{entry.name}); expected one dataset per folder")
            images[match["split"]] = entry.name
    if not images:
        return []
    if "train" not in images:
        raise SourceError(f"{folder}: IDX files without a training set; expected a *train-images-idx3-ubyte[.gz] file")
    names = []
    for split in ("train", "t10k", "test"):
        if split in images:
            labels = images[split].replace("-images-idx3-", "-labels-idx1-")
            if not (folder / labels).is_file():
                raise SourceError(f"{folder / images[split]}: no matching labels file; expected {folder / labels}")
            names += [images[split], labels]
    if "t10k" in images and "test" in images:
        raise SourceError(f"{folder}: two IDX test sets ({images['t10k']} and {images['test']}); expected one")
    return names


# ---------------------------------------------------------------------------------------------------
# Preprocessing, on every core


def _one_line(error: BaseException, label: str) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if text.startswith(label) else f"{label}: {text}"


BLANK = "blank (no contrast between ink and background); expected a picture with something in it"


def _preprocess_files(job: tuple[list[str], str, tuple]) -> list[tuple]:
    """Worker: (paths, layout, image shape) -> per file (sha256, uint8 [H, W(, 3)] or None, size, mode, reason
    or None)."""
    paths, layout, image_shape = job
    results = []
    for path in paths:
        digest = size = mode = None
        try:
            digest = sha256_file(Path(path))
            with open_image(path) as image:
                size, mode = image.size, image.mode
                picture = preprocess(image, layout, image_shape)
        except Exception as exc:  # a user's file can fail in any way Pillow can: each is reported, one line
            results.append((digest, None, size, mode, _one_line(exc, path)))
            continue
        blank = is_blank(picture)
        results.append((digest, None if blank else to_uint8(picture), size, mode, f"{path}: {BLANK}" if blank else None))
    return results


def _preprocess_arrays(job: tuple[np.ndarray, str, tuple]) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Worker: (images [n, H, W(, C)], layout, image shape) -> (uint8 [n, H', W'(, 3)] of the model's shape,
    [(index, reason)] of unusable ones)."""
    images, layout, image_shape = job
    out = np.zeros((len(images), *stored_shape(image_shape)), np.uint8)
    unusable = []
    for i, image in enumerate(images):
        try:
            picture = preprocess(image, layout, image_shape)
        except (TypeError, ValueError) as exc:
            unusable.append((i, " ".join(str(exc).split())))
            continue
        if is_blank(picture):
            unusable.append((i, BLANK))
        out[i] = to_uint8(picture)
    return out, unusable


def _run(worker, jobs: list, workers: int) -> list:
    """Runs worker over jobs in order, in `workers` processes (spawned: the trainer's torch threads
    must not be forked); one process when there is little to do."""
    if workers <= 1 or len(jobs) <= 1:
        return [worker(job) for job in jobs]
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(worker, jobs))


def _chunks(n: int, workers: int) -> list[slice]:
    if n < PARALLEL_MIN_ITEMS or workers <= 1:
        return [slice(0, n)]
    size = max(64, min(2048, -(-n // (workers * 8))))  # several chunks per worker keep them all busy
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


def default_workers() -> int:
    """One worker process per core this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def stored_shape(image_shape) -> tuple[int, ...]:
    """How one preprocessed image is stored: grey [H, W], colour [H, W, 3] (uint8)."""
    channels, height, width = image_shape
    return (height, width) if channels == 1 else (height, width, channels)


def ingest(source: Source, layout: str, workers: int | None = None, previous: Ingested | None = None,
           previous_signature: list[list] | None = None, image_shape=SEED_IMAGE_SHAPE) -> Ingested:
    """Reads and preprocesses every image of `source` with `layout` into `image_shape`. For a folder, files
    whose size and modification time match `previous_signature` are taken from `previous` instead of being
    read again (their hash included); arrays are re-read whole when their file changed."""
    layout_for(layout)  # an unknown layout fails before any work
    image_shape = tuple(image_shape)
    workers = workers or default_workers()
    if source.kind == "folder":
        return _ingest_folder(source, layout, workers, previous, previous_signature, image_shape)
    images, labels, predefined_test, class_names, factors, factor_names = _read_arrays(source)
    file_hashes = {f.relpath: sha256_file(source.root / f.relpath) for f in source.files}
    parts = _run(_preprocess_arrays, [(images[s], layout, image_shape) for s in _chunks(len(images), workers)],
                 workers)
    out = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, *stored_shape(image_shape)), np.uint8)
    offsets = np.cumsum([0] + [len(p[0]) for p in parts])
    unusable = {int(offset + i): reason for offset, (_, found) in zip(offsets, parts) for i, reason in found}
    origins = _array_origins(source, predefined_test)
    keep = np.array([i not in unusable for i in range(len(out))], dtype=bool)
    bad = [(origins[i], f"{origins[i]}: {unusable[i]}") for i in sorted(unusable)]
    grey = images.ndim == 3 or images.shape[-1] in (1, 2)
    return Ingested(out[keep], labels[keep], predefined_test[keep], class_names, listing_checksum(file_hashes),
                    file_hashes, [o for o, k in zip(origins, keep) if k], bad, preprocessed=len(out),
                    factors=None if factors is None else factors[keep], factor_names=factor_names, grey_source=grey)


def _array_origins(source: Source, predefined_test: np.ndarray) -> list[str]:
    if source.kind == "npz":
        return [f"{source.path}: images[{i}]" for i in range(len(predefined_test))]
    train_count = int((~predefined_test).sum())
    names = [f.relpath for f in source.files if "-images-" in f.relpath]
    return ([f"{source.display(names[0])}: image {i}" for i in range(train_count)]
            + [f"{source.display(names[-1])}: image {i}" for i in range(len(predefined_test) - train_count)])


def _ingest_folder(source: Source, layout: str, workers: int, previous: Ingested | None,
                   previous_signature: list[list] | None, image_shape: tuple) -> Ingested:
    # relpath -> (sha256, picture or None, [width, height, mode] or None, reason or None) of unchanged files
    known: dict[str, tuple] = {}
    if previous is not None and previous_signature is not None:
        unchanged = {tuple(entry) for entry in previous_signature}
        rows = {origin: i for i, origin in enumerate(previous.origins)}
        reasons = dict(previous.bad)
        for f in source.files:
            shown = source.display(f.relpath)
            if (f.relpath, f.size, f.mtime_ns) in unchanged and (shown in rows or shown in reasons):
                known[f.relpath] = (previous.file_hashes[f.relpath],
                                    previous.images[rows[shown]] if shown in rows else None,
                                    previous.pictures.get(f.relpath), reasons.get(shown))
    todo = [f for f in source.files if f.relpath not in known]
    paths = [source.display(f.relpath) for f in todo]
    for f, (digest, picture, size, mode, reason) in zip(todo, (
            r for part in _run(_preprocess_files, [(paths[s], layout, image_shape) for s in _chunks(len(paths), workers)],
                               workers)
            for r in part)):
        known[f.relpath] = (digest, picture, None if size is None else [*size, mode], reason)

    images, labels, origins, bad, file_hashes, pictures = [], [], [], [], {}, {}
    for f in source.files:
        shown = source.display(f.relpath)
        digest, picture, info, reason = known[f.relpath]
        file_hashes[f.relpath] = digest or "unreadable"
        if info is not None:
            pictures[f.relpath] = info
        if picture is None:
            bad.append((shown, reason))
            continue
        images.append(picture)
        labels.append(f.label)
        origins.append(shown)
    stacked = np.stack(images) if images else np.zeros((0, *stored_shape(image_shape)), np.uint8)
    grey = all(mode in GREY_MODES for _, _, mode in pictures.values())
    return Ingested(stacked, np.array(labels, np.int32), np.zeros(len(images), bool), list(source.class_names),
                    listing_checksum(file_hashes), file_hashes, origins, bad, pictures, preprocessed=len(todo),
                    grey_source=grey)


def check_aspect_ratios(source: Source, ingested: Ingested, layout: str, image_shape=SEED_IMAGE_SHAPE) -> None:
    """Under the plain-resize layout, pictures of different shapes would be stretched differently."""
    found = layout_for(layout)
    if found.crop or found.fit != "stretch" or not ingested.pictures:
        return
    ratios = {relpath: round(w / h, 3) for relpath, (w, h, _) in ingested.pictures.items()}
    counts = Counter(ratios.values())
    common, how_many = counts.most_common(1)[0]
    for relpath, ratio in ratios.items():
        if abs(ratio / common - 1.0) > ASPECT_TOLERANCE:
            w, h, _ = ingested.pictures[relpath]
            raise SourceError(f"{source.display(relpath)}: {w}x{h}, aspect ratio {ratio:g}, but most images ({how_many}) "
                              f"have {common:g}; the resize layout stretches every picture to {image_shape[2]}x"
                              f"{image_shape[1]}, so expected one shape: crop the images to one aspect ratio, or use "
                              f"--layout pad or crop (or mnist or fashion-mnist for grey digit-like images)")


# ---------------------------------------------------------------------------------------------------
# Arrays: .npz and IDX


def _read_arrays(source: Source) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], np.ndarray | None, list[str]]:
    """(images [N, H, W(, C)], labels int32 [N], predefined_test bool [N], class names, factors float32 [N, F]
    or None, factor names), validated."""
    factors, factor_names = None, []
    if source.kind == "npz":
        images, labels, class_names, factors, factor_names = _read_npz(source.root / source.files[0].relpath,
                                                                       source.path)
        predefined_test = np.zeros(len(images), bool)
    else:
        images, labels, predefined_test = _read_idx(source)
        class_names = None
    label = source.path
    if labels is None:
        return images, np.full(len(images), UNLABELLED, np.int32), predefined_test, [], factors, factor_names
    if labels.size and int(labels.min()) < 0:
        raise SourceError(f"{label}: labels out of range: found {int(labels.min())}; expected integers from 0")
    top = int(labels.max()) if labels.size else -1
    if class_names is None:
        class_names = [str(k) for k in range(top + 1)]
    elif top >= len(class_names):
        raise SourceError(f"{label}: labels out of range: found {top}, but class_names lists {len(class_names)} "
                          f"classes; expected labels from 0 to {len(class_names) - 1}")
    if len(class_names) > MAX_CLASSES:
        raise SourceError(f"{label}: {len(class_names)} classes; at most {MAX_CLASSES} are supported")
    return images, labels.astype(np.int32), predefined_test, class_names, factors, factor_names


def _strings(array: np.ndarray) -> list[str]:
    return [c.decode("utf-8") if isinstance(c, bytes) else str(c) for c in array.tolist()]


def _read_npz(path: Path, label: str) -> tuple[np.ndarray, np.ndarray | None, list[str] | None, np.ndarray | None,
                                                list[str]]:
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise SourceError(f"{label}: not a readable .npz file ({_one_line(exc, label)[len(label) + 2:]})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise SourceError(f"{label}: a single .npy array; expected an .npz archive with an 'images' array")
    with archive:
        if "images" not in archive.files:
            found = ", ".join(archive.files) or "nothing"
            raise SourceError(f"{label}: no 'images' array (found {found}); expected images [N, H, W] or "
                              f"[N, H, W, C], optional labels [N] and class_names [K]")
        arrays = {}
        for key in ("images", "labels", "class_names", "factors", "factor_names"):
            if key not in archive.files:
                continue
            try:
                arrays[key] = archive[key]
            except ValueError as exc:  # object arrays need pickles, which are never loaded
                raise SourceError(f"{label}: '{key}' is an object array, which would need pickles to load "
                                  f"({exc}); expected plain numeric arrays (strings for class_names)") from None
    images = arrays["images"]
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 2, 3, 4)) or len(images) == 0:
        raise SourceError(f"{label}: 'images' has shape {images.shape}; expected [N, H, W] or [N, H, W, C] with "
                          f"N >= 1 and C in 1..4")
    for start in range(0, len(images), 4096):  # the runtime's own pixel rules, in bounded memory
        try:
            pixel_values(images[start:start + 4096])
        except (TypeError, ValueError) as exc:
            raise SourceError(f"{label}: 'images': {exc}") from None
    labels = arrays.get("labels")
    if labels is not None and (labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) != len(images)):
        raise SourceError(f"{label}: 'labels' is {labels.dtype} {labels.shape}; expected {len(images)} integers "
                          f"[N], one per image")
    class_names = arrays.get("class_names")
    if class_names is not None:
        if class_names.ndim != 1 or class_names.dtype.kind not in "US":
            raise SourceError(f"{label}: 'class_names' is {class_names.dtype} {class_names.shape}; expected a 1-D "
                              f"array of strings")
        if labels is None:
            raise SourceError(f"{label}: 'class_names' without 'labels'; expected labels [N] to go with them")
        class_names = _strings(class_names)
    factors, factor_names = _read_factors(arrays, len(images), label)
    return images, labels, class_names, factors, factor_names


def _read_factors(arrays: dict, count: int, label: str) -> tuple[np.ndarray | None, list[str]]:
    """An .npz's optional `factors` [N, F] and `factor_names` [F], validated: both or neither."""
    factors, names = arrays.get("factors"), arrays.get("factor_names")
    if factors is None and names is None:
        return None, []
    if factors is None or names is None:
        given, missing = ("factors", "factor_names") if names is None else ("factor_names", "factors")
        raise SourceError(f"{label}: '{given}' without '{missing}'; expected both (factors [N, F] and their F names) "
                          f"or neither")
    if factors.ndim != 2 or factors.dtype.kind not in "iuf" or len(factors) != count:
        raise SourceError(f"{label}: 'factors' is {factors.dtype} {factors.shape}; expected {count} rows of numbers "
                          f"[N, F], one per image")
    if names.ndim != 1 or names.dtype.kind not in "US" or len(names) != factors.shape[1]:
        raise SourceError(f"{label}: 'factor_names' is {names.dtype} {names.shape}; expected {factors.shape[1]} "
                          f"strings, one per column of 'factors'")
    factors = factors.astype(np.float32)
    if not np.isfinite(factors).all():
        raise SourceError(f"{label}: 'factors' holds non-finite values (NaN or infinity); expected finite numbers")
    return factors, _strings(names)


def _read_idx(source: Source) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    images, labels, test = [], [], []
    for images_name, labels_name in zip(source.files[0::2], source.files[1::2]):
        image_path, label_path = source.root / images_name.relpath, source.root / labels_name.relpath
        part_images = read_idx(image_path, ndim=3)
        part_labels = read_idx(label_path, ndim=1)
        if len(part_images) != len(part_labels):
            raise SourceError(f"{image_path} holds {len(part_images)} images but {label_path} holds "
                              f"{len(part_labels)} labels; expected the same count")
        images.append(part_images)
        labels.append(part_labels)
        test.append(np.full(len(part_images), not images_name.relpath.split("-images-")[0].endswith("train"), bool))
    shapes = {part.shape[1:] for part in images}
    if len(shapes) > 1:
        raise SourceError(f"{source.path}: the IDX files hold images of different sizes {sorted(shapes)}; expected one")
    return np.concatenate(images), np.concatenate(labels).astype(np.int32), np.concatenate(test)
