"""The export tests' shared run and bundle: one tiny training and one fp32 export for the whole session."""

from __future__ import annotations

from pathlib import Path

import pytest

from latent_atlas.export.exporter import export_bundle
from latent_atlas.train.config import TrainConfig
from latent_atlas.train.train import train


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory, data_dir) -> Path:
    run = tmp_path_factory.mktemp("export") / "run"
    train(TrainConfig(limit=2000, epochs=1, seed=0, eval_images=500), run, data_dir=data_dir, progress=False, plots=False)
    return run


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory, run_dir, data_dir) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "mnist"
    export_bundle(run_dir, out, iw_samples=2, iw_images=None, data_dir=data_dir, log=lambda _: None)
    return out
