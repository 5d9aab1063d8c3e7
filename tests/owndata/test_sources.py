"""Your own images as a dataset: the sources, the checksum and split, the cache, and every bad input."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latent_atlas.cli.main import main as cli
from latent_atlas.runtime.preprocessing import preprocess
from latent_atlas.train import own_data, sources
from latent_atlas.train.config import TrainConfig
from latent_atlas.train.sources import SourceError


def prepare(dataset, run_dir, log=None, **options):
    messages = [] if log is None else log
    return own_data.prepare(TrainConfig(dataset=str(dataset), **options), run_dir, log=messages.append)


def snapshot(root: Path) -> dict[str, tuple]:
    """Every file and folder under root with its bytes' hash, size, mode and modification time."""
    out = {}
    for path in sorted(root.rglob("*")):
        stat = path.stat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        out[path.relative_to(root).as_posix()] = (digest, stat.st_size, stat.st_mode, stat.st_mtime_ns)
    return out


@pytest.fixture
def small_letters(tmp_path, make_letters) -> Path:
    """12 renderings of each of 3 letters, in class folders."""
    return make_letters(tmp_path / "letters", per_class=12, letters="ACE")


# ---------------------------------------------------------------------------------------------------
# Folders: classes, checksum, record, split


def test_folder_classes_checksum_and_record(small_letters, tmp_path):
    before = snapshot(small_letters)
    data = prepare(small_letters, tmp_path / "run")
    assert data.class_names == ("A", "C", "E") and data.layout == "mnist" and data.name == "letters"
    assert data.source["counts"] == {"train": 30, "validation": 3, "test": 3}
    assert data.source["class_counts"] == {"A": 12, "C": 12, "E": 12}
    assert data.train_images.dtype == np.uint8 and data.train_images.shape == (30, 28, 28)
    # The checksum is that of `sha256sum`'s listing of the files, sorted by path.
    files = sorted(p for p in small_letters.rglob("*.png"))
    listing = "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(small_letters).as_posix()}\n"
                      for p in files)
    assert data.source["checksum"] == hashlib.sha256(listing.encode()).hexdigest()
    record = json.loads((tmp_path / "run" / own_data.RECORD_FILE).read_text())
    assert record["source"]["checksum"] == data.source["checksum"] and record["layout"] == "mnist"
    assert len(record["file_sha256"]) == 36 and len(record["images"]) == 36
    assert {image["split"] for image in record["images"]} == {"train", "validation", "test"}
    # The training images are the runtime's own preprocessing of each file, to the uint8 step.
    first_train = next(image["image"] for image in record["images"] if image["split"] == "train")
    expected = np.rint(preprocess(first_train, "mnist") * 255)
    assert np.abs(data.train_images[0].astype(float) - expected).max() <= 1
    assert snapshot(small_letters) == before  # nothing in the source is written, moved or touched


def test_split_is_reproducible_per_class_and_seeded(small_letters, tmp_path):
    a = prepare(small_letters, tmp_path / "a", split_seed=3)
    b = prepare(small_letters, tmp_path / "b", split_seed=3)
    c = prepare(small_letters, tmp_path / "c", split_seed=4)
    records = {k: json.loads((tmp_path / k / own_data.RECORD_FILE).read_text())["images"] for k in "abc"}
    assert records["a"] == records["b"]
    np.testing.assert_array_equal(a.test_images, b.test_images)
    assert records["a"] != records["c"]
    for split in ("validation", "test"):  # every class in every split
        assert sorted(image["class"] for image in records["a"] if image["split"] == split) == ["A", "C", "E"]
    assert a.source["split_seed"] == 3 and c.source["split_seed"] == 4
    assert a.source["checksum"] == c.source["checksum"]


def test_tiny_class_is_too_small_to_split(tmp_path, make_letters):
    root = make_letters(tmp_path / "letters", per_class=6, letters="AC")
    for extra in sorted((root / "C").iterdir())[2:]:
        extra.unlink()
    with pytest.raises(SourceError, match=r"letters/C: class 'C' has 2 image\(s\); too small to split: each class "
                                          r"needs at least 3"):
        prepare(root, tmp_path / "run")


def test_imbalance_is_reported(tmp_path, make_letters):
    root = make_letters(tmp_path / "letters", per_class=30, letters="AC")
    for extra in sorted((root / "C").iterdir())[5:]:
        extra.unlink()
    log = []
    data = prepare(root, tmp_path / "run", log=log)
    assert data.source["class_counts"] == {"A": 30, "C": 5}
    assert any("class imbalance: 'A' has 30 images, 'C' 5 (6.0x)" in line for line in log)


def test_unlabelled_flat_folder(tmp_path, make_letters):
    root = make_letters(tmp_path / "src", per_class=10, letters="AC")
    flat = tmp_path / "flat"
    flat.mkdir()
    for path in root.rglob("*.png"):
        shutil.copy(path, flat / path.name)
    data = prepare(flat, tmp_path / "run")
    assert data.class_names == () and data.record()["class_names"] == []
    assert data.source["counts"] == {"train": 16, "validation": 2, "test": 2}
    assert (data.atlas_labels() == 0).all()


def test_every_image_format_and_the_gif_first_frame(tmp_path, render_letter):
    rng = np.random.default_rng(0)
    root = tmp_path / "formats"
    for letter in "AO":
        (root / letter).mkdir(parents=True)
        for i, (suffix, mode) in enumerate([(".png", "L"), (".jpg", "RGB"), (".bmp", "RGB"), (".webp", "RGB"),
                                            (".png", "RGBA"), (".png", "P")]):
            render_letter(letter, i, rng).convert(mode).save(root / letter / f"{i}{suffix}")
        # A GIF whose second frame is blank: only the first is read.
        first = render_letter(letter, 0, rng).convert("P")
        first.save(root / letter / "anim.gif", save_all=True, append_images=[Image.new("P", first.size, 0)])
    log = []
    data = prepare(root, tmp_path / "run", log=log)
    assert sum(data.source["counts"].values()) == 14 and not data.source["skipped"]
    assert any("mode(s) L, P, RGB, RGBA: all preprocessed to 28x28 grey" in line for line in log)


# ---------------------------------------------------------------------------------------------------
# The cache


def test_cache_is_reused_and_invalidated_when_the_source_changes(small_letters, tmp_path):
    run = tmp_path / "run"
    log = []
    first = prepare(small_letters, run, log=log)
    assert any("preprocessed 36 image(s)" in line for line in log)
    log.clear()
    again = prepare(small_letters, run, log=log)
    assert not any(" image(s) with the " in line for line in log)  # nothing read again
    np.testing.assert_array_equal(first.train_images, again.train_images)

    # One file replaced by another picture: only it is preprocessed again, and the checksum changes.
    changed = sorted((small_letters / "A").iterdir())[0]
    Image.open(sorted((small_letters / "C").iterdir())[0]).save(changed)
    log.clear()
    after = prepare(small_letters, run, log=log)
    assert any("preprocessed 1 image(s)" in line and "35 unchanged" in line for line in log)
    assert after.source["checksum"] != first.source["checksum"]
    hashes = json.loads((run / own_data.RECORD_FILE).read_text())["file_sha256"]
    assert hashes[changed.relative_to(small_letters).as_posix()] == hashlib.sha256(changed.read_bytes()).hexdigest()

    # A new file changes the checksum too; a damaged cache is rebuilt from the source.
    shutil.copy(changed, small_letters / "A" / "new.png")
    assert prepare(small_letters, run).source["checksum"] not in (first.source["checksum"], after.source["checksum"])
    (run / own_data.CACHE_DIR / "images.npy").write_bytes(b"garbage")
    log.clear()
    prepare(small_letters, run, log=log)
    assert any("preprocessed 37 image(s)" in line for line in log)
    # Another layout is another cache.
    log.clear()
    assert prepare(small_letters, run, log=log, layout="fashion-mnist").layout == "fashion-mnist"
    assert any("preprocessed 37 image(s) with the fashion-mnist layout" in line for line in log)


def test_a_run_uses_its_cache_when_the_source_is_gone_and_refuses_a_changed_one(small_letters, tmp_path):
    run = tmp_path / "run"
    config = TrainConfig(dataset=str(small_letters))
    first = own_data.prepare(config, run, log=lambda _: None)
    recorded = first.record()  # what the checkpoint keeps
    moved = tmp_path / "moved"
    shutil.move(small_letters, moved)
    log = []
    kept = own_data.prepare(config, run, recorded=recorded, log=log.append)
    np.testing.assert_array_equal(kept.test_images, first.test_images)
    assert kept.record() == recorded
    assert any("not found; using the run's preprocessed copy" in line for line in log)

    shutil.move(moved, small_letters)
    next((small_letters / "E").iterdir()).unlink()
    with pytest.raises(SourceError, match="changed since this run was trained"):
        own_data.prepare(config, run, recorded=recorded, log=lambda _: None)
    # The refusal left the run's copy of the images it was trained on as it was.
    shutil.rmtree(small_letters)
    np.testing.assert_array_equal(own_data.prepare(config, run, recorded=recorded, log=lambda _: None).test_images,
                                  first.test_images)


# ---------------------------------------------------------------------------------------------------
# Arrays: .npz and IDX


def test_npz_with_labels_and_class_names(tmp_path, small_letters):
    images = np.stack([np.asarray(Image.open(p).resize((40, 40))) for p in sorted(small_letters.rglob("*.png"))])
    labels = np.repeat(np.arange(3), 12)
    path = tmp_path / "glyphs.npz"
    np.savez(path, images=images, labels=labels, class_names=np.array(["alpha", "cee", "eee"]))
    before = snapshot(tmp_path / "letters")
    data = prepare(path, tmp_path / "run")
    assert data.name == "glyphs" and data.class_names == ("alpha", "cee", "eee")
    assert data.source["kind"] == "npz" and data.source["counts"] == {"train": 30, "validation": 3, "test": 3}
    assert data.source["checksum"] == sources.listing_checksum({"glyphs.npz": hashlib.sha256(path.read_bytes()).hexdigest()})
    # Floats in [0, 1] with a channel axis work the same; no labels means unlabelled.
    np.savez(tmp_path / "floats.npz", images=(images[..., None] / 255.0).astype(np.float32))
    assert prepare(tmp_path / "floats.npz", tmp_path / "run2").class_names == ()
    assert snapshot(tmp_path / "letters") == before


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def test_idx_folder_keeps_its_own_test_split(tmp_path, small_letters):
    images = np.stack([np.asarray(Image.open(p).resize((28, 28))) for p in sorted(small_letters.rglob("*.png"))])
    labels = np.repeat(np.arange(3), 12)
    folder = tmp_path / "emnist-ish"
    folder.mkdir()
    test_rows = np.arange(36) % 6 == 0
    _write_idx(folder / "emnist-x-train-images-idx3-ubyte.gz", images[~test_rows])
    _write_idx(folder / "emnist-x-train-labels-idx1-ubyte.gz", labels[~test_rows])
    _write_idx(folder / "emnist-x-test-images-idx3-ubyte.gz", images[test_rows])
    _write_idx(folder / "emnist-x-test-labels-idx1-ubyte.gz", labels[test_rows])
    data = prepare(folder, tmp_path / "run")
    assert data.source["kind"] == "idx" and data.class_names == ("0", "1", "2")
    assert data.source["counts"]["test"] == 6 and data.source["files"] == 4
    np.testing.assert_array_equal(np.sort(data.test_labels), np.sort(labels[test_rows]))


# ---------------------------------------------------------------------------------------------------
# Bad input: one line naming the file and what was expected


def _bad_folder(tmp_path, make_letters, per_class=12) -> Path:
    return make_letters(tmp_path / "letters", per_class=per_class, letters="AC")


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "cannot decode"),
    (lambda p: p.write_text("not a picture"), "not an image file"),
    (lambda p: Image.new("L", (50, 50), 200).save(p), "blank"),
])
def test_an_unusable_image_is_a_one_line_error_naming_it(tmp_path, make_letters, damage, message):
    root = _bad_folder(tmp_path, make_letters)
    victim = sorted((root / "C").iterdir())[3]
    damage(victim)
    with pytest.raises(SourceError) as error:
        prepare(root, tmp_path / "run")
    text = str(error.value)
    assert "\n" not in text and str(victim) in text and message in text and "--skip-bad-images" in text


def test_skip_bad_images_warns_lists_them_and_goes_on(tmp_path, make_letters):
    root = _bad_folder(tmp_path, make_letters, per_class=30)
    broken = sorted((root / "A").iterdir())[4]
    broken.write_bytes(broken.read_bytes()[:100])
    blank = sorted((root / "C").iterdir())[7]
    Image.new("RGB", (60, 60), (255, 255, 255)).save(blank)
    log = []
    data = prepare(root, tmp_path / "run", log=log, skip_bad_images=True)
    warning = next(line for line in log if line.startswith("warning: left out 2 of 60 images"))
    assert str(broken) in warning and str(blank) in warning
    assert sorted(data.source["skipped"]) == sorted([str(broken), str(blank)])
    assert sum(data.source["counts"].values()) == 58


def test_skip_bad_images_still_refuses_a_mostly_broken_or_blank_source(tmp_path, make_letters):
    root = _bad_folder(tmp_path, make_letters)
    for path in root.rglob("*.png"):
        Image.new("L", (30, 30), 0).save(path)  # all blank
    with pytest.raises(SourceError, match=r"24 of 24 images are unusable, more than the 5% --skip-bad-images"):
        prepare(root, tmp_path / "run", skip_bad_images=True)


def test_folder_structure_errors(tmp_path, make_letters):
    root = _bad_folder(tmp_path, make_letters)
    (root / "empty").mkdir()
    with pytest.raises(SourceError, match=r"letters/empty: empty class folder"):
        prepare(root, tmp_path / "run")
    (root / "empty").rmdir()
    shutil.copy(next((root / "A").iterdir()), root / "loose.png")
    with pytest.raises(SourceError, match="holds both class folders"):
        prepare(root, tmp_path / "run")
    nothing = tmp_path / "nothing"
    nothing.mkdir()
    (nothing / "notes.txt").write_text("no pictures here")
    with pytest.raises(SourceError, match=r"nothing: no images found; expected PNG, JPEG, BMP, WebP or GIF"):
        prepare(nothing, tmp_path / "run")
    with pytest.raises(SourceError, match="no such file or folder"):
        prepare(tmp_path / "missing", tmp_path / "run")


def test_mixed_sizes_and_modes(tmp_path, render_letter):
    rng = np.random.default_rng(1)
    root = tmp_path / "mixed"
    for letter in "AO":
        (root / letter).mkdir(parents=True)
        for i in range(6):
            image = render_letter(letter, i, rng).convert("RGB" if i % 2 else "L")
            image.resize((image.width, image.height * 2) if i == 5 else image.size).save(root / letter / f"{i}.png")
    log = []
    prepare(root, tmp_path / "run", log=log)  # the crop layouts take any size and mode
    assert any("picture sizes" in line and "mode(s) L, RGB" in line for line in log)
    # A plain resize would stretch the odd ones differently: refused, naming one.
    with pytest.raises(SourceError, match=r"mixed/./5.png: \d+x\d+, aspect ratio 0.5, but most images \(10\) have 1;"):
        prepare(root, tmp_path / "run2", layout="resize")


def test_npz_errors(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (20, 16, 16), dtype=np.uint8)
    cases = {
        "noimages.npz": (dict(pictures=images), r"no 'images' array \(found pictures\); expected images \[N, H, W\]"),
        "objects.npz": (dict(images=np.array([images[0], "x"], dtype=object)), r"'images' is an object array"),
        "range.npz": (dict(images=images, labels=np.arange(20) % 3, class_names=np.array(["a", "b"])),
                      r"labels out of range: found 2, but class_names lists 2 classes; expected labels from 0 to 1"),
        "negative.npz": (dict(images=images, labels=np.arange(20) - 1), r"labels out of range: found -1"),
        "floats.npz": (dict(images=images / 100.0), r"expected float pixels in \[0, 1\]"),
        "shape.npz": (dict(images=images[0]), r"'images' has shape \(16, 16\); expected \[N, H, W\]"),
        "labels.npz": (dict(images=images, labels=np.zeros(5, int)), r"expected 20 integers \[N\], one per image"),
    }
    for name, (arrays, message) in cases.items():
        np.savez(tmp_path / name, **arrays)
        with pytest.raises(SourceError, match=message) as error:
            prepare(tmp_path / name, tmp_path / "run")
        assert str(error.value).startswith(str(tmp_path / name)) and "\n" not in str(error.value)
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(SourceError, match="broken.npz: not a readable .npz file"):
        prepare(tmp_path / "broken.npz", tmp_path / "run")


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, make_letters, capsys):
    root = _bad_folder(tmp_path, make_letters)
    (root / "Z").mkdir()
    code = cli(["train", "--dataset", str(root), "--out", str(tmp_path / "run"), "--quiet", "--no-plots"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("latent-atlas train: error: ") and "letters/Z: empty class folder" in err[-1]


def test_a_blank_array_image_is_named_by_its_index(tmp_path):
    rng = np.random.default_rng(0)
    images = np.zeros((40, 20, 20), np.uint8)
    for image in images:
        image[rng.integers(2, 8):rng.integers(12, 18), rng.integers(2, 8):rng.integers(12, 18)] = 255
    images[17] = 0
    np.savez(tmp_path / "boxes.npz", images=images)
    with pytest.raises(SourceError, match=r"boxes.npz: images\[17\]: blank \(no contrast"):
        prepare(tmp_path / "boxes.npz", tmp_path / "run")
    data = prepare(tmp_path / "boxes.npz", tmp_path / "run", skip_bad_images=True)
    assert data.source["skipped"] == [f"{tmp_path / 'boxes.npz'}: images[17]"]


def test_write_false_reads_the_cache_and_writes_nothing(small_letters, tmp_path):
    # What the other ranks of a data-parallel job do once rank 0 has prepared the run's data.
    fresh = tmp_path / "fresh"
    prepare_quietly = own_data.prepare(TrainConfig(dataset=str(small_letters)), fresh, log=lambda _: None, write=False)
    assert len(prepare_quietly.train_images) > 0 and not fresh.exists()
    run, log = tmp_path / "run", []
    first = prepare(small_letters, run, log=log)
    before = snapshot(run)
    log.clear()
    again = own_data.prepare(TrainConfig(dataset=str(small_letters)), run, log=log.append, write=False)
    assert not any(" image(s) with the " in line for line in log)  # rank 0's cache, not a second ingest
    np.testing.assert_array_equal(first.train_images, again.train_images)
    assert again.source["checksum"] == first.source["checksum"]
    assert snapshot(run) == before


def test_an_option_for_the_other_kind_of_dataset_is_refused_not_ignored(small_letters, tmp_path, capsys):
    for argv, message in ((["--dataset", str(small_letters), "--val-size", "10"], "--val-size applies to the built-in"),
                          (["--dataset", "mnist", "--validation-fraction", "0.2", "--layout", "resize"],
                           "--layout, --validation-fraction apply to your own images")):
        code = cli(["train", *argv, "--out", str(tmp_path / "run"), "--quiet", "--no-plots"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and message in err[-1] and len(err) == 1, err
        assert not (tmp_path / "run").exists()
