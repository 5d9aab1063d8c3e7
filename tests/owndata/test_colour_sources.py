"""Your own images in colour and at their own size (issue 49): every source keeps colour and size, the cache
knows the shape, the known factors of an .npz follow its test split, and bad shapes are one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from latent_atlas.cli.main import main as cli
from latent_atlas.train import own_data
from latent_atlas.train.config import TrainConfig
from latent_atlas.train.sprites import FACTOR_NAMES, make_sprites, write_sprites

from .test_sources import _write_idx  # the IDX writer of the grey tests

COLOUR = (3, 32, 32)


def prepare(dataset, run_dir, log=None, **options):
    messages = [] if log is None else log
    return own_data.prepare(TrainConfig(dataset=str(dataset), **options), run_dir, log=messages.append, workers=1)


@pytest.fixture(scope="module")
def sprites_file(tmp_path_factory):
    return write_sprites(tmp_path_factory.mktemp("sprites"), count=60, size=32, seed=3)


def test_an_npz_keeps_colour_size_and_its_factors_through_the_split(sprites_file, tmp_path):
    log = []
    data = prepare(sprites_file, tmp_path / "run", log=log, image_shape=COLOUR)
    assert data.layout == "pad"  # a colour model's default: the whole picture, nothing stretched
    assert data.train_images.shape[1:] == (32, 32, 3) and data.train_images.dtype == np.uint8
    drawn = make_sprites(60, 32, seed=3)
    # The pictures are the model's size already: kept exactly, each test image with its own factors.
    test_rows = _test_rows(tmp_path / "run")
    np.testing.assert_array_equal(data.test_images, drawn.images[test_rows])
    assert data.factor_names == FACTOR_NAMES and data.record()["factor_names"] == list(FACTOR_NAMES)
    np.testing.assert_array_equal(data.test_factors, drawn.factors[test_rows].astype(np.float32))
    assert data.test_factors.dtype == np.float32 and len(data.test_factors) == len(data.test_images)
    assert any("with the pad layout to 3 x 32 x 32" in line for line in log)


def _test_rows(run_dir) -> list[int]:
    """The source rows of the test split, from dataset.json (origins read `PATH: images[i]`)."""
    record = json.loads((run_dir / "dataset.json").read_text())
    return [int(entry["image"].rsplit("[", 1)[1].rstrip("]")) for entry in record["images"] if entry["split"] == "test"]


def test_the_cache_key_holds_the_shape(sprites_file, tmp_path):
    log = []
    colour = prepare(sprites_file, tmp_path / "run", log=log, image_shape=COLOUR)
    again = prepare(sprites_file, tmp_path / "run", log=log, image_shape=COLOUR)
    np.testing.assert_array_equal(colour.test_factors, again.test_factors)
    assert sum("preprocessed" in line for line in log) == 1  # the second came from the cache, factors included
    grey = prepare(sprites_file, tmp_path / "run", log=log, image_shape=(1, 32, 32), layout="resize")
    assert grey.train_images.shape[1:] == (32, 32)
    assert sum("preprocessed" in line for line in log) == 2
    assert any("colour pictures for a grey model: turned into their luma" in line for line in log)
    smaller = prepare(sprites_file, tmp_path / "run", log=log, image_shape=(3, 16, 16))
    assert smaller.train_images.shape[1:] == (16, 16, 3)
    assert sum("preprocessed" in line for line in log) == 3


def test_a_grey_folder_for_a_colour_model_is_converted_and_said_so(tmp_path):
    rng = np.random.default_rng(0)
    for name in "ab":
        folder = tmp_path / "grey" / name
        folder.mkdir(parents=True)
        for i in range(10):
            picture = np.zeros((40, 40), np.uint8)
            picture[5:35, 10 + i:20 + i] = 200 if name == "a" else 90
            Image.fromarray(np.clip(picture + rng.integers(0, 20, picture.shape), 0, 255).astype(np.uint8)).save(
                folder / f"{i}.png")
    log = []
    data = prepare(tmp_path / "grey", tmp_path / "run", log=log, image_shape=COLOUR, layout="crop")
    assert data.train_images.shape[1:] == (32, 32, 3)
    assert (data.train_images[..., 0] == data.train_images[..., 2]).all()  # three equal channels
    assert any("grey pictures for a colour model (--channels 3): each repeated into three equal channels" in line
               for line in log)
    assert data.test_factors is None and "factor_names" not in data.record()


def test_a_colour_folder_keeps_its_colour(tmp_path):
    for name, colour in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
        folder = tmp_path / "pictures" / name
        folder.mkdir(parents=True)
        for i in range(10):
            picture = np.zeros((48, 64, 3), np.uint8)  # wider than the model: padded, not stretched
            picture[10:38, 8 + i:40 + i] = colour
            Image.fromarray(picture).save(folder / f"{i}.png")
    data = prepare(tmp_path / "pictures", tmp_path / "run", image_shape=COLOUR)
    red = data.train_images[data.train_labels == data.class_names.index("red")]
    assert red[..., 0].max() > 200 and red[..., 2].max() < 60
    assert (red[:, :4] == 0).all()  # the padding above the 48-row picture, in the border colour (black)


@pytest.mark.parametrize("options, message", [
    (["--image-size", "30"], "argument --image-size: image height 30 is not a positive multiple of 4"),
    (["--image-size", "300"], "argument --image-size: image height 300 is larger than the limit of 256"),
    (["--channels", "4"], "argument --channels: invalid choice: 4"),
    (["--image-size", "100", "--channels", "3"], "its sides halve evenly only 2 times, to a 128 x 25 x 25 feature map"),
    (["--channels", "3", "--layout", "mnist"], "the mnist layout finds light ink on a dark ground in grey pictures"),
])
def test_bad_shapes_are_one_line_and_exit_2(sprites_file, tmp_path, capsys, options, message):
    try:  # argparse's own usage errors exit; the config's come back as the exit code
        code = cli(["train", "--dataset", str(sprites_file), "--out", str(tmp_path / "run"), "--quiet", "--no-plots",
                    *options])
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("latent-atlas train: error: ") and message in err[-1]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("arrays, message", [
    (dict(factors=np.zeros((8, 2))), r"'factors' without 'factor_names'; expected both"),
    (dict(factor_names=np.array(["a", "b"])), r"'factor_names' without 'factors'; expected both"),
    (dict(factors=np.zeros((7, 2)), factor_names=np.array(["a", "b"])), r"expected 8 rows of numbers \[N, F\]"),
    (dict(factors=np.zeros((8, 2)), factor_names=np.array(["a"])), r"expected 2 strings, one per column"),
    (dict(factors=np.full((8, 2), np.nan), factor_names=np.array(["a", "b"])), r"'factors' holds non-finite values"),
])
def test_bad_factors_are_one_line_naming_the_file(tmp_path, arrays, message):
    images = np.random.default_rng(0).integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    np.savez(tmp_path / "bad.npz", images=images, **arrays)
    with pytest.raises(ValueError, match=message) as error:
        prepare(tmp_path / "bad.npz", tmp_path / "run", image_shape=(3, 16, 16))
    assert str(error.value).startswith(str(tmp_path / "bad.npz")) and "\n" not in str(error.value)


def test_an_idx_folder_keeps_its_own_size_and_a_colour_model_repeats_its_grey(tmp_path):
    rng = np.random.default_rng(0)
    images = np.zeros((24, 32, 32), np.uint8)
    for i, image in enumerate(images):
        image[4 + i % 5:20 + i % 5, 6:26] = 120 + 5 * i
    images += rng.integers(0, 10, images.shape, dtype=np.uint8)
    folder = tmp_path / "idx"
    folder.mkdir()
    _write_idx(folder / "train-images-idx3-ubyte.gz", images)
    _write_idx(folder / "train-labels-idx1-ubyte.gz", np.arange(24) % 2)
    log = []
    grey = prepare(folder, tmp_path / "grey", log=log, image_shape=(1, 32, 32), layout="resize")
    rows = _rows(tmp_path / "grey", "image ")
    np.testing.assert_array_equal(grey.test_images, images[rows])  # already the model's size: kept as it is
    colour = prepare(folder, tmp_path / "colour", log=log, image_shape=COLOUR)
    np.testing.assert_array_equal(colour.test_images, np.repeat(images[rows][..., None], 3, axis=-1))
    assert any("grey pictures for a colour model" in line for line in log)


def _rows(run_dir, marker: str) -> list[int]:
    record = json.loads((run_dir / "dataset.json").read_text())
    return [int(entry["image"].rsplit(marker, 1)[1]) for entry in record["images"] if entry["split"] == "test"]
