"""--init-from: a new run that starts from another run's best weights (fine-tuning), recorded and resumable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from latent_atlas.cli.main import main as cli
from latent_atlas.runtime import bundle as fmt
from latent_atlas.train import bundle_weights, phase_form
from latent_atlas.train.checkpoint import load_checkpoint
from latent_atlas.train.config import TrainConfig
from latent_atlas.train.train import train

TINY = dict(limit=500, batch_size=32, seed=0, eval_images=200)
# A learning rate so small that a fine-tune's weights after one epoch are still its starting weights.
STILL = dict(lr=1e-12, lr_schedule="constant")


@pytest.fixture(scope="module")
def source_run(shared_run) -> Path:
    """The session's shared run (tests/conftest.py): evaluated on as many images as TINY's, so figures compare."""
    return shared_run


def model_weights(run: Path, which: str) -> dict[str, torch.Tensor]:
    return load_checkpoint(run).model_state(which)


def test_a_fine_tune_starts_from_the_source_runs_best_weights_and_says_so(tmp_path, data_dir, source_run):
    # Another objective than the source's: a fine-tune is a new run; only the weights carry over. The same
    # seed, so that its evaluation draws the same noise as the source's and the figures below compare.
    config = dict(TINY, epochs=1, objective="iwae", importance_samples=2, **STILL)
    tuned, fresh = tmp_path / "tuned", tmp_path / "fresh"
    train(TrainConfig(init_from=str(source_run), **config), tuned, data_dir=data_dir, progress=False, plots=False)
    train(TrainConfig(**config), fresh, data_dir=data_dir, progress=False, plots=False)
    start = model_weights(source_run, "best")
    for name, value in model_weights(tuned, "last").items():
        assert torch.allclose(value, start[name], atol=1e-6), name
    assert not all(torch.allclose(value, start[name], atol=1e-3) for name, value in model_weights(fresh, "last").items())

    source, state = load_checkpoint(source_run).state, load_checkpoint(tuned).state
    # The source's commands come along, so a bundle exported from the fine-tune says how its weights began.
    assert state.initialized_from == {"run": str(source_run), "file": source.best.file, "sha256": source.best.sha256,
                                      "epoch": 1, "commands": source.commands}
    assert state.config.init_from == str(source_run) and load_checkpoint(fresh).state.initialized_from is None
    # Its first epoch is measured on the source's weights, not on a random model's.
    first = json.loads((tuned / "metrics.jsonl").read_text().splitlines()[0])
    source_first = json.loads((source_run / "metrics.jsonl").read_text().splitlines()[0])
    assert first["val_neg_elbo"] == pytest.approx(source_first["val_neg_elbo"], abs=0.01)


def test_a_fine_tune_resumes_exactly_from_its_own_weights(tmp_path, data_dir, source_run):
    config = dict(TINY, epochs=2, lr_decay_epochs=2, lr=1e-4, init_from=str(source_run))
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(TrainConfig(**config), straight, data_dir=data_dir, progress=False, plots=False)
    train(TrainConfig(**{**config, "epochs": 1}), resumed, data_dir=data_dir, progress=False, plots=False)
    train(TrainConfig(**config), resumed, data_dir=data_dir, resume=True, progress=False, plots=False)
    a, b = model_weights(straight, "last"), model_weights(resumed, "last")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert load_checkpoint(resumed).state.initialized_from == load_checkpoint(straight).state.initialized_from


def test_the_cli_fine_tunes_and_the_bundle_records_the_starting_weights(tmp_path, data_dir, source_run):
    tuned, bundle = tmp_path / "tuned", tmp_path / "bundle"
    assert cli(["train", "--init-from", str(source_run), "--limit", "500", "--eval-images", "200", "--epochs", "1",
                "--lr-decay-epochs", "1", "--lr", "1e-4", "--data-dir", str(data_dir), "--out", str(tuned),
                "--quiet", "--no-plots"]) == 0
    assert load_checkpoint(tuned).state.config.init_from == str(source_run)
    assert cli(["export", str(tuned), "--out", str(bundle), "--iw-samples", "0", "--data-dir", str(data_dir)]) == 0
    training = json.loads((bundle / "bundle.json").read_text())["training"]
    assert training["initialized_from"]["sha256"] == load_checkpoint(source_run).state.best.sha256
    assert training["config"]["init_from"] == str(source_run)


def test_a_source_of_another_latent_size_is_refused_before_the_data_loads(tmp_path, source_run, capsys):
    out = tmp_path / "tuned"
    assert cli(["train", "--init-from", str(source_run), "--latent-dim", "3", "--data-dir", str(tmp_path / "none"),
                "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "2-D latent space and this one 3-D" in error and "--latent-dim 2" in error
    assert not out.exists()


def test_a_missing_source_is_a_clear_error(tmp_path, capsys):
    assert cli(["train", "--init-from", str(tmp_path / "nowhere"), "--out", str(tmp_path / "tuned")]) == 2
    error = capsys.readouterr().err
    assert "nowhere: no such run directory, and not a bundled model (" in error and "mnist-binarized" in error


def test_resume_keeps_its_source_and_refuses_another(tmp_path, data_dir, source_run, capsys):
    run = tmp_path / "tuned"
    train(TrainConfig(**TINY, epochs=1, lr_decay_epochs=2, init_from=str(source_run)), run, data_dir=data_dir,
          progress=False, plots=False)
    assert cli(["train", "--out", str(run), "--resume", "--init-from", str(tmp_path / "other")]) == 2
    assert "init_from" in capsys.readouterr().err


@pytest.fixture(scope="module")
def source_bundle(shared_bundle) -> Path:
    """The shared run's fp32 export."""
    return shared_bundle


def test_a_fine_tune_from_a_bundle_starts_from_the_weights_it_was_exported_from(tmp_path, data_dir, source_run,
                                                                                source_bundle):
    tuned = tmp_path / "tuned"
    train(TrainConfig(init_from=str(source_bundle), **TINY, epochs=1, **STILL), tuned, data_dir=data_dir,
          progress=False, plots=False)
    start = model_weights(source_run, "best")
    for name, value in model_weights(tuned, "last").items():
        assert torch.allclose(value, start[name], atol=1e-6), name
    manifest, source = fmt.Manifest.load(source_bundle), load_checkpoint(source_run).state
    assert load_checkpoint(tuned).state.initialized_from == {
        "bundle": str(source_bundle), "name": manifest.name, "epoch": 1, "commands": source.commands,
        "sha256": {f: manifest.files[f]["sha256"] for f in (fmt.ENCODER, fmt.DECODER)}}


def test_the_weights_read_from_a_bundle_are_exactly_the_runs(source_run, source_bundle):
    # ONNX keeps float32 initializers bit for bit, and the phase form is a rearrangement: nothing is rounded.
    start = model_weights(source_run, "best")
    assert all(torch.equal(value, start[name]) for name, value in bundle_weights.read(source_bundle).state.items())


def test_a_bundled_model_is_a_source_by_name(tmp_path, capsys):
    weights = bundle_weights.read("mnist-binarized")
    assert weights.record("mnist-binarized")["initialized_from"]["run"]  # the fine-tune it was itself made by
    out = tmp_path / "tuned"
    assert cli(["train", "--init-from", "mnist", "--latent-dim", "3", "--data-dir", str(tmp_path / "none"),
                "--out", str(out)]) == 2
    assert "2-D latent space and this one 3-D" in capsys.readouterr().err and not out.exists()


def test_a_rounded_variant_is_refused(tmp_path, data_dir, source_run, capsys):
    int8 = tmp_path / "int8"
    assert cli(["export", str(source_run), "--out", str(int8), "--quantize", "int8", "--iw-samples", "0",
                "--data-dir", str(data_dir)]) == 0
    assert cli(["train", "--init-from", str(int8), "--out", str(tmp_path / "tuned"), "--data-dir", str(data_dir)]) == 2
    assert "int8 bundle holds rounded weights; fine-tune from the float32 bundle" in capsys.readouterr().err


def test_weights_that_do_not_reproduce_the_bundle_are_refused(source_bundle, monkeypatch):
    # The read-back check is what stands between a layout mistake and a fine-tune from wrong weights.
    monkeypatch.setattr(bundle_weights, "weight_from_phase_output_kernel",
                        lambda kernel: phase_form.weight_from_phase_output_kernel(kernel).flip(2))
    with pytest.raises(ValueError, match="do not reproduce them"):
        bundle_weights.read(source_bundle)
