"""export/atlas_extra.py: the thumbnails, the file export writes by default, and `add-atlas-extra`, which
reproduces the bundled models' files and leaves every other file byte for byte."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from latent_atlas.export import atlas_extra
from latent_atlas.runtime import bundle as fmt


def test_thumbnails_keep_small_images_whole_and_quantise_their_levels():
    images = np.arange(2 * 28 * 28, dtype=np.int64).reshape(2, 28, 28).astype(np.uint8)
    thumbs = atlas_extra.thumbnails(images)
    assert thumbs.shape == images.shape and thumbs.dtype == np.uint8
    assert len(np.unique(thumbs)) == atlas_extra.THUMBNAIL_LEVELS
    assert np.abs(thumbs.astype(int) - images).max() <= 255 / (atlas_extra.THUMBNAIL_LEVELS - 1) / 2 + 1
    assert thumbs[0, 0, 0] == 0 and atlas_extra.thumbnails(np.full((1, 4, 4), 255, np.uint8)).min() == 255


def test_large_images_are_downscaled_keeping_their_aspect_and_colour():
    colour = np.zeros((3, 64, 48, 3), np.uint8)
    colour[..., 0] = 255
    thumbs = atlas_extra.thumbnails(colour)
    assert thumbs.shape == (3, fmt.MAX_THUMBNAIL_SIDE, 24, 3)
    assert (thumbs[..., 0] == 255).all() and (thumbs[..., 1:] == 0).all()
    with pytest.raises(ValueError, match="expected uint8 images"):
        atlas_extra.thumbnails(np.zeros((2, 8, 8, 2), np.uint8))


@pytest.mark.slow
def test_add_atlas_extra_reproduces_the_bundled_file_and_keeps_the_rest(tmp_path, data_dir):
    folder = shutil.copytree(fmt.resolve("mnist"), tmp_path / "mnist")
    shipped = (folder / fmt.ATLAS_EXTRA).read_bytes()
    before = {name: (folder / name).read_bytes() for name in (fmt.ENCODER, fmt.DECODER, fmt.ATLAS)}
    (folder / fmt.ATLAS_EXTRA).unlink()
    atlas_extra.add_to_bundle(folder, data_dir, log=lambda _: None)
    assert (folder / fmt.ATLAS_EXTRA).read_bytes() == shipped
    assert {name: (folder / name).read_bytes() for name in before} == before
    assert fmt.read(folder).read_atlas_extra() is not None
    # Codes that are not the atlas' (another model's atlas here) are refused before anything is written.
    shutil.copyfile(fmt.resolve("fashion-mnist") / fmt.ATLAS, folder / fmt.ATLAS)
    manifest = fmt.Manifest.load(folder)
    manifest.replace(files=fmt.file_entries(folder, list(manifest.files))).write(folder)
    (folder / fmt.ATLAS_EXTRA).unlink()
    with pytest.raises(ValueError, match="differ from the atlas'"):
        atlas_extra.add_to_bundle(folder, data_dir, log=lambda _: None)
    assert not (folder / fmt.ATLAS_EXTRA).exists()


@pytest.mark.slow
def test_export_writes_it_by_default_and_leaves_it_out_when_told(shared_bundle, shared_run, data_dir, tmp_path):
    extra = fmt.read(shared_bundle).read_atlas_extra()
    means, _ = fmt.read(shared_bundle).read_atlas()
    assert extra.z_logvar.shape == means.shape and len(extra.thumbnails) == len(means)
    assert fmt.ATLAS_EXTRA in fmt.Manifest.load(shared_bundle).files
    from latent_atlas.export.exporter import export_bundle

    out = export_bundle(shared_run, tmp_path / "plain", iw_samples=0, atlas_extra=False, verify=False,
                        data_dir=data_dir, log=lambda _: None)
    assert not (out / fmt.ATLAS_EXTRA).exists() and fmt.read(out).read_atlas_extra() is None


@pytest.mark.slow
def test_colour_models_get_colour_thumbnails(colour_bundle):
    extra = fmt.read(colour_bundle).read_atlas_extra()
    means, _ = fmt.read(colour_bundle).read_atlas()
    assert extra.thumbnails.shape == (len(means), 32, 32, 3) and extra.thumbnail(0).shape == (32, 32, 3)
    assert np.isfinite(extra.recon_error).all()


@pytest.mark.slow
def test_another_likelihoods_error_is_its_own(tmp_path, request):
    from types import SimpleNamespace

    import torch

    from latent_atlas.export.onnx_export import export_onnx
    from latent_atlas.runtime import evaluation, images

    # tests/conftest.py's builder of tiny models (a conftest is a plugin, not an importable module here).
    (tiny_export_source,) = {plugin.tiny_export_source for plugin in request.config.pluginmanager.get_plugins()
                             if hasattr(plugin, "tiny_export_source")}
    source = tiny_export_source((1, 16, 16), "continuous-bernoulli")
    export_onnx(source.model, tmp_path, likelihood=source.likelihood)
    atlas_extra.for_export(tmp_path, source, SimpleNamespace(dataset=SimpleNamespace(factor_names=())))
    extra = fmt.AtlasExtra(**{k: v for k, v in np.load(tmp_path / fmt.ATLAS_EXTRA).items()})
    encoder, decoder = evaluation.open_pair(tmp_path / fmt.ENCODER, tmp_path / fmt.DECODER)
    means = encoder.encode(source.x_test, preprocess=False).mean
    with torch.no_grad():
        want = source.likelihood.nll(source.model.decode(torch.from_numpy(means)), torch.from_numpy(source.x_test))
    np.testing.assert_allclose(extra.recon_error, want.numpy(), rtol=1e-4, atol=1e-3)
    # The Bernoulli's figure from the same decodes differs: the error is the model's own likelihood's.
    bernoulli = -evaluation.bernoulli_log_likelihood(images.to_display(source.x_test), decoder.decode(means))
    assert np.abs(bernoulli - extra.recon_error).max() > 1.0


def test_adding_to_a_bundle_of_another_likelihood_is_refused(tmp_path):
    folder = shutil.copytree(fmt.resolve("mnist"), tmp_path / "mnist")
    fmt.Manifest.load(folder).replace(likelihood={"name": "continuous-bernoulli"}).write(folder)
    with pytest.raises(ValueError, match="a continuous-bernoulli model; its atlas_extra.npz is written by export"):
        atlas_extra.add_to_bundle(folder, log=lambda _: None)
