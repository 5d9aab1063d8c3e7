"""The training loop on real MNIST (small --limit): outputs, exact resume, Ctrl-C, SIGKILL, early stopping."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from latent_atlas.cli.main import main as cli
from latent_atlas.train import train as train_module
from latent_atlas.train.checkpoint import load_checkpoint
from latent_atlas.train.config import TrainConfig
from latent_atlas.train.model import VAE
from latent_atlas.train.train import make_optimizer, train

# The per-epoch evaluation on 1,000 validation and test images, not 15,000: these tests are about the loop.
QUICK = dict(eval_images=1000)
SMALL = dict(limit=6000, batch_size=32, epochs=2, seed=0, **QUICK)


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir).tensors("last")


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, f"tensors differ: {different[:5]}"


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory, data_dir) -> Path:
    """Two epochs without interruption: the reference every resumed run must reproduce bit for bit."""
    run = tmp_path_factory.mktemp("straight") / "run"
    train(TrainConfig(**SMALL), run, data_dir=data_dir, progress=False, plots=False)
    return run


@pytest.mark.slow
def test_writes_metrics_plots_and_checkpoint(tmp_path, data_dir):
    run = tmp_path / "run"
    state = train(TrainConfig(limit=500, epochs=1, seed=0, **QUICK), run, data_dir=data_dir, progress=False)
    assert state.epoch == 1 and state.stopped == "completed"
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    for key in ("train_loss", "test_neg_elbo", "test_recon", "test_kl", "images_per_s"):
        assert key in record
    assert record["test_neg_elbo"] == pytest.approx(record["test_recon"] + record["test_kl"])
    assert record["test_images"] == record["val_images"] == QUICK["eval_images"]  # --eval-images, recorded
    for name in ("reconstructions", "samples", "manifold", "latent"):
        with Image.open(run / "plots" / f"epoch-0001-{name}.png") as image:
            assert image.width > 100 and image.height > 100
    with Image.open(run / "plots" / "epoch-0001-manifold.png") as image:
        assert image.size == (10 * 28 * 2, 10 * 28 * 2)  # the 10 x 10 grid at 2x
    checkpoint = load_checkpoint(run)
    assert checkpoint.state.best.epoch == 1
    assert set(checkpoint.model_state("best")) == set(checkpoint.model_state("last"))


@pytest.mark.slow
def test_no_latent_scatter_above_two_dims(tmp_path, data_dir):
    run = tmp_path / "run"
    train(TrainConfig(limit=200, epochs=1, latent_dim=3, **QUICK), run, data_dir=data_dir, progress=False)
    assert (run / "plots" / "epoch-0001-manifold.png").exists()
    assert not (run / "plots" / "epoch-0001-latent.png").exists()


@pytest.mark.slow
def test_resume_gives_identical_weights(tmp_path, data_dir, straight_run):
    run = tmp_path / "run"
    train(TrainConfig(**{**SMALL, "epochs": 1}), run, data_dir=data_dir, progress=False, plots=False)
    train(TrainConfig(**SMALL), run, data_dir=data_dir, resume=True, progress=False, plots=False)
    assert_same_weights(run, straight_run)
    epochs = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2]


@pytest.mark.slow
def test_same_seed_same_weights_other_seed_differs(tmp_path, data_dir):
    config = dict(limit=300, epochs=1, batch_size=64, **QUICK)
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        train(TrainConfig(**config, seed=seed), tmp_path / name, data_dir=data_dir, progress=False, plots=False)
    assert_same_weights(tmp_path / "a", tmp_path / "b")
    with pytest.raises(AssertionError):
        assert_same_weights(tmp_path / "a", tmp_path / "c")


def _start_cli_training(run: Path, data_dir: Path) -> subprocess.Popen:
    args = ["--limit", str(SMALL["limit"]), "--batch-size", str(SMALL["batch_size"]), "--epochs", "2",
            "--seed", "0", "--eval-images", str(QUICK["eval_images"]), "--no-plots", "--quiet", "--data-dir", str(data_dir), "--out", str(run)]
    return subprocess.Popen([sys.executable, "-m", "latent_atlas.cli.main", "train", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_ctrl_c_saves_mid_epoch_and_resumes_exactly(tmp_path, data_dir, straight_run, wait_for_epoch):
    run = tmp_path / "run"
    process = _start_cli_training(run, data_dir)
    wait_for_epoch(process, run, 1)
    time.sleep(0.5)  # well inside epoch 2, which takes seconds
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "--resume" in stderr
    state = load_checkpoint(run).state
    assert state.stopped == "interrupted" and state.epoch == 1 and state.batches_done > 0

    train(TrainConfig(**SMALL), run, data_dir=data_dir, resume=True, progress=False, plots=False)
    assert_same_weights(run, straight_run)


@pytest.mark.slow
def test_sigkill_loses_at_most_the_current_epoch(tmp_path, data_dir, straight_run, wait_for_epoch):
    run = tmp_path / "run"
    process = _start_cli_training(run, data_dir)
    wait_for_epoch(process, run, 1)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    assert load_checkpoint(run).epoch == 1  # the last complete epoch survived, readable

    assert cli(["train", "--out", str(run), "--resume", "--quiet", "--no-plots", "--data-dir", str(data_dir)]) == 0
    assert_same_weights(run, straight_run)
    epochs = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2]
    assert not list(run.glob("**/*.tmp")), "a temporary file was left behind"


@pytest.mark.slow
def test_early_stopping_and_the_best_epoch_follow_the_validation_split(tmp_path, data_dir, monkeypatch):
    """The test set improves every epoch while the validation split gets worse: the validation decides."""
    validation, test = iter([100.0, 101.0, 102.0, 103.0]), iter([100.0, 99.0, 98.0, 97.0])

    def fake_evaluate(model, x, **kwargs):
        value = next(test) if len(x) == 10000 else next(validation)
        return dict(neg_elbo=value, recon=0.0, kl=0.0, bits_per_dim=0.0)

    monkeypatch.setattr(train_module, "evaluate_elbo", fake_evaluate)
    state = train(TrainConfig(limit=64, epochs=10, patience=2, val_size=300), tmp_path / "run", data_dir=data_dir,
                  progress=False, plots=False)
    assert state.stopped == "early-stopped" and state.epoch == 3
    assert load_checkpoint(tmp_path / "run").state.best.epoch == 1
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["val_neg_elbo"] for r in records] == [100.0, 101.0, 102.0]
    assert [r["test_neg_elbo"] for r in records] == [100.0, 99.0, 98.0]
    assert {r["selected_on"] for r in records} == {"validation"}


@pytest.mark.slow
def test_an_iwae_run_is_selected_on_its_k_sample_bound_not_on_the_elbo(tmp_path, data_dir, monkeypatch, capsys):
    """The validation ELBO improves every epoch while the trained bound gets worse: the bound decides."""
    elbo = iter(range(100, 0, -1))  # validation, then test, each epoch: 100, 99; 98, 97; ...
    bound = iter([90.0, 80.0, 91.0, 81.0, 92.0, 82.0])
    monkeypatch.setattr(train_module, "evaluate_elbo", lambda model, x, **k: dict(neg_elbo=next(elbo), recon=0.0, kl=0.0, bits_per_dim=0.0))
    ks = []

    def fake_bound(model, x, k, **kwargs):
        ks.append(k)
        return torch.full((len(x),), -next(bound))

    monkeypatch.setattr(train_module, "iw_log_likelihood", fake_bound)
    config = TrainConfig(limit=64, epochs=10, patience=2, val_size=300, objective="iwae", importance_samples=3)
    state = train(config, tmp_path / "run", data_dir=data_dir, progress=True, plots=False)
    assert state.stopped == "early-stopped" and state.epoch == 3
    assert "epoch 2/10: validation -ELBO 98.00, validation -IWAE(K=3) 91.00, test -ELBO 97.00" in capsys.readouterr().err
    saved = load_checkpoint(tmp_path / "run").state
    assert saved.best.epoch == 1 and saved.early_stopping.metric == "neg_iwae" and set(ks) == {3}
    assert saved.selected_by == "val_neg_iwae"  # what evaluate prints and the bundle records
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["val_neg_iwae"] for r in records] == [90.0, 91.0, 92.0]
    assert [r["test_neg_iwae"] for r in records] == [80.0, 81.0, 82.0]
    assert [r["val_neg_elbo"] for r in records] == [100, 98, 96] and {r["iwae_k"] for r in records} == {3}
    # A checkpoint written before the watched figure was recorded resumes watching the -ELBO, as it did.
    from latent_atlas.train.run_state import RunState
    old = saved.to_json()
    old["early_stopping"] = {"best": 100.0, "bad_epochs": 0}
    assert RunState.from_json(old, "old").early_stopping.metric == "neg_elbo"


@pytest.mark.slow
def test_val_size_zero_selects_on_the_test_set_and_says_so(tmp_path, data_dir, monkeypatch):
    test = iter([100.0, 101.0, 102.0])
    monkeypatch.setattr(train_module, "evaluate_elbo", lambda model, x, **k: dict(neg_elbo=next(test), recon=0.0, kl=0.0, bits_per_dim=0.0))
    state = train(TrainConfig(limit=64, epochs=10, patience=2, val_size=0), tmp_path / "run", data_dir=data_dir,
                  progress=False, plots=False)
    assert state.epoch == 3 and state.selected_on == "test"
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert record["selected_on"] == "test" and "val_neg_elbo" not in record
    assert state.selected_by == "test_neg_elbo"


def test_the_validation_split_is_fixed_disjoint_and_checked():
    from latent_atlas.train.data import DatasetError, validation_split

    train_index, val_index = validation_split(60000, 5000)
    assert len(val_index) == 5000 and len(train_index) == 55000
    assert not set(train_index.tolist()) & set(val_index.tolist())
    assert (np.diff(val_index) > 0).all() and (np.diff(train_index) > 0).all()  # original order kept
    again = validation_split(60000, 5000)[1]
    assert np.array_equal(val_index, again)  # the same images whatever the run's seed
    assert validation_split(100, 0)[1].size == 0
    with pytest.raises(DatasetError, match="expected a --val-size from 0 to 99"):
        validation_split(100, 100)


def test_non_finite_loss_stops_with_a_clear_error(tmp_path, data_dir, monkeypatch):
    from latent_atlas.train.model import LossTerms

    nan = torch.tensor(float("nan"), requires_grad=True)
    monkeypatch.setattr(train_module, "elbo_loss", lambda *a, **k: LossTerms(loss=nan * 1, recon=nan * 1, kl=nan * 1))
    with pytest.raises(FloatingPointError, match="lower --lr"):
        train(TrainConfig(limit=64, epochs=1, **QUICK), tmp_path / "run", data_dir=data_dir, progress=False, plots=False)


def test_refuses_to_overwrite_a_run(shared_run_copy, data_dir, capsys):
    run = shared_run_copy
    before = (run / "checkpoint.json").read_bytes()
    assert cli(["train", "--out", str(run), "--limit", "64", "--epochs", "1", "--data-dir", str(data_dir)]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert cli(["train", "--out", str(run), "--resume", "--latent-dim", "8", "--data-dir", str(data_dir)]) == 2
    assert "latent_dim=8" in capsys.readouterr().err
    assert cli(["train", "--out", str(run), "--resume", "--preset", "seed", "--data-dir", str(data_dir)]) == 2
    assert "preset='seed'" in capsys.readouterr().err
    assert (run / "checkpoint.json").read_bytes() == before


@pytest.mark.slow
def test_resume_past_the_cosine_horizon_says_what_to_do(tmp_path, data_dir, capsys):
    run = tmp_path / "run"
    train(TrainConfig(limit=64, epochs=1, lr_decay_epochs=1, **QUICK), run, data_dir=data_dir, progress=False, plots=False)
    assert cli(["train", "--out", str(run), "--resume", "--epochs", "3", "--data-dir", str(data_dir)]) == 2
    assert "Start a new run with --epochs 3 --lr-decay-epochs 3" in capsys.readouterr().err


def test_resume_without_a_checkpoint_says_so(tmp_path, capsys):
    assert cli(["train", "--out", str(tmp_path / "nothing"), "--resume"]) == 2
    assert "no such run directory" in capsys.readouterr().err


def test_corrupt_checkpoint_is_a_clear_error(shared_run_copy):
    run = shared_run_copy
    weights_file = run / load_checkpoint(run).state.last.file
    weights_file.write_bytes(weights_file.read_bytes()[:-10])
    with pytest.raises(ValueError, match="SHA-256 does not match"):
        load_checkpoint(run).tensors("last")
    (run / "checkpoint.json").write_text("{not json")
    with pytest.raises(ValueError, match="corrupt checkpoint metadata"):
        load_checkpoint(run)


def test_dataclass_defaults_are_the_default_preset():
    assert TrainConfig() == TrainConfig.from_preset("default")


def test_a_run_saved_before_the_validation_split_resumes_without_one():
    saved = TrainConfig(val_size=0).to_dict()
    del saved["val_size"]
    assert TrainConfig.from_dict(saved).val_size == 0
    assert TrainConfig.from_dict(TrainConfig().to_dict()).val_size == 5000


def test_config_validation_and_schedules():
    with pytest.raises(ValueError, match="preset must be one of"):
        TrainConfig.from_preset("fast")
    with pytest.raises(ValueError, match="batch size"):
        TrainConfig(batch_size=0)
    seed = TrainConfig.from_preset("seed")
    assert (seed.optimizer, seed.batch_size, seed.objective, seed.patience, seed.bf16) == ("rmsprop", 16, "keras-seed", 2, False)
    assert (seed.bottleneck_bias, TrainConfig().bottleneck_bias) == (0.0, 1.0)  # the seed starts where Keras did
    with pytest.raises(ValueError, match="bottleneck bias must be a finite number, got nan"):
        TrainConfig(bottleneck_bias=float("nan"))
    warm = TrainConfig(beta=2.0, beta_warmup_epochs=4)
    assert [warm.beta_at(e) for e in range(5)] == [0.5, 1.0, 1.5, 2.0, 2.0]
    constant = TrainConfig(lr=1e-3, lr_schedule="constant", epochs=50)
    assert constant.lr_at(0, 100) == constant.lr_at(4999, 100) == 1e-3
    cosine = TrainConfig(lr=1e-3, lr_schedule="cosine", lr_decay_epochs=2, epochs=2)
    assert cosine.lr_at(0, 100) == pytest.approx(1e-3) and cosine.lr_at(100, 100) == pytest.approx(5e-4)
    assert cosine.lr_at(200, 100) == pytest.approx(0.0, abs=1e-12)
    assert TrainConfig(epochs=1).lr_at(50, 100) == TrainConfig(epochs=20).lr_at(50, 100)  # horizon, not epochs
    with pytest.raises(ValueError, match="--lr-decay-epochs 30"):
        TrainConfig(epochs=30)
    with pytest.raises(ValueError, match="encoder noise must be >= 0"):
        TrainConfig(encoder_noise=-0.1)
    with pytest.raises(ValueError, match="eval images must be >= 1"):
        TrainConfig(eval_images=0)
    with pytest.raises(ValueError, match="encoder weight decay must be >= 0"):
        TrainConfig(encoder_weight_decay=-1.0)


@pytest.mark.slow  # the trainer's own steps on real MNIST
@pytest.mark.parametrize("seed", [1, 6])
def test_the_bottleneck_bias_keeps_the_encoder_units_alive(data_dir, seed):
    """The failure the default's bottleneck bias fixes, reproduced: with Keras' zero bias, Adam's first
    steps switch off encoder Dense-32 units for every image (so they get no gradient); with a bias of 1 none."""
    from latent_atlas.train.data import load_dataset

    images = torch.as_tensor(load_dataset("mnist", data_dir).train_images[:1024]).unsqueeze(1).float() / 255

    def dead_units_after(steps: int, bottleneck_bias: float) -> int:
        config = TrainConfig(seed=seed, bottleneck_bias=bottleneck_bias, encoder_noise=0.0, device="cpu",
                             bf16=False, channels_last=False)
        step = train_module.build_training_step(config)  # the trainer's own model, optimizer and step
        for i in range(steps):
            batch = images[32 * i: 32 * (i + 1)]
            step(batch, 1.0, 1e-3, step.noise(torch.Generator().manual_seed(i), len(batch)))
        return step.model.encoder.dead_bottleneck_units(images)

    assert dead_units_after(0, 0.0) <= 1  # (nearly) all alive at the start
    assert (dead := dead_units_after(10, 0.0)) >= 8, dead
    assert dead_units_after(10, 1.0) == 0


def test_encoder_weight_decay_acts_on_the_encoder_alone():
    model = VAE(2)
    optimizer = make_optimizer(TrainConfig(encoder_weight_decay=0.5, lr=0.1), model)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)  # no gradient: any change is the decay
    optimizer.step()
    for name, p in model.named_parameters():
        if name.startswith("encoder."):
            torch.testing.assert_close(p.detach(), before[name] * (1 - 0.1 * 0.5))
        else:
            assert torch.equal(p.detach(), before[name]), name


@pytest.mark.slow
def test_evaluate_command(tmp_path, data_dir, capsys):
    run = tmp_path / "run"
    train(TrainConfig(limit=500, epochs=1), run, data_dir=data_dir, progress=False, plots=False)
    assert cli(["evaluate", str(run), "--iw-samples", "4", "--json", "--data-dir", str(data_dir)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 10000 and result["epoch"] == 1
    assert (result["split"], result["selected_on"], result["selected_by"]) == ("test", "validation", "val_neg_elbo")
    assert result["neg_elbo"] == pytest.approx(result["recon"] + result["kl"])
    assert result["iw_nll"] < result["neg_elbo"]
    # Matches the per-epoch evaluation the trainer logged (same seed, same weights).
    logged = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert result["neg_elbo"] == pytest.approx(logged["test_neg_elbo"], rel=1e-6)

    assert cli(["evaluate", str(run), "--iw-samples", "0", "--binarize", "--data-dir", str(data_dir)]) == 0
    table = capsys.readouterr().out
    assert "(binarized)" in table and "-ELBO (nats/image)" in table
    assert "chosen on the validation split by val_neg_elbo" in table

    # The exact NLL (quadrature; a coarse grid suffices for this barely trained model's broad posteriors)
    # is the likelihood the bounds bound: below the K = 4 bound (by some 26 nats for this model's poor q).
    assert cli(["evaluate", str(run), "--iw-samples", "4", "--exact", "--grid-spacing", "0.1", "--json",
                "--data-dir", str(data_dir)]) == 0
    exact = json.loads(capsys.readouterr().out)
    assert exact["exact_grid"] == {"spacing": 0.1, "extent": 5.0}
    assert exact["exact_nll"] < exact["iw_nll"] == result["iw_nll"]
    assert cli(["evaluate", str(run), "--iw-samples", "0", "--exact", "--grid-spacing", "0.1",
                "--data-dir", str(data_dir)]) == 0
    assert "exact NLL (grid step 0.1)" in capsys.readouterr().out
    # --grid-spacing alone is refused, not ignored; so is a grid that cannot be done, before any work.
    assert cli(["evaluate", str(run), "--grid-spacing", "0.1", "--data-dir", str(data_dir)]) == 2
    assert "add --exact" in capsys.readouterr().err
    assert cli(["evaluate", str(run), "--exact", "--grid-spacing", "0", "--data-dir", str(data_dir)]) == 2
    assert "expected 0 < spacing" in capsys.readouterr().err


def test_cli_help_does_not_import_torch():
    code = "import sys; from latent_atlas.cli.main import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
