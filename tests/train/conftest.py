"""Shared by the trainer's tests that run training in another process."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from latent_atlas.train.checkpoint import load_checkpoint


@pytest.fixture
def wait_for_epoch():
    """wait(process, run_dir, epoch): returns once the run's checkpoint has reached `epoch`; fails the
    test if the process exits first or nothing comes within the timeout."""

    def wait(process: subprocess.Popen, run: Path, epoch: int, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (run / "checkpoint.json").exists() and load_checkpoint(run).epoch >= epoch:
                return
            assert process.poll() is None, f"training exited early: {process.communicate()}"
            time.sleep(0.05)
        process.kill()
        pytest.fail(f"no checkpoint for epoch {epoch} within {timeout} s")

    return wait
