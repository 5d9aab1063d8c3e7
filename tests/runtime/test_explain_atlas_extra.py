"""atlas_extra.npz as the runtime reads it (runtime/bundle.py read_atlas_extra, LatentModel.atlas_extra): the
bundled models carry one, a bundle without one still loads, and a bad file is one clear BundleError."""

from __future__ import annotations

import io
import json
import shutil
import zipfile

import numpy as np
import pytest

from latent_atlas.runtime import bundle as fmt
from latent_atlas.runtime import load
from latent_atlas.runtime.json_schema import first_error


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "mnist-binarized"])
def test_every_bundled_model_carries_its_atlas_extra(name):
    bundle = fmt.read(name)
    extra = bundle.read_atlas_extra()
    means, _ = bundle.read_atlas()
    assert extra.thumbnails.shape == (len(means), 28, 28) and extra.thumbnails.dtype == np.uint8
    assert extra.z_logvar.shape == means.shape and extra.recon_error.shape == (len(means),)
    assert extra.factors is None and extra.factor_names == ()
    assert (extra.recon_error > 0).all()  # -log p(x|z) of a Bernoulli on non-constant images
    # The error the map colours by is the reconstruction term of the model's metric (which uses a posterior
    # sample, so it is a little larger on average than at the mean).
    assert 0.8 < extra.recon_error.mean() / bundle.manifest.metrics["test_recon"] < 1.0
    assert 0.0 <= extra.thumbnail(0).min() and extra.thumbnail(0).max() <= 1.0


def test_the_loaded_model_reads_it_once(model):
    assert model.atlas_extra is model.atlas_extra
    assert model.atlas_extra.z_logvar.shape[1] == model.latent_dim


def _copy(tmp_path, name="mnist"):
    return shutil.copytree(fmt.resolve(name), tmp_path / name)


def _relist(folder):
    """bundle.json's files entries brought up to date with what the folder holds (a deliberate edit)."""
    manifest = fmt.Manifest.load(folder)
    names = [n for n in manifest.files if (folder / n).exists()]
    manifest.replace(files=fmt.file_entries(folder, names)).write(folder)


def test_a_bundle_without_it_loads_and_says_none(tmp_path):
    folder = _copy(tmp_path)
    (folder / fmt.ATLAS_EXTRA).unlink()
    assert fmt.read(folder).read_atlas_extra() is None  # listed but absent: optional, like the atlas
    _relist(folder)
    assert load(folder).atlas_extra is None
    # A file the manifest does not list is not read: no checksum vouches for it.
    shutil.copyfile(fmt.resolve("mnist") / fmt.ATLAS_EXTRA, folder / fmt.ATLAS_EXTRA)
    assert fmt.read(folder).read_atlas_extra() is None


def _write_arrays(folder, **arrays):
    fmt.write_npz(folder / fmt.ATLAS_EXTRA, **arrays)
    _relist(folder)


def test_bad_files_are_one_line_errors(tmp_path):
    folder = _copy(tmp_path)
    good = {k: v for k, v in np.load(folder / fmt.ATLAS_EXTRA).items()}
    cases = {
        "rows": {**good, "recon_error": good["recon_error"][:-1]},
        "side": {**good, "thumbnails": np.zeros((len(good["z_logvar"]), 40, 40), np.uint8)},
        "dims": {**good, "z_logvar": np.zeros((len(good["z_logvar"]), 3), np.float32)},
        "dtype": {**good, "recon_error": good["recon_error"].astype(np.float64)},
        "nan": {**good, "z_logvar": np.full_like(good["z_logvar"], np.nan)},
        "missing": {"thumbnails": good["thumbnails"]},
        "factors": {**good, "factors": np.zeros((len(good["z_logvar"]), 2), np.float32)},
    }
    for case, arrays in cases.items():
        _write_arrays(folder, **arrays)
        with pytest.raises(fmt.BundleError) as info:
            fmt.read(folder).read_atlas_extra()
        message = str(info.value)
        assert "\n" not in message and str(folder / fmt.ATLAS_EXTRA) in message, case
        assert ("arrays of different lengths" if case == "rows" else "not a readable atlas extra") in message, case


def test_a_pickle_is_refused_before_it_is_loaded(tmp_path):
    folder = _copy(tmp_path)
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.array([object()], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(folder / fmt.ATLAS_EXTRA, "w") as archive:
        archive.writestr("thumbnails.npy", buffer.getvalue())
    _relist(folder)
    with pytest.raises(fmt.BundleError, match="pickled objects are never loaded"):
        fmt.read(folder).read_atlas_extra()


def test_factors_are_read_with_the_names_the_manifest_gives(tmp_path):
    folder = _copy(tmp_path)
    good = {k: v for k, v in np.load(folder / fmt.ATLAS_EXTRA).items()}
    factors = np.random.default_rng(0).random((len(good["z_logvar"]), 2), dtype=np.float32)
    _write_arrays(folder, **good, factors=factors)
    manifest = fmt.Manifest.load(folder)
    dataset = manifest.dataset.to_json() | {"factor_names": ["size", "hue"]}
    manifest.replace(dataset=fmt.DatasetEntry.from_json(dataset, folder)).write(folder)
    extra = fmt.read(folder).read_atlas_extra()
    assert extra.factor_names == ("size", "hue")
    np.testing.assert_array_equal(extra.factors, factors)
    assert json.loads((folder / fmt.MANIFEST).read_text())["dataset"]["factor_names"] == ["size", "hue"]
    bad = fmt.Manifest.load(folder).to_json()
    bad["dataset"]["factor_names"] = ["<script>"]
    assert first_error(fmt.schema.SCHEMA, bad).path == "dataset.factor_names[0]"
