"""The models shipped inside the package: intact, and as good as their bundle.json says."""

from __future__ import annotations

import pytest

from latent_atlas.runtime import bundle as fmt
from latent_atlas.runtime.evaluation import onnx_neg_elbo
from latent_atlas.train import data
from latent_atlas.train.evaluate import BINARIZATION_SEED, binarized_array


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "mnist-binarized"])
def test_bundled_model_is_intact_and_describes_its_provenance(name):
    bundle = fmt.read(name, verify=True)  # every SHA-256 in bundle.json
    manifest = bundle.manifest
    assert manifest.variant == "fp32" and bundle.latent_dim == 2
    info = data.DATASETS[manifest.dataset.name]
    assert manifest.dataset.files == {f.filename: f.sha256 for f in info.files}
    assert manifest.training["seed"] == 0
    assert any(c.startswith("latent-atlas train") for c in manifest.training["commands"])
    assert manifest.export_command.startswith("latent-atlas export")


@pytest.mark.slow  # the whole test set through ONNX
def test_bundled_mnist_metrics_recomputed_from_onnx(data_dir):
    bundle = fmt.read("mnist")
    images, _ = data.load_split("mnist", "test", data_dir)
    result = onnx_neg_elbo(bundle.encoder_path, bundle.decoder_path, data.to_float(images),
                           seed=bundle.manifest.training["seed"] + 1000,  # fresh noise, not the recorded draw
                           prior=bundle.prior)
    recorded = bundle.manifest.metrics
    assert result["test_neg_elbo"] == pytest.approx(recorded["test_neg_elbo"], abs=1.0)
    assert result["test_kl"] == pytest.approx(recorded["test_kl"], abs=0.2)
    assert recorded["test_iw_nll"] < recorded["test_neg_elbo"]


@pytest.mark.slow  # the whole test set through ONNX
def test_bundled_binarized_model_is_measured_on_binary_pixels_as_the_papers_do(data_dir):
    """Issue 14: its likelihood is over binarized pixels (the test set drawn once with the trainer's seed),
    and its recorded bound is the literature's estimator, IW-500 on all 10,000 test images."""
    bundle = fmt.read("mnist-binarized")
    recorded = bundle.manifest.metrics
    assert recorded["binarized"] is True and recorded["binarization_seed"] == BINARIZATION_SEED
    assert (recorded["iw_samples"], recorded["iw_images"]) == (500, 10000)
    assert bundle.manifest.training["config"]["binarize"] == "dynamic"
    images, _ = data.load_split("mnist", "test", data_dir)
    binary = binarized_array(data.to_float(images))
    result = onnx_neg_elbo(bundle.encoder_path, bundle.decoder_path, binary, seed=bundle.manifest.training["seed"],
                           prior=bundle.prior)
    assert result["test_neg_elbo"] == pytest.approx(recorded["test_neg_elbo"], abs=1e-3)  # the recorded draw, exactly
    assert recorded["test_iw_nll"] < recorded["test_neg_elbo"]
