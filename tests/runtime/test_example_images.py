"""The example pictures shipped in the package: found by digit or name, exactly the dataset images their
README says they are, and encoded where their class lies."""

from __future__ import annotations

import gzip
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latent_atlas import runtime
from latent_atlas.runtime.example_images import EXAMPLES_DIR

REPO = Path(__file__).resolve().parents[2]
DATASET_OF = {"MNIST": "mnist", "Fashion-MNIST": "fashion-mnist"}


def provenance() -> list[tuple[str, str, int, int]]:
    """(file, dataset folder, test-set index, label) for each row of the folder's README table."""
    rows = re.findall(r"^\| `([\w-]+\.png)` \| ([\w-]+) \| (\d+) \| (\d+)", (EXAMPLES_DIR / "README.md").read_text(),
                      flags=re.M)
    return [(name, DATASET_OF[dataset], int(index), int(label)) for name, dataset, index, label in rows]


def test_every_shipped_picture_is_listed_with_its_source():
    assert sorted(row[0] for row in provenance()) == sorted(p.name for p in EXAMPLES_DIR.glob("*.png"))


def test_digits_and_names_give_the_paths():
    assert runtime.example_image(3) == EXAMPLES_DIR / "digit-3.png"
    assert runtime.example_image("digit-3") == runtime.example_image(3)
    assert runtime.example_image("sneaker").is_file()
    assert {f"digit-{d}" for d in range(10)} | {"sneaker"} <= set(runtime.example_names())


@pytest.mark.parametrize("bad", [10, -1, "photo", "../models/mnist/bundle", "digit-3.png"])
def test_unknown_names_are_one_clear_error(bad):
    with pytest.raises(ValueError, match="expected a digit 0-9 or one of ankle-boot, bag, digit-0, "):
        runtime.example_image(bad)


@pytest.mark.parametrize("bad", [True, 3.0, None, Path("digit-3")])
def test_other_types_are_refused(bad):
    with pytest.raises(TypeError, match="a digit 0-9 or a name"):
        runtime.example_image(bad)


def test_the_package_data_ships_them():
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = package_data["latent_atlas.runtime"]
    assert "examples/*.png" in patterns and "examples/README.md" in patterns


def _test_set(data_dir: Path, dataset: str) -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(data_dir / dataset / "t10k-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(data_dir / dataset / "t10k-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    return images, labels


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_each_picture_is_the_test_image_its_readme_names(dataset):
    from tests.conftest import real_data_dir

    images, labels = _test_set(real_data_dir(dataset), dataset)
    rows = [row for row in provenance() if row[1] == dataset]
    assert rows
    for name, _, index, label in rows:
        with Image.open(EXAMPLES_DIR / name) as picture:
            assert picture.mode == "L" and picture.size == (28, 28)
            np.testing.assert_array_equal(np.asarray(picture), images[index], err_msg=name)
        assert labels[index] == label, name


def test_the_mnist_model_encodes_a_shipped_one_near_its_class():
    model = runtime.load("mnist", providers="cpu")
    posterior = model.encode(runtime.example_image(7))
    assert model.class_names[int(model.nearest_class(posterior.mean))] == "7"
