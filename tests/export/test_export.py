"""`latent-atlas export`: correct, self-contained, self-describing, reproducible bundles; refusals lose nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from latent_atlas.cli.main import main as cli
from latent_atlas.export import verify
from latent_atlas.export.exporter import export_bundle, fit_bundle_prior
from latent_atlas.runtime import bundle as fmt
from latent_atlas.train import data


# run_dir and bundle_dir: tests/export/conftest.py


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_bundle_files_are_self_contained_and_checked(bundle_dir):
    assert sorted(p.name for p in bundle_dir.iterdir()) == sorted([fmt.ENCODER, fmt.DECODER, fmt.MANIFEST, fmt.ATLAS, fmt.ATLAS_EXTRA])
    for name in (fmt.ENCODER, fmt.DECODER):
        model = onnx.load(bundle_dir / name, load_external_data=False)
        onnx.checker.check_model(model, full_check=True)
        assert model.opset_import[0].version >= 18
        assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
        assert not any(n.op_type.startswith("Random") for n in model.graph.node)


def test_signatures(bundle_dir):
    encoder, decoder = session(bundle_dir / fmt.ENCODER), session(bundle_dir / fmt.DECODER)
    assert [(i.name, i.type) for i in encoder.get_inputs()] == [("image", "tensor(float)")]
    assert [o.name for o in encoder.get_outputs()] == ["z_mean", "z_logvar"]
    assert [(i.name, i.type) for i in decoder.get_inputs()] == [("z", "tensor(float)")]
    assert [o.name for o in decoder.get_outputs()] == ["image"]
    for n in (1, 7, 256):
        mean, logvar = encoder.run(None, {"image": np.random.rand(n, 1, 28, 28).astype(np.float32)})
        assert mean.shape == logvar.shape == (n, 2)
        image = decoder.run(None, {"z": np.random.randn(n, 2).astype(np.float32)})[0]
        assert image.shape == (n, 1, 28, 28) and image.min() >= 0 and image.max() <= 1


def test_metadata_describes_a_lone_file(bundle_dir):
    manifest = json.loads((bundle_dir / fmt.MANIFEST).read_text())
    for name, role in ((fmt.ENCODER, "encoder"), (fmt.DECODER, "decoder")):
        props = {p.key: p.value for p in onnx.load(bundle_dir / name).metadata_props}
        meta = fmt.parse_onnx_metadata(props)
        assert meta["role"] == role
        assert meta["latent_dim"] == 2 and meta["image_shape"] == [1, 28, 28] and meta["pixel_range"] == [0.0, 1.0]
        assert meta["dataset"]["class_names"] == [str(i) for i in range(10)]
        assert meta["latent_stats"] == manifest["latent_stats"]
        assert meta["metrics"] == manifest["metrics"] and meta["training"]["config"]["latent_dim"] == 2
        assert meta["training"]["selected_by"] == "val_neg_elbo"  # the figure that picked the weights
        assert "onnxruntime" in meta["versions"] and "torch" in meta["versions"]
    assert manifest["schema_version"] == fmt.SCHEMA_VERSION and manifest["variant"] == "fp32"
    assert manifest["dataset"]["files"]["t10k-images-idx3-ubyte.gz"] == data.DATASETS["mnist"].file("t10k-images-idx3-ubyte.gz").sha256
    for key in ("mean", "std", "p01", "p05", "p95", "p99"):
        assert len(manifest["latent_stats"][key]) == 2
    assert manifest["metrics"]["iw_samples"] == 2 and manifest["metrics"]["test_iw_nll"] < manifest["metrics"]["test_neg_elbo"] + 1
    assert manifest["metrics"]["iw_images"] == 10000
    fmt.read(bundle_dir, verify=True)


def test_the_iw_bound_runs_on_a_recorded_subset_of_the_test_set(run_dir, tmp_path, data_dir, capsys):
    from latent_atlas.runtime import evaluation

    out = tmp_path / "bundle"
    assert cli(["export", str(run_dir), "--out", str(out), "--iw-samples", "3", "--iw-images", "40",
                "--no-verify", "--data-dir", str(data_dir)]) == 0
    metrics = fmt.Manifest.load(out).metrics
    assert metrics["iw_samples"] == 3 and metrics["iw_images"] == 40
    # The first 40 test images, the export's seed: the figure is exactly the runtime's on those files.
    x_test = data.to_float(data.load_dataset("mnist", data_dir).test_images[:40])
    encoder, decoder = evaluation.open_pair(out / fmt.ENCODER, out / fmt.DECODER)
    expected = -evaluation.iw_log_likelihood(encoder, decoder, x_test, 3, seed=0).mean()
    assert metrics["test_iw_nll"] == pytest.approx(expected, abs=1e-3)
    for bad in ("0", "-5", "some"):
        with pytest.raises(SystemExit) as refused:  # argparse's refusal, before any work
            cli(["export", str(run_dir), "--out", str(tmp_path / "no"), "--iw-images", bad])
        assert refused.value.code == 2
        err = capsys.readouterr().err
        assert "expected a positive number of test images or 'all'" in err and repr(bad) in err
    assert not (tmp_path / "no").exists()


def test_atlas_holds_test_set_means_without_pickles(bundle_dir):
    with np.load(bundle_dir / fmt.ATLAS, allow_pickle=False) as atlas:
        assert atlas["z_mean"].shape == (10000, 2) and atlas["z_mean"].dtype == np.float32
        assert atlas["labels"].shape == (10000,) and set(np.unique(atlas["labels"])) == set(range(10))


def test_export_is_byte_identical(run_dir, bundle_dir, tmp_path, data_dir):
    again = export_bundle(run_dir, tmp_path / "again", iw_samples=2, iw_images=None, data_dir=data_dir,
                          log=lambda _: None)
    for name in (fmt.ENCODER, fmt.DECODER, fmt.ATLAS, fmt.ATLAS_EXTRA):
        assert (again / name).read_bytes() == (bundle_dir / name).read_bytes(), name


def test_parity_failure_stops_the_export_and_writes_nothing(run_dir, tmp_path, data_dir, monkeypatch, capsys):
    monkeypatch.setattr(verify, "PARITY_TOLERANCE", -1.0)  # no export can pass
    out = tmp_path / "bundle"
    assert cli(["export", str(run_dir), "--out", str(out), "--iw-samples", "0", "--data-dir", str(data_dir)]) == 2
    assert "disagree beyond" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".bundle.tmp-*"))


@pytest.mark.parametrize("flag, variant", [("--quantize=int8", "int8"), ("--fp16", "fp16")])
def test_variants_run_and_describe_themselves(run_dir, bundle_dir, tmp_path, data_dir, flag, variant):
    out = tmp_path / variant
    assert cli(["export", str(run_dir), "--out", str(out), flag, "--iw-samples", "0", "--data-dir", str(data_dir)]) == 0
    manifest = json.loads((out / fmt.MANIFEST).read_text())
    assert manifest["variant"] == variant
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in bundle_dir.iterdir())
    for n in (1, 7, 256):  # every variant must actually run on the CPU provider
        mean, _ = session(out / fmt.ENCODER).run(None, {"image": np.random.rand(n, 1, 28, 28).astype(np.float32)})
        image = session(out / fmt.DECODER).run(None, {"z": mean})[0]
        assert image.shape == (n, 1, 28, 28) and image.dtype == np.float32
    fp32 = json.loads((bundle_dir / fmt.MANIFEST).read_text())
    ratio = fp32["files"][fmt.ENCODER]["bytes"] / manifest["files"][fmt.ENCODER]["bytes"]
    assert ratio > (3.5 if variant == "int8" else 1.9)
    assert manifest["metrics"]["test_neg_elbo"] <= fp32["metrics"]["test_neg_elbo"] + 1.0
    if variant == "int8":
        ops = {n.op_type for n in onnx.load(out / fmt.ENCODER).graph.node}
        assert "QuantizeLinear" in ops and "ConvInteger" not in ops


def test_refuses_a_different_bundle_unless_forced(run_dir, bundle_dir, tmp_path, data_dir, capsys):
    out = tmp_path / "bundle"
    shutil.copytree(bundle_dir, out)
    manifest = json.loads((out / fmt.MANIFEST).read_text())
    manifest["name"] = "someone-else"
    (out / fmt.MANIFEST).write_text(json.dumps(manifest))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    args = ["export", str(run_dir), "--out", str(out), "--iw-samples", "2", "--data-dir", str(data_dir)]
    assert cli(args) == 2
    assert "already holds a different bundle" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert cli([*args, "--force"]) == 0
    assert json.loads((out / fmt.MANIFEST).read_text())["name"] == "mnist"
    assert not list(tmp_path.glob(".bundle.*")), "temporary or old bundle directories were left behind"
    assert cli(args) == 0  # the same bundle again: nothing to refuse
    assert "exact bundle" in capsys.readouterr().err


def test_refuses_a_non_bundle_directory(run_dir, tmp_path, capsys):
    out = tmp_path / "photos"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"precious")
    assert cli(["export", str(run_dir), "--out", str(out)]) == 2
    assert "holds no bundle" in capsys.readouterr().err
    assert (out / "holiday.jpg").read_bytes() == b"precious"


def test_bad_run_directories(tmp_path, run_dir, capsys):
    assert cli(["export", str(tmp_path), "--out", str(tmp_path / "b")]) == 2
    assert "not a run directory" in capsys.readouterr().err
    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    best = broken / json.loads((broken / "checkpoint.json").read_text())["best"]["file"]
    best.write_bytes(b"\0" * 100)
    assert cli(["export", str(broken), "--out", str(tmp_path / "b")]) == 2
    assert "SHA-256 does not match" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_a_different_bundle_is_refused_before_the_export_runs(run_dir, bundle_dir, tmp_path, data_dir, capsys,
                                                              monkeypatch):
    """Issue 13: the refusal came only after the whole export had run."""
    from latent_atlas.export import exporter

    out = tmp_path / "bundle"
    shutil.copytree(bundle_dir, out)
    manifest = json.loads((out / fmt.MANIFEST).read_text())
    manifest["name"] = "someone-else"
    (out / fmt.MANIFEST).write_text(json.dumps(manifest))
    monkeypatch.setattr(exporter, "export_onnx", lambda *a, **k: pytest.fail("the export ran before the refusal"))
    assert cli(["export", str(run_dir), "--out", str(out), "--iw-samples", "2", "--data-dir", str(data_dir)]) == 2
    assert "already holds a different bundle" in capsys.readouterr().err


def test_an_out_that_is_a_file_is_refused_before_loading(run_dir, tmp_path, capsys, monkeypatch):
    from latent_atlas.export import exporter

    (tmp_path / "bundle.zip").write_bytes(b"precious")
    monkeypatch.setattr(exporter, "load_model", lambda *a, **k: pytest.fail("the run was loaded before the check"))
    assert cli(["export", str(run_dir), "--out", str(tmp_path / "bundle.zip")]) == 2
    err = capsys.readouterr().err
    assert "bundle.zip exists and is not a directory" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "bundle.zip").read_bytes() == b"precious"


def test_the_bundle_records_its_layout_and_how_its_metrics_were_computed(run_dir, bundle_dir, data_dir):
    from latent_atlas.train.evaluate import evaluate_run

    manifest = fmt.Manifest.load(bundle_dir)
    assert manifest.dataset.layout == "mnist" and manifest.layout == "mnist"
    assert manifest.metrics["computed_with"] == "onnxruntime" and manifest.metrics["iw_samples"] == 2
    # The -ELBO and the IW bound from the ONNX files (numpy) agree with PyTorch's on the same weights:
    # different noise draws (numpy vs torch) and clipped float32 probabilities, within a fraction of a nat.
    torch_result = evaluate_run(run_dir, iw_samples=2, data_dir=data_dir, device="cpu")
    assert manifest.metrics["test_neg_elbo"] == pytest.approx(torch_result["neg_elbo"], abs=0.5)
    assert manifest.metrics["test_iw_nll"] == pytest.approx(torch_result["iw_nll"], abs=0.5)


def test_the_exact_likelihood_of_a_run_is_its_bundles(run_dir, bundle_dir, data_dir):
    """`latent-atlas evaluate --exact` (PyTorch's decoder) and the runtime's quadrature on the exported ONNX
    decoder are one computation on the same weights: they agree to float32 rounding."""
    import torch

    from latent_atlas.runtime import evaluation
    from latent_atlas.runtime.model import Decoder
    from latent_atlas.train.evaluate import exact_log_likelihood, load_model
    from latent_atlas.train.model import VAE

    x = data.to_float(data.load_split("mnist", "test", data_dir)[0][:50])
    model, _ = load_model(run_dir)
    from_torch = exact_log_likelihood(model, torch.from_numpy(x), spacing=0.1).numpy()
    from_onnx = evaluation.grid_log_likelihood(Decoder(bundle_dir / fmt.DECODER, providers="cpu"), x, spacing=0.1)
    np.testing.assert_allclose(from_torch, from_onnx, rtol=0, atol=0.01)
    with pytest.raises(ValueError, match="importance-weighted"):  # a 3-D latent's grid is out of reach
        exact_log_likelihood(VAE(3), torch.from_numpy(x[:1]))


@pytest.fixture(scope="module")
def fitted_export(run_dir, tmp_path_factory, data_dir) -> tuple[Path, str]:
    """The run exported with a 5-component fitted prior, and what the export said."""
    out = tmp_path_factory.mktemp("fitted") / "bundle"
    said = []
    export_bundle(run_dir, out, iw_samples=3, iw_images=40, verify=False, prior_components=5, data_dir=data_dir,
                  log=said.append)
    return out, "\n".join(said)


def test_a_fitted_prior_is_recorded_measured_with_and_carried_by_the_files(fitted_export, run_dir, tmp_path, data_dir):
    from latent_atlas.runtime import evaluation
    from latent_atlas.runtime.model import Decoder
    from latent_atlas.runtime.prior import GaussianMixture

    out, said = fitted_export
    assert "a 5-component Gaussian mixture fitted to" in said
    bundle = fmt.read(out)
    prior, fitted = bundle.prior, bundle.manifest.prior["fitted"]
    assert isinstance(prior, GaussianMixture) and prior.components == 5
    assert fitted["split"] == "train" and fitted["codes"] == 2 * bundle.manifest.to_json()["dataset"]["source"]["counts"]["train"]
    assert fitted["mean_log_likelihood"] > fitted["standard_normal_mean_log_likelihood"]  # EM beat N(0, I)
    # The recorded bound is the runtime's bound under that prior, on the same images and seed
    x_test = data.to_float(data.load_dataset("mnist", data_dir).test_images[:40])
    encoder, decoder = evaluation.open_pair(out / fmt.ENCODER, out / fmt.DECODER)
    with_prior = -evaluation.iw_log_likelihood(encoder, decoder, x_test, 3, seed=0, prior=prior).mean()
    assert bundle.manifest.metrics["test_iw_nll"] == pytest.approx(with_prior, abs=1e-3)
    assert with_prior != pytest.approx(-evaluation.iw_log_likelihood(encoder, decoder, x_test, 3, seed=0).mean(), abs=1e-3)
    # A lone decoder.onnx knows its prior from its metadata
    lone = Decoder(out / fmt.DECODER, providers="cpu")
    np.testing.assert_allclose(lone.prior.means, prior.means)
    for bad in (-1, 10_000):
        with pytest.raises(ValueError, match="--prior-components must be from 0"):
            export_bundle(run_dir, tmp_path / "no", prior_components=bad, data_dir=data_dir)
    assert not (tmp_path / "no").exists()


def test_fit_prior_gives_a_bundle_whose_run_is_gone_a_prior_and_leaves_it_alone(bundle_dir, fitted_export, tmp_path,
                                                                                 data_dir, capsys, monkeypatch):
    from latent_atlas.runtime import evaluation

    before = {p.name: p.read_bytes() for p in bundle_dir.iterdir()}
    out = tmp_path / "with-prior"
    assert cli(["fit-prior", "-m", str(bundle_dir), "--out", str(out), "--components", "5", "--iw-samples", "3",
                "--iw-images", "30", "--data-dir", str(data_dir)]) == 0
    assert {p.name: p.read_bytes() for p in bundle_dir.iterdir()} == before  # the source is untouched
    fitted = fmt.read(out)
    assert fitted.prior.components == 5 and fitted.prior.fitted["command"].startswith("latent-atlas fit-prior")
    # the fit export --prior-components makes from the run, number for number
    exported = fmt.read(fitted_export[0]).prior
    np.testing.assert_array_equal(fitted.prior.means, exported.means)
    np.testing.assert_array_equal(fitted.prior.covariances, exported.covariances)
    assert fitted.manifest.export_command == fmt.read(bundle_dir).manifest.export_command  # how the files were made
    # the same graphs and weights: only the metadata changed
    for name in (fmt.ENCODER, fmt.DECODER):
        a, b = onnx.load(bundle_dir / name), onnx.load(out / name)
        assert a.graph == b.graph
        assert json.loads({p.key: p.value for p in b.metadata_props}["latent_atlas.prior"])["kind"] == "gaussian_mixture"
    np.testing.assert_array_equal(np.load(out / fmt.ATLAS)["z_mean"], np.load(bundle_dir / fmt.ATLAS)["z_mean"])
    metrics = fitted.manifest.metrics
    x_test = data.to_float(data.load_dataset("mnist", data_dir).test_images[:30])
    encoder, decoder = evaluation.open_pair(out / fmt.ENCODER, out / fmt.DECODER)
    under = evaluation.iw_log_likelihoods(encoder, decoder, x_test, {"fitted": fitted.prior,
                                                                     "normal": fmt.read(bundle_dir).prior}, 3, seed=0)
    assert metrics["test_iw_nll"] == pytest.approx(-under["fitted"].mean(), abs=1e-3)
    assert metrics["test_iw_nll_standard_normal"] == pytest.approx(-under["normal"].mean(), abs=1e-3)
    assert "under the fitted prior" in capsys.readouterr().err
    # refusals say what was expected and write nothing
    with pytest.raises(ValueError, match="is the bundle being read"):
        fit_bundle_prior(bundle_dir, bundle_dir, 4, data_dir=data_dir)
    with pytest.raises(FileExistsError, match="already holds a different bundle"):
        fit_bundle_prior(bundle_dir, out, 5, iw_samples=3, iw_images=20, data_dir=data_dir)
    assert fmt.read(out).manifest.metrics["iw_images"] == 30
    # another model in --out is refused before the fit (minutes on a real bundle), not after it
    other = tmp_path / "other-model"
    shutil.copytree(out, other)
    (other / fmt.MANIFEST).write_text((other / fmt.MANIFEST).read_text().replace('"name": "', '"name": "other-', 1))
    def fit_not_expected(*args, **kwargs):
        raise AssertionError("fit_prior ran before --out was checked")
    monkeypatch.setattr("latent_atlas.export.exporter.fit_prior", fit_not_expected)
    with pytest.raises(FileExistsError, match="already holds a different bundle"):
        fit_bundle_prior(bundle_dir, other, 5, iw_samples=3, iw_images=30, data_dir=data_dir)
