"""The data of a run: a built-in dataset, or your own images preprocessed once, cached, and split.

`prepare(config, run_dir)` is what training, evaluation and export call. For your own images
(train/sources.py) it

  - preprocesses every image with the run's layout into the run's image shape on every core, once: the
    result is cached in RUN_DIR/data-cache/ with the source's checksum, the layout, the image shape and
    the size and modification time of each file, and rebuilt (only the changed files, for a folder) when
    any of them changes;
  - splits the images into train / validation / test with a seed, per class, so each class is in
    every split; the same source (checksum) and seed always give the same split;
  - writes RUN_DIR/dataset.json: name, class names, layout, the source (kind, path, checksum,
    counts, split seed), the names of the images' known factors (an .npz's `factor_names`) and every
    file with its SHA-256, its class and its split;
  - refuses to resume or export a run whose source changed since it was trained.

The record it returns (`PreparedData.record()`) is what checkpoint.json and the bundle's
`dataset` key hold. Torch-free.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from latent_atlas.runtime.bundle import sha256_file
from latent_atlas.runtime.files import atomic_write
from latent_atlas.runtime.image_shape import SEED_IMAGE_SHAPE, shape_text
from latent_atlas.runtime.preprocessing import PREPROCESSING_VERSION, check_layout, default_layout

from . import data, sources
from .config import TrainConfig
from .run_state import RunState
from .sources import Ingested, Source, SourceError

CACHE_DIR = "data-cache"
CACHE_FORMAT = "latent-atlas-data-cache"
CACHE_VERSION = 1
RECORD_FILE = "dataset.json"
SPLITS = ("train", "validation", "test")
# With --skip-bad-images at most this share of a source may be unusable; more means a wrong folder.
MAX_SKIPPED_FRACTION = 0.05
BAD_FILES_SHOWN = 5
# Largest class over smallest above this: the imbalance is reported.
IMBALANCE_RATIO = 2.0


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


@dataclass(frozen=True)
class PreparedData:
    """A run's images (uint8, grey [N, H, W] or colour [N, H, W, 3]) and labels (int [N]) per split, and where
    they came from; for a source with known factors (an .npz's `factors`), the test split's."""

    name: str
    class_names: tuple[str, ...]  # empty: unlabelled
    layout: str
    source: dict  # kind, path, checksum, counts, split_seed, ...
    train_images: np.ndarray
    train_labels: np.ndarray
    validation_images: np.ndarray
    validation_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    files: dict | None = None  # built-in datasets: {filename: sha256}
    test_factors: np.ndarray | None = None  # float32 [N_test, F], the test images' known factors, or None
    factor_names: tuple[str, ...] = ()  # the columns of test_factors

    @property
    def eval_split(self) -> str:
        """The split that picks the best epoch: validation where there is one (--val-size 0: test)."""
        return "validation" if len(self.validation_images) else "test"

    def atlas_labels(self) -> np.ndarray:
        """The test split's labels as the atlas stores them (uint8; all 0 for an unlabelled dataset)."""
        return np.maximum(self.test_labels, 0).astype(np.uint8)

    def record(self) -> dict:
        """The `dataset` entry of checkpoint.json and of the bundle's manifest."""
        out = {"name": self.name, "class_names": list(self.class_names), "layout": self.layout, "source": self.source}
        if self.files is not None:
            out["files"] = self.files
        if self.factor_names:
            out["factor_names"] = list(self.factor_names)
        return out


def prepare(config: TrainConfig, run_dir: str | Path, data_dir: str | Path | None = None, recorded: dict | None = None,
            log: Callable[[str], None] = _stderr, workers: int | None = None, write: bool = True) -> PreparedData:
    """The run's data. `recorded`: the `dataset` record of the run's checkpoint when resuming or
    exporting; its checksum must match the source's. write=False leaves the run directory alone (the
    cache and dataset.json): what the other ranks of a data-parallel job do once rank 0 has written them."""
    if sources.is_builtin(config.dataset):
        return _builtin(config, data_dir)
    layout = config.layout or default_layout(config.image_shape)
    check_layout(layout, config.image_shape)
    shape = tuple(config.image_shape)
    run_dir = Path(run_dir)
    cache = _Cache(run_dir / CACHE_DIR)
    cached = cache.load(config.dataset, layout, shape)
    expected = ((recorded or {}).get("source") or {}).get("checksum")

    if not Path(config.dataset).expanduser().exists() and cached is not None and expected == cached[0].checksum:
        # The images the run was trained on, preprocessed: enough to resume, evaluate or export it.
        log(f"{config.dataset}: not found; using the run's preprocessed copy in {cache.path} (checksum {expected[:16]})")
        ingested, source = cached[0], None
    else:
        source = sources.open_source(config.dataset)
        if cached is not None and cached[1] == source.signature():
            ingested = cached[0]
        else:
            previous, signature = cached if cached is not None else (None, None)
            start = time.perf_counter()
            ingested = sources.ingest(source, layout, workers, previous, signature, shape)
            _check_unchanged(config, ingested, expected)  # before saving: the run's copy must survive a refusal
            if write:
                cache.save(config.dataset, layout, shape, ingested, source.signature())
            log(f"{config.dataset}: preprocessed {ingested.preprocessed:,} image(s) with the {layout} layout to "
                f"{shape_text(shape)} on "
                f"{workers or sources.default_workers()} core(s) in {time.perf_counter() - start:.1f} s"
                + (f" ({len(ingested.images) + len(ingested.bad) - ingested.preprocessed:,} unchanged, from the cache)"
                   if previous is not None else "") + (f"; cached in {cache.path}" if write else ""))
        _check_unchanged(config, ingested, expected)
        sources.check_aspect_ratios(source, ingested, layout, shape)
    _check_bad(config, ingested, log)
    _report_pictures(ingested, layout, shape, log)
    _report_channels(config, ingested, shape, log)
    split = split_rows(ingested, config, source)
    prepared = _assemble(config, ingested, split, layout, source.kind if source else recorded["source"]["kind"],
                         source.name if source else recorded["name"])
    _report_counts(prepared, ingested, log)
    if write:
        _write_record(run_dir, prepared, ingested, split)
    return prepared


def for_run(run_dir: str | Path, state: RunState, data_dir: str | Path | None = None,
            log: Callable[[str], None] = _stderr) -> PreparedData:
    """The data a trained run used, from its checkpoint's state (export and evaluation)."""
    return prepare(state.config, run_dir, data_dir, recorded=state.dataset, log=log)


def _builtin(config: TrainConfig, data_dir) -> PreparedData:
    if tuple(config.image_shape) != SEED_IMAGE_SHAPE:
        raise ValueError(f"{config.dataset} is {shape_text(SEED_IMAGE_SHAPE)}; an image shape of "
                         f"{shape_text(tuple(config.image_shape))} (--image-size, --channels) is for your own images")
    if config.layout not in (None, config.dataset):
        raise ValueError(f"--layout is for your own images; {config.dataset} is already 28x28 in its own layout "
                         f"({config.dataset})")
    loaded = data.load_dataset(config.dataset, data_dir)
    files = {f.filename: f.sha256 for f in loaded.info.files}
    # The built-in sets come split in train and test; validation is a fixed hold-out of train (--val-size).
    train, validation = data.validation_split(len(loaded.train_images), config.val_size)
    counts = {"train": len(train), "validation": len(validation), "test": len(loaded.test_images)}
    source = {"kind": "builtin", "path": loaded.info.name, "checksum": sources.listing_checksum(files),
              "counts": counts, "split_seed": data.VALIDATION_SEED if config.val_size else None}
    return PreparedData(loaded.info.name, tuple(loaded.info.class_names), loaded.info.name, source,
                        loaded.train_images[train], loaded.train_labels[train],
                        loaded.train_images[validation], loaded.train_labels[validation],
                        loaded.test_images, loaded.test_labels, files)


# ---------------------------------------------------------------------------------------------------
# Checks and reports


def _check_unchanged(config: TrainConfig, ingested: Ingested, expected: str | None) -> None:
    if expected is not None and ingested.checksum != expected:
        raise SourceError(f"{config.dataset}: changed since this run was trained (checksum {expected[:16]}... "
                          f"recorded, {ingested.checksum[:16]}... now); restore the original images, or train a "
                          f"new run on the new ones")


def _check_bad(config: TrainConfig, ingested: Ingested, log) -> None:
    """Unreadable or blank pictures: an error naming the first, or (--skip-bad-images) a warning."""
    bad = ingested.bad
    total = len(ingested.images) + len(bad)
    if not bad:
        return
    first = bad[0][1]
    if not config.skip_bad_images:
        more = f" (and {len(bad) - 1} more unusable file(s))" if len(bad) > 1 else ""
        raise SourceError(f"{first}{more}; fix or remove it, or pass --skip-bad-images to leave out a few "
                          f"(at most {MAX_SKIPPED_FRACTION:.0%}) with a warning")
    allowed = math.floor(MAX_SKIPPED_FRACTION * total)
    if len(bad) > allowed:
        raise SourceError(f"{config.dataset}: {len(bad)} of {total} images are unusable, more than the "
                          f"{MAX_SKIPPED_FRACTION:.0%} --skip-bad-images leaves out; the first: {first}")
    shown = "; ".join(reason for _, reason in bad[:BAD_FILES_SHOWN])
    more = f"; and {len(bad) - BAD_FILES_SHOWN} more" if len(bad) > BAD_FILES_SHOWN else ""
    log(f"warning: left out {len(bad)} of {total} images: {shown}{more}")


def _report_pictures(ingested: Ingested, layout: str, shape: tuple[int, int, int], log) -> None:
    sizes, modes = ingested.sizes_and_modes()
    if len(sizes) > 1 or len(modes) > 1:
        areas = sorted(sizes, key=lambda s: s[0] * s[1])
        log(f"note: {len(sizes)} picture sizes ({areas[0][0]}x{areas[0][1]} to {areas[-1][0]}x{areas[-1][1]}) and "
            f"mode(s) {', '.join(sorted(modes))}: all preprocessed to {shape[2]}x{shape[1]} "
            f"{'grey' if shape[0] == 1 else 'RGB'} with the {layout} layout")


def _report_channels(config: TrainConfig, ingested: Ingested, shape: tuple[int, int, int], log) -> None:
    """A grey image set for a colour model, or colour pictures for a grey one, is converted: said once."""
    if shape[0] == 3 and ingested.grey_source:
        log(f"note: {config.dataset}: grey pictures for a colour model (--channels 3): each repeated into three equal "
            f"channels")
    elif shape[0] == 1 and not ingested.grey_source:
        log(f"note: {config.dataset}: colour pictures for a grey model: turned into their luma; pass --channels 3 "
            f"to keep the colour")


def _report_counts(prepared: PreparedData, ingested: Ingested, log) -> None:
    counts = prepared.source["counts"]
    log(f"{prepared.name}: {counts['train']:,} training, {counts['validation']:,} validation, {counts['test']:,} test "
        f"images; " + (f"{len(prepared.class_names)} classes" if prepared.class_names else "unlabelled"))
    per_class = {name: n for name, n in prepared.source.get("class_counts", {}).items() if n > 0}
    if len(per_class) > 1:
        most, fewest = max(per_class, key=per_class.get), min(per_class, key=per_class.get)
        if per_class[most] > IMBALANCE_RATIO * per_class[fewest]:
            log(f"warning: class imbalance: {most!r} has {per_class[most]:,} images, {fewest!r} {per_class[fewest]:,} "
                f"({per_class[most] / per_class[fewest]:.1f}x); the big classes will dominate the map")
    absent = [name for name, n in prepared.source.get("class_counts", {}).items() if n == 0]
    if absent:
        log(f"warning: {len(absent)} class(es) without images: {', '.join(absent[:10])}")


# ---------------------------------------------------------------------------------------------------
# The split


def split_rows(ingested: Ingested, config: TrainConfig, source: Source | None = None) -> np.ndarray:
    """Per image: 0 train, 1 validation, 2 test. Seeded and per class (each class in every split);
    a test split the source defines itself (IDX t10k files) is kept as it is."""
    labels, predefined = ingested.labels, ingested.predefined_test
    split = np.where(predefined, 2, 0).astype(np.int8)
    rng = np.random.default_rng(config.split_seed)
    own_test = not predefined.any()
    needed = 3 if own_test else 2
    groups = sorted(set(labels.tolist()))
    for group in groups:
        rows = np.flatnonzero((labels == group) & ~predefined)
        n = len(rows)
        if n == 0:
            continue
        n_val = max(1, round(n * config.validation_fraction))
        n_test = max(1, round(n * config.test_fraction)) if own_test else 0
        if n - n_val - n_test < 1:
            parts = "one for training, one for validation" + (" and one for test" if own_test else "")
            if group == sources.UNLABELLED:
                what = f"{config.dataset}: {n} image(s)"
            else:
                name = ingested.class_names[group]
                where = source.display(name) if source is not None and source.kind == "folder" else config.dataset
                what = f"{where}: class {name!r} has {n} image(s)"
            raise SourceError(f"{what}; too small to split: each class needs at least {needed} ({parts}); add images")
        order = rows[rng.permutation(n)]
        split[order[:n_val]] = 1
        split[order[n_val:n_val + n_test]] = 2
    return split


def _assemble(config: TrainConfig, ingested: Ingested, split: np.ndarray, layout: str, kind: str,
              name: str) -> PreparedData:
    parts = {s: (ingested.images[split == i], ingested.labels[split == i]) for i, s in enumerate(SPLITS)}
    test_factors = None if ingested.factors is None else ingested.factors[split == SPLITS.index("test")]
    class_counts = {n: int((ingested.labels == k).sum()) for k, n in enumerate(ingested.class_names)}
    source = {"kind": kind, "path": config.dataset, "checksum": ingested.checksum,
              "files": len(ingested.file_hashes), "counts": {s: len(parts[s][0]) for s in SPLITS},
              "split_seed": config.split_seed, "validation_fraction": config.validation_fraction,
              "test_fraction": config.test_fraction, "class_counts": class_counts,
              "skipped": [origin for origin, _ in ingested.bad]}
    return PreparedData(name, tuple(ingested.class_names), layout, source, *parts["train"], *parts["validation"],
                        *parts["test"], test_factors=test_factors, factor_names=tuple(ingested.factor_names))


def _write_record(run_dir: Path, prepared: PreparedData, ingested: Ingested, split: np.ndarray) -> None:
    """RUN_DIR/dataset.json: the record, and each image with its file's SHA-256, class and split."""
    names = list(prepared.class_names)
    images = [{"image": origin, "class": names[label] if label >= 0 else None, "split": SPLITS[part]}
              for origin, label, part in zip(ingested.origins, ingested.labels.tolist(), split.tolist())]
    # No indent: json's C encoder then writes 60,000 entries in a fraction of a second.
    text = json.dumps({**prepared.record(), "file_sha256": ingested.file_hashes, "images": images})
    path = run_dir / RECORD_FILE
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


# ---------------------------------------------------------------------------------------------------
# The cache


class _Cache:
    """RUN_DIR/data-cache/: the preprocessed images (.npy, no pickles) and cache.json, written last."""

    ARRAYS = ("images", "labels", "predefined_test")
    OPTIONAL_ARRAYS = ("factors",)  # present when the source has them

    def __init__(self, path: Path):
        self.path = path

    def load(self, dataset: str, layout: str, image_shape=SEED_IMAGE_SHAPE) -> tuple[Ingested, list[list]] | None:
        """(what was ingested, the source's file signature then), or None when absent, stale or damaged."""
        try:
            meta = json.loads((self.path / "cache.json").read_text(encoding="utf-8"))
            # A cache from before image shapes has none: it holds the seed's.
            if (meta.get("format"), meta.get("version"), meta.get("preprocessing_version"), meta.get("layout"),
                    tuple(meta.get("image_shape", SEED_IMAGE_SHAPE)), meta.get("source")) != (
                    CACHE_FORMAT, CACHE_VERSION, PREPROCESSING_VERSION, layout, tuple(image_shape),
                    str(Path(dataset).expanduser().absolute())):
                return None
            arrays = {}
            for name in (*self.ARRAYS, *(n for n in self.OPTIONAL_ARRAYS if n in meta["sha256"])):
                path = self.path / f"{name}.npy"
                if sha256_file(path) != meta["sha256"][name]:
                    return None
                arrays[name] = np.load(path, allow_pickle=False)
        except (OSError, ValueError, KeyError, TypeError):
            return None  # rebuilt from the source
        ingested = Ingested(arrays["images"], arrays["labels"], arrays["predefined_test"], meta["class_names"],
                            meta["checksum"], meta["file_hashes"], meta["origins"],
                            [tuple(entry) for entry in meta["bad"]], meta["pictures"], factors=arrays.get("factors"),
                            factor_names=meta.get("factor_names", []), grey_source=meta.get("grey_source", True))
        return ingested, meta["signature"]

    def save(self, dataset: str, layout: str, image_shape, ingested: Ingested, signature: list[list]) -> None:
        hashes = {}
        for name in (*self.ARRAYS, *(n for n in self.OPTIONAL_ARRAYS if getattr(ingested, n) is not None)):
            path = self.path / f"{name}.npy"
            atomic_write(path, lambda tmp, array=getattr(ingested, name): _save_npy(tmp, array))
            hashes[name] = sha256_file(path)
        meta = {"format": CACHE_FORMAT, "version": CACHE_VERSION, "preprocessing_version": PREPROCESSING_VERSION,
                "layout": layout, "image_shape": list(image_shape), "factor_names": ingested.factor_names,
                "grey_source": ingested.grey_source, "source": str(Path(dataset).expanduser().absolute()),
                "checksum": ingested.checksum,
                "sha256": hashes, "signature": signature, "class_names": ingested.class_names,
                "file_hashes": ingested.file_hashes, "origins": ingested.origins,
                "bad": [list(entry) for entry in ingested.bad], "pictures": ingested.pictures}
        # Written last: until it names the new arrays' hashes, a half-written cache reads as stale.
        atomic_write(self.path / "cache.json", lambda tmp: tmp.write_text(json.dumps(meta), encoding="utf-8"))


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object: np.save would add ".npy" to a temporary file's name
        np.save(f, array, allow_pickle=False)
