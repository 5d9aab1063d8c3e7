"""The sprites data set (train/sprites.py) and `latent-atlas make-dataset`: each picture shows the factors
it was drawn from, the file is deterministic, and `--dataset PATH` reads it like any other .npz."""

from __future__ import annotations

import colorsys
import math
import subprocess
import sys

import numpy as np
import pytest

from latent_atlas.cli.main import main as cli
from latent_atlas.runtime.limits import MAX_GENERATED_BYTES
from latent_atlas.train import sprites
from latent_atlas.train.sources import ingest, open_source
from latent_atlas.train.sprites import FACTOR_NAMES, SHAPES, SYMMETRY, draw_factors, make_sprites, render, write_sprites

SIZE = 64
# A shape's area relative to r^2 and perimeter relative to r, r the distance from its centre to its farthest
# point (closed forms; Ramanujan's for the ellipse of semi-axes 1 and 1/2).
AREA = {"square": 2.0, "ellipse": math.pi / 2, "triangle": 3 * math.sqrt(3) / 4}
PERIMETER = {"square": 4 * math.sqrt(2), "ellipse": math.pi * (4.5 - math.sqrt(8.75)), "triangle": 3 * math.sqrt(3)}


def one_line(err: str) -> str:
    assert len(err.strip().splitlines()) == 1 and err.startswith("latent-atlas make-dataset: error: "), err
    return err


@pytest.fixture(scope="module")
def drawn():
    return make_sprites(400, SIZE, seed=5)


def test_the_same_seed_gives_the_same_sprites_and_another_seed_others(drawn):
    again = make_sprites(400, SIZE, seed=5)
    assert np.array_equal(again.images, drawn.images) and np.array_equal(again.factors, drawn.factors)
    other = make_sprites(400, SIZE, seed=6)
    assert not np.array_equal(other.factors, drawn.factors)
    # The factors do not depend on the size: the same sprites at another resolution.
    assert np.array_equal(make_sprites(20, 32, seed=5).factors, drawn.factors[:20])


def test_factors_cover_their_ranges_independently():
    factors = draw_factors(20_000, seed=0)
    shape, hue, scale, rotation, x, y = factors.T
    assert set(np.unique(shape)) == set(range(len(SHAPES)))
    assert np.all(np.bincount(shape.astype(int)) > 20_000 / len(SHAPES) * 0.9)
    period = np.array([SYMMETRY[name] for name in SHAPES])[shape.astype(int)]
    assert np.all(rotation >= 0) and np.all(rotation < period) and rotation[shape == 3].max() > 6
    for values, (low, high) in ((hue, (0, 1)), (scale, sprites.SCALE_RANGE), (x, sprites.POSITION_RANGE),
                                (y, sprites.POSITION_RANGE)):
        assert values.min() >= low and values.max() <= high
        assert values.min() < low + 0.01 * (high - low) and values.max() > high - 0.01 * (high - low)
    # Independent: the rotation as a fraction of its shape's period (its range depends on the shape by design).
    correlations = np.corrcoef(np.stack([shape, hue, scale, rotation / period, x, y]))
    assert np.abs(correlations - np.eye(6)).max() < 0.05


def _moments(image: np.ndarray) -> tuple[float, float, float, np.ndarray]:
    """(ink area in pixels, centre column, centre row, 2x2 covariance) of one sprite's coverage."""
    ink = image.max(axis=2).astype(np.float64) / 255
    rows, cols = np.mgrid[:image.shape[0], :image.shape[1]] + 0.5  # pixel centres
    area = ink.sum()
    cx, cy = (ink * cols).sum() / area, (ink * rows).sum() / area
    d = np.stack([(cols - cx).ravel(), (rows - cy).ravel()])
    return area, cx, cy, (d * ink.ravel()) @ d.T / area


def test_each_picture_shows_its_factors(drawn):
    for image, (shape, hue, scale, rotation, x, y) in zip(drawn.images, drawn.factors.astype(np.float64)):
        name = SHAPES[int(shape)]
        area, cx, cy, covariance = _moments(image)
        radius = scale * sprites.MAX_RADIUS * SIZE
        if name in AREA:
            # Pillow fills every pixel its outline touches: up to one drawn pixel (d) more all round, which adds
            # at most perimeter x d + pi d^2 to a convex shape's area (Steiner's formula).
            d = 1 / sprites.SUPERSAMPLE
            exact = AREA[name] * radius ** 2
            assert exact <= area <= exact + PERIMETER[name] * radius * d + math.pi * d ** 2, name
            # Symmetric about their centre (the triangle about its centroid): the ink's centre is (x, y).
            assert (cx, cy) == pytest.approx((x * SIZE, y * SIZE), abs=1 / sprites.SUPERSAMPLE)  # one drawn pixel
        if name == "ellipse":  # its long axis, turned counter-clockwise by `rotation` (rows go down)
            values, vectors = np.linalg.eigh(covariance)
            axis = vectors[:, 1]
            angle = math.atan2(-axis[1], axis[0]) % math.pi
            difference = abs(angle - rotation % math.pi)
            assert min(difference, math.pi - difference) < 0.08
            assert values[1] / values[0] == pytest.approx(4.0, rel=0.15)  # semi-axes 1 : 1/2
        # The fully covered pixels carry the hue at full saturation and brightness.
        solid = image[image.max(axis=2) == 255]
        assert len(solid) > 0
        h, s, v = colorsys.rgb_to_hsv(*(solid.mean(axis=0) / 255))
        assert min(abs(h - hue), 1 - abs(h - hue)) < 0.01 and s > 0.99 and v > 0.99
        # Whole, on black: the border rows and columns are empty.
        assert image[[0, -1]].max() == 0 and image[:, [0, -1]].max() == 0


def test_rotating_a_sprite_by_its_symmetry_period_draws_the_same_picture(drawn):
    factors = drawn.factors[:8].astype(np.float64).copy()
    turned = factors.copy()
    turned[:, 3] += [SYMMETRY[SHAPES[int(s)]] for s in factors[:, 0]]
    difference = np.abs(render(factors, SIZE).astype(int) - render(turned, SIZE).astype(int))
    assert difference.max() <= 2  # the outline's vertices land in other places; the shape does not move


def test_the_file_is_an_npz_that_dataset_path_reads(tmp_path):
    path = write_sprites(tmp_path / "out", count=64, size=32, seed=1)
    assert path == tmp_path / "out" / "sprites.npz"
    with np.load(path, allow_pickle=False) as archive:
        assert archive["images"].shape == (64, 32, 32, 3) and archive["images"].dtype == np.uint8
        assert archive["factors"].shape == (64, 6) and list(archive["factor_names"]) == list(FACTOR_NAMES)
        assert np.array_equal(archive["labels"], archive["factors"][:, 0].astype(np.int32))
        assert np.array_equal(archive["images"], make_sprites(64, 32, seed=1).images)
    ingested = ingest(open_source(str(path)), "mnist", workers=1)
    assert ingested.images.shape == (64, 28, 28) and not ingested.bad
    assert ingested.class_names == list(SHAPES)
    assert np.array_equal(ingested.labels, make_sprites(64, 32, seed=1).labels)


def test_make_dataset_writes_the_file(tmp_path, capsys):
    out = tmp_path / "sprites"
    assert cli(["make-dataset", "sprites", "--out", str(out), "--count", "40", "--size", "28", "--seed", "2"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"{out / 'sprites.npz'}: 40 sprites, 28x28 RGB, seed 2;") and "rotation" in printed
    with np.load(out / "sprites.npz") as archive:
        assert np.array_equal(archive["images"], make_sprites(40, 28, seed=2).images)


def test_make_dataset_runs_without_torch(tmp_path):
    # The plain install has no torch (nor the train extra): make-dataset must not need it.
    blocked = "; ".join(f"sys.modules[{name!r}] = None" for name in ("torch", "onnx", "onnxscript", "matplotlib"))
    code = (f"import sys; {blocked}; from latent_atlas.cli.main import main; "
            f"sys.exit(main(['make-dataset', 'sprites', '--out', {str(tmp_path)!r}, '--count', '8', '--size', '32']))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    with np.load(tmp_path / "sprites.npz") as archive:
        assert np.array_equal(archive["images"], make_sprites(8, 32, seed=0).images)


def test_make_dataset_never_replaces_a_file(tmp_path, capsys):
    (tmp_path / "sprites.npz").write_bytes(b"precious")
    assert cli(["make-dataset", "sprites", "--out", str(tmp_path), "--count", "4"]) == 2
    assert "sprites.npz exists; expected a folder without sprites.npz" in one_line(capsys.readouterr().err)
    assert (tmp_path / "sprites.npz").read_bytes() == b"precious"


@pytest.mark.parametrize("options, message", [
    (["--size", "30"], "--size 30: image shape 3 x 30 x 30: height 30 is not a positive multiple of 4"),
    (["--size", "100"], "--size 100: image shape 3 x 100 x 100: its sides halve evenly only 2 times"),
    (["--size", "512"], "--size 512: image shape 3 x 512 x 512: height 512 is larger than the limit of 256"),
    (["--count", "0"], "--count 0: expected at least 1 image"),
    (["--seed", "-1"], "--seed -1: expected a non-negative integer"),
    (["--count", str(MAX_GENERATED_BYTES // (64 * 64 * 3) + 1)], "more than the 2 GiB limit; expected at most 174,762 images"),
])
def test_bad_requests_are_one_line_and_write_nothing(tmp_path, capsys, options, message):
    out = tmp_path / "new"
    assert cli(["make-dataset", "sprites", "--out", str(out), *options]) == 2
    assert message in one_line(capsys.readouterr().err)
    assert not out.exists()


def test_centred_sprites_keep_every_factor_but_position(tmp_path, capsys):
    free, centred = sprites.draw_factors(500, seed=3), sprites.draw_factors(500, seed=3, centred=True)
    x, y = sprites.FACTOR_NAMES.index("x"), sprites.FACTOR_NAMES.index("y")
    assert (centred[:, [x, y]] == 0.5).all() and free[:, x].std() > 0.1
    np.testing.assert_array_equal(np.delete(centred, [x, y], axis=1), np.delete(free, [x, y], axis=1))
    assert cli(["make-dataset", "sprites", "--out", str(tmp_path), "--count", "40", "--size", "32", "--centred"]) == 0
    assert "40 centred sprites" in capsys.readouterr().out
    with np.load(tmp_path / sprites.FILE_NAME) as data:
        ink = data["images"].astype(np.float32).sum(axis=(0, 3))  # every sprite's pixels, summed over the set
    rows, cols = np.nonzero(ink)
    assert abs(np.average(rows, weights=ink[rows, cols]) - 15.5) < 1 and abs(np.average(cols, weights=ink[rows, cols]) - 15.5) < 1
