"""What a user hit (issues 11 and 13): resume rules with one owner, non-finite numbers never saved,
one-line errors for bad weights and bad outputs, and old checkpoints that still load."""

from __future__ import annotations

import json
import math
import shutil
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from latent_atlas.cli.main import main as cli
from latent_atlas.runtime.bundle import sha256_file
from latent_atlas.train import train as train_module
from latent_atlas.train.checkpoint import CHECKPOINT_JSON, load_checkpoint
from latent_atlas.train.config import TrainConfig, resolve_config
from latent_atlas.train.evaluate import load_model
from latent_atlas.train.model import VAE, LossTerms, load_weights, migrate_state_dict
from latent_atlas.train.train import train

TINY = dict(limit=64, batch_size=32, epochs=1, eval_images=500)  # two batches; a quick per-epoch evaluation


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory, data_dir):
    """tiny_runs(**overrides) -> a run of TINY with those settings, trained once for the whole module."""
    trained: dict[tuple, Path] = {}

    def get(**overrides) -> Path:
        settings = {**TINY, **overrides}
        key = tuple(sorted(settings.items()))
        if key not in trained:
            trained[key] = tmp_path_factory.mktemp("tiny") / "run"
            train(TrainConfig(**settings), trained[key], data_dir=data_dir, progress=False, plots=False)
        return trained[key]

    return get


@pytest.fixture
def tiny_run(tiny_runs, tmp_path):
    """tiny_run(**overrides) -> this test's own copy of that run, to resume or damage."""
    return lambda **overrides: Path(shutil.copytree(tiny_runs(**overrides), tmp_path / "run"))


def one_line(err: str, command: str = "train") -> str:
    assert len(err.strip().splitlines()) == 1 and err.startswith(f"latent-atlas {command}: error: "), err
    return err


# --- resume rules: one owner (resolve_config) for the CLI and the API ------------------------------

@pytest.mark.slow
def test_resume_checks_the_horizon_of_the_saved_run_not_the_default_preset(tiny_run, data_dir, monkeypatch):
    """Issue 11: --epochs 30 on a run started with --lr-decay-epochs 50 was refused against the default 20."""
    run = tiny_run(lr_decay_epochs=50)
    resumed = {}

    def fake_train(config, out, **kwargs):  # the CLI's resolution is what is tested; 30 epochs are not needed
        resumed.update(config=config, resume=kwargs["resume"])
        return load_checkpoint(out).state

    monkeypatch.setattr(train_module, "train", fake_train)
    assert cli(["train", "--out", str(run), "--resume", "--epochs", "30", "--data-dir", str(data_dir)]) == 0
    assert resumed["resume"] and resumed["config"].epochs == 30 and resumed["config"].lr_decay_epochs == 50
    # Past the saved run's own horizon it is still refused, naming that horizon.
    with pytest.raises(ValueError, match="reaches a learning rate of 0 at epoch 50"):
        resolve_config(load_checkpoint(run).state.config, {"epochs": 60})


def test_resolve_config_rules():
    saved = TrainConfig(epochs=5, lr_decay_epochs=50, seed=3)
    assert resolve_config(saved, {"epochs": 30, "device": "cpu"}) == TrainConfig(epochs=30, lr_decay_epochs=50, seed=3,
                                                                                 device="cpu")
    assert resolve_config(saved, {"seed": 3, "epochs": None}) == saved  # agreeing or absent options are fine
    with pytest.raises(ValueError, match=r"seed=4 \(the run has 3\)"):
        resolve_config(saved, {"seed": 4})
    fresh = resolve_config(None, {"preset": "seed", "epochs": 3, "lr": None})
    assert fresh == TrainConfig.from_preset("seed", epochs=3)


@pytest.mark.slow
def test_the_api_resumes_by_the_same_rules(tiny_run, data_dir):
    run = tiny_run(lr_decay_epochs=50)
    state = train(TrainConfig(limit=64, epochs=2, lr_decay_epochs=2, seed=9, eval_images=500), run, data_dir=data_dir, resume=True,
                  progress=False, plots=False)
    assert state.epoch == 2 and state.config.lr_decay_epochs == 50 and state.config.seed == 0  # the saved run rules


# --- non-finite numbers ----------------------------------------------------------------------------

@pytest.mark.parametrize("option, value", [("--lr", "inf"), ("--beta", "nan"), ("--encoder-noise", "inf"),
                                           ("--lr", "-inf")])
def test_non_finite_options_are_refused(tmp_path, capsys, option, value):
    assert cli(["train", "--out", str(tmp_path / "run"), f"{option}={value}"]) == 2
    assert "must be a finite number" in one_line(capsys.readouterr().err)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_late_nan_is_never_saved_and_the_last_good_checkpoint_stays(tiny_run, data_dir, monkeypatch):
    run = tiny_run(epochs=1, lr_decay_epochs=5)
    before = (run / CHECKPOINT_JSON).read_bytes()
    good = load_checkpoint(run).tensors("last")
    real_loss, calls = train_module.elbo_loss, {"n": 0}

    def nan_on_the_second_batch(*args, **kwargs):  # batch 2 of 2: between the every-20-batches checks
        terms = real_loss(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 2:
            terms = LossTerms(loss=terms.loss * math.nan, recon=terms.recon, kl=terms.kl)
        return terms

    monkeypatch.setattr(train_module, "elbo_loss", nan_on_the_second_batch)
    with pytest.raises(FloatingPointError, match="non-finite .* last good checkpoint .* is kept"):
        train(TrainConfig(**{**TINY, "epochs": 2, "lr_decay_epochs": 5}), run, data_dir=data_dir, resume=True,
              progress=False, plots=False)
    assert (run / CHECKPOINT_JSON).read_bytes() == before
    after = load_checkpoint(run).tensors("last")
    assert all(torch.equal(good[k], after[k]) for k in good)
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1  # no line for the epoch that was not saved


@pytest.mark.slow
def test_nan_weights_are_never_saved(tmp_path, data_dir, monkeypatch):
    real_step = train_module.TrainingStep.__call__

    def step_then_poison(self, *args):
        terms = real_step(self, *args)
        with torch.no_grad():
            self.model.decoder.to_logits.bias.fill_(math.inf)
        return terms

    monkeypatch.setattr(train_module.TrainingStep, "__call__", step_then_poison)
    with pytest.raises(FloatingPointError, match=r"the weights \(decoder.to_logits.bias\) became non-finite"):
        train(TrainConfig(**TINY), tmp_path / "run", data_dir=data_dir, progress=False, plots=False)
    assert not (tmp_path / "run" / CHECKPOINT_JSON).exists()


# --- weights that do not fit -----------------------------------------------------------------------

def _rewrite_last(run: Path, change) -> None:
    """Rewrites the `last` weights file with change(tensors), keeping checkpoint.json's hash consistent."""
    checkpoint = load_checkpoint(run)
    path = run / checkpoint.state.last.file
    tensors = change(checkpoint.tensors("last"))
    save_file(tensors, str(path))
    meta = json.loads((run / CHECKPOINT_JSON).read_text())
    meta["last"]["sha256"] = sha256_file(path)
    (run / CHECKPOINT_JSON).write_text(json.dumps(meta))


@pytest.mark.slow
def test_resuming_weights_of_the_wrong_shape_is_one_line(tiny_run, data_dir, capsys):
    run = tiny_run(lr_decay_epochs=5)
    _rewrite_last(run, lambda t: {**t, "model.encoder.z_mean.weight": torch.zeros(3, 32)})
    assert cli(["train", "--out", str(run), "--resume", "--epochs", "2", "--data-dir", str(data_dir)]) == 2
    err = one_line(capsys.readouterr().err)
    assert "encoder.z_mean.weight has shape [3, 32], expected [2, 32]" in err and "last-" in err


def test_an_output_that_is_a_file_fails_before_the_data_loads(tmp_path, capsys, monkeypatch):
    from latent_atlas.train import data

    (tmp_path / "notes.txt").write_text("precious")
    monkeypatch.setattr(data, "load_dataset", lambda *a, **k: pytest.fail("the data was loaded before the check"))
    assert cli(["train", "--out", str(tmp_path / "notes.txt"), "--limit", "64"]) == 2
    assert "notes.txt exists and is not a directory" in one_line(capsys.readouterr().err)
    assert (tmp_path / "notes.txt").read_text() == "precious"


# --- layers by name; checkpoints from before still load -------------------------------------------

class LegacyVAE(nn.Module):
    """The model as it was before its layers had names (index-based keys), to write a real old state dict."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Module()
        self.encoder.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(64 * 14 * 14, 32), nn.ReLU())
        self.encoder.z_mean, self.encoder.z_logvar = nn.Linear(32, 2), nn.Linear(32, 2)
        self.decoder = nn.Module()
        self.decoder.fc = nn.Sequential(nn.Linear(2, 64 * 14 * 14), nn.ReLU())
        self.decoder.deconv = nn.Sequential(nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1),
                                            nn.ReLU(), nn.Conv2d(32, 1, 3, padding=1))


def test_old_index_named_weights_load_and_compute_the_same():
    torch.manual_seed(0)
    legacy = LegacyVAE()
    model = VAE(2)
    load_weights(model, legacy.state_dict(), "old.safetensors")
    x = torch.rand(4, 1, 28, 28)
    h = legacy.encoder.features(x)
    torch.testing.assert_close(model.encode(x).mean, legacy.encoder.z_mean(h), rtol=0, atol=0)
    z = torch.randn(4, 2)
    expected = legacy.decoder.deconv(legacy.decoder.fc(z).view(-1, 64, 14, 14))
    torch.testing.assert_close(model.decode(z), expected, rtol=0, atol=0)
    assert set(migrate_state_dict(legacy.state_dict())) == set(model.state_dict())


@pytest.mark.slow
def test_an_old_run_still_resumes_and_exports_its_weights(tiny_run, data_dir):
    run = tiny_run(lr_decay_epochs=5)
    new_to_old = {new: old for old, new in __import__("latent_atlas.train.model", fromlist=["LEGACY_NAMES"]).LEGACY_NAMES.items()}

    def to_old_names(tensors):
        out = OrderedDict()
        for key, value in tensors.items():
            for new, old in new_to_old.items():
                if key.startswith("model." + new):
                    key = "model." + old + key[len("model." + new):]
                    break
            out[key] = value
        return out

    reference, _ = load_model(run, "last")
    _rewrite_last(run, to_old_names)
    assert any(".features.0." in k for k in load_checkpoint(run).tensors("last"))
    model, _ = load_model(run, "last")
    for a, b in zip(model.state_dict().values(), reference.state_dict().values()):
        assert torch.equal(a, b)
    state = train(TrainConfig(**{**TINY, "epochs": 2, "lr_decay_epochs": 5}), run, data_dir=data_dir, resume=True,
                  progress=False, plots=False)
    assert state.epoch == 2
