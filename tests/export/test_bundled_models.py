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


def _graph_without_source_locations(graph) -> bytes:
    """A graph's bytes without each node's metadata_props, which record the exporting file's path and lines."""
    import onnx

    copy = onnx.GraphProto.FromString(graph.SerializeToString())
    for node in copy.node:
        del node.metadata_props[:]
    return copy.SerializeToString(deterministic=True)


@pytest.mark.slow  # two ONNX exports
@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_todays_exporter_writes_the_bundled_seed_graphs_unchanged(name):
    """Issue 49 made the exporter take every image shape; for the seed's 1 x 28 x 28 its graphs (ops, names,
    weights, shapes, doc strings) stay those of the shipped files, so re-exporting a bundled model changes no
    number and no file's meaning."""
    import onnx

    from latent_atlas.export.onnx_export import to_onnx_models
    from latent_atlas.train import bundle_weights
    from latent_atlas.train.model import VAE

    model = VAE(2)
    model.load_state_dict(bundle_weights.read(name).state)
    for filename, proto in to_onnx_models(model).items():
        shipped = onnx.load(fmt.BUNDLED_MODELS_DIR / name / filename)
        assert proto.doc_string == shipped.doc_string
        assert _graph_without_source_locations(proto.graph) == _graph_without_source_locations(shipped.graph), filename
