"""Bundles of your own images, in the torch-free runtime: the layout they record, and no labels at all."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from latent_atlas import runtime
from latent_atlas.cli.main import main as cli
from latent_atlas.runtime import bundle as bundle_format
from latent_atlas.runtime.preprocessing import LAYOUTS, is_blank, preprocess


def edit_manifest(path, change) -> None:
    manifest_path = path / bundle_format.MANIFEST
    manifest = json.loads(manifest_path.read_text())
    change(manifest)
    manifest_path.write_text(json.dumps(manifest))


def test_resize_layout_keeps_the_whole_picture_grey_as_it_is():
    picture = np.zeros((60, 30), np.uint8)
    picture[:, 15:] = 200  # right half light
    out = preprocess(picture, layout="resize")
    assert out.shape == (28, 28)
    assert out[:, :12].max() < 0.05 and out[:, 16:].min() > 0.7  # stretched to the field, not cropped or inverted
    dark_on_light = preprocess(255 - picture, layout="resize")
    assert dark_on_light[:, :12].min() > 0.95  # no inversion either
    assert "resize" in LAYOUTS and not LAYOUTS["resize"].crop
    assert is_blank(preprocess(np.full((40, 40), 128, np.uint8), layout="resize"))
    assert is_blank(preprocess(np.full((40, 40), 128, np.uint8), layout="mnist"))
    assert not is_blank(out)


def test_the_encoder_preprocesses_with_the_bundles_recorded_layout(bundle_copy):
    picture = np.zeros((50, 50), np.uint8)
    picture[10:40, 20:30] = 255
    mnist = runtime.load(bundle_copy, providers="cpu")
    assert mnist.encoder.layout == "mnist"  # from its dataset's name: the bundled manifests predate dataset.layout
    edit_manifest(bundle_copy, lambda m: m["dataset"].update(layout="resize"))
    model = runtime.load(bundle_copy, providers="cpu")
    assert model.encoder.layout == "resize"
    for layout, encoded in (("resize", model), ("mnist", mnist)):
        expected = encoded.encode(preprocess(picture, layout), preprocess=False).mean
        np.testing.assert_allclose(encoded.encode(picture).mean, expected, atol=1e-6)
    assert not np.allclose(model.encode(picture).mean, mnist.encode(picture).mean)


def test_an_unlabelled_bundle_has_no_classes_and_no_nearest_class(bundle_copy, tmp_path, capsys):
    edit_manifest(bundle_copy, lambda m: m["dataset"].pop("class_names"))
    model = runtime.load(bundle_copy, providers="cpu")
    assert model.class_names == []
    with pytest.raises(ValueError, match="no class labels"):
        model.nearest_class([0.0, 0.0])
    picture = tmp_path / "seven.png"
    Image.fromarray(model.decode([0.5, -1.0]).__mul__(255).astype(np.uint8)).save(picture)
    assert cli(["encode", str(picture), "-m", str(bundle_copy), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["nearest_class"] is None
    assert cli(["encode", str(picture), "-m", str(bundle_copy)]) == 0
    assert "nearest class" not in capsys.readouterr().out
    assert cli(["info", "-m", str(bundle_copy)]) == 0
    assert "mnist, unlabelled" in capsys.readouterr().out
