"""Your own images under data parallelism: rank 0 prepares the run's data, the other ranks read it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from latent_atlas.train import own_data

pytestmark = [pytest.mark.distributed, pytest.mark.slow]


def test_two_processes_train_on_your_own_images(tmp_path, make_letters):
    letters = make_letters(tmp_path / "letters", per_class=30, letters="ACEG")
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "latent_atlas.cli", "train", "--dataset", str(letters),
                           "--epochs", "1", "--batch-size", "8", "--no-plots", "--quiet", "--nproc", "2",
                           "--out", str(run)], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    # The data report comes once (rank 0's), and the run holds one record and one cache.
    assert done.stderr.count("preprocessed 120 image(s)") == 1, done.stderr
    record = json.loads((run / own_data.RECORD_FILE).read_text())
    assert len(record["images"]) == 120 and (run / own_data.CACHE_DIR / "cache.json").is_file()
    checkpoint = json.loads((run / "checkpoint.json").read_text())
    assert checkpoint["world_size"] == 2 and checkpoint["dataset"]["source"]["checksum"] == record["source"]["checksum"]
