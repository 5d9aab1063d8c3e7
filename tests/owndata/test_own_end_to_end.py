"""End to end on a dataset built here: letters from the system's fonts -> train -> export -> runtime.

A few thousand renderings of ten capital letters (several fonts and sizes, small rotations, noise) in
class folders; a short training run through the CLI, interrupted and resumed; the export; and new
renderings, encoded by the runtime from the bundle alone, land nearest their own letter far more
often than chance.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from latent_atlas import runtime
from latent_atlas.cli.main import main as cli
from latent_atlas.train import own_data
from latent_atlas.train.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow

LETTERS = "ACEHKMOSTX"
PER_CLASS = 300
NEW_PER_CLASS = 20


@pytest.fixture(scope="module")
def letters(tmp_path_factory, make_letters) -> Path:
    return make_letters(tmp_path_factory.mktemp("own") / "letters", per_class=PER_CLASS, letters=LETTERS)


@pytest.fixture(scope="module")
def run_dir(letters, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "letters"
    # Batch 32 at lr 1e-3: twice the steps of the default's batch 64 in these two short epochs (150),
    # enough for the 2-D model to separate the letters the last test checks.
    common = ["--dataset", str(letters), "--out", str(run), "--no-plots", "--quiet", "--seed", "0",
              "--batch-size", "32", "--lr", "1e-3"]
    assert cli(["train", *common, "--epochs", "1"]) == 0
    assert cli(["train", "--out", str(run), "--resume", "--epochs", "2", "--no-plots", "--quiet"]) == 0
    return run


@pytest.fixture(scope="module")
def bundle_dir(run_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "letters"
    assert cli(["export", str(run_dir), "--out", str(out), "--iw-samples", "5"]) == 0
    return out


def test_the_run_records_its_dataset(run_dir, letters):
    state = load_checkpoint(run_dir).state
    dataset = state.dataset
    assert state.epoch == 2 and len(state.commands) == 2
    assert dataset["name"] == "letters" and dataset["class_names"] == list(LETTERS) and dataset["layout"] == "mnist"
    assert dataset["source"]["kind"] == "folder" and dataset["source"]["path"] == str(letters)
    assert dataset["source"]["counts"] == {"train": 2400, "validation": 300, "test": 300}
    assert dataset["source"]["split_seed"] == 0 and len(dataset["source"]["checksum"]) == 64
    record = json.loads((run_dir / own_data.RECORD_FILE).read_text())
    assert record["source"] == dataset["source"] and len(record["file_sha256"]) == len(LETTERS) * PER_CLASS
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["selected_on"] for m in metrics] == ["validation", "validation"]
    assert metrics[1]["test_neg_elbo"] < metrics[0]["test_neg_elbo"]


def test_the_bundle_names_classes_layout_and_source(bundle_dir, run_dir):
    model = runtime.load(bundle_dir, providers="cpu", verify=True)
    manifest = model.bundle.manifest
    assert model.name == "letters" and model.class_names == list(LETTERS)
    assert manifest.dataset.to_json() == {**load_checkpoint(run_dir).state.dataset, "files": {}}
    assert model.encoder.layout == "mnist"
    assert manifest.metrics["iw_samples"] == 5 and np.isfinite(manifest.metrics["test_iw_nll"])
    z, labels = model.atlas()
    assert z.shape == (300, 2) and sorted(np.bincount(labels).tolist()) == [30] * 10


def test_new_renderings_land_nearest_their_own_letter(bundle_dir, render_letter):
    model = runtime.load(bundle_dir, providers="cpu")
    rng = np.random.default_rng(2026)  # renderings the model never saw
    hits = total = 0
    for label, letter in enumerate(LETTERS):
        pictures = [render_letter(letter, i, rng) for i in range(NEW_PER_CLASS)]
        nearest = model.nearest_class(model.encode(pictures).mean)
        hits += int((nearest == label).sum())
        total += len(pictures)
    rate = hits / total
    # Chance is 1 in 10. A 2-epoch, 2-D model separates most letters (about 0.5 here).
    assert rate >= 0.3, f"only {hits} of {total} new renderings landed nearest their own letter"


def test_cli_info_encode_and_evaluate_use_the_dataset(bundle_dir, run_dir, render_letter, tmp_path, capsys):
    picture = tmp_path / "new-O.png"
    render_letter("O", 1, np.random.default_rng(5)).save(picture)
    capsys.readouterr()
    assert cli(["info", "-m", str(bundle_dir), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["dataset"] == "letters" and info["classes"] == list(LETTERS) and info["layout"] == "mnist"
    assert info["source"]["kind"] == "folder"
    assert cli(["info", "-m", str(bundle_dir)]) == 0
    text = capsys.readouterr().out
    assert "letters, 10 classes: A, C, E" in text and re.search(r"source +folder .*letters +checksum [0-9a-f]{16}", text)
    assert cli(["encode", str(picture), "-m", str(bundle_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["nearest_class"] in LETTERS
    assert cli(["evaluate", str(run_dir), "--iw-samples", "5", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 300 and result["iw_nll"] < result["neg_elbo"] + 1


def test_an_unlabelled_folder_trains_exports_and_loads_without_classes(letters, tmp_path, capsys):
    flat = tmp_path / "flat"
    flat.mkdir()
    for path in sorted(letters.rglob("*.png"))[::15]:
        shutil.copy(path, flat / f"{path.parent.name}-{path.name}")
    run, out = tmp_path / "run", tmp_path / "bundle"
    assert cli(["train", "--dataset", str(flat), "--layout", "fashion-mnist", "--epochs", "1", "--out", str(run),
                "--quiet"]) == 0
    assert (run / "plots" / "epoch-0001-latent.png").is_file()  # one uncoloured cloud
    assert cli(["export", str(run), "--out", str(out), "--iw-samples", "0"]) == 0
    model = runtime.load(out, providers="cpu")
    assert model.class_names == [] and model.encoder.layout == "fashion-mnist"
    with pytest.raises(ValueError, match="no class labels"):
        model.nearest_class([0.0, 0.0])
    capsys.readouterr()
    assert cli(["encode", str(next(flat.iterdir())), "-m", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["nearest_class"] is None
    assert cli(["info", "-m", str(out)]) == 0
    assert "flat, unlabelled" in capsys.readouterr().out
