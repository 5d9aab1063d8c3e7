"""Shared fixtures. Tests that need the real datasets read them from $LATENT_ATLAS_DATA (the Makefile
points it at ../shared/datasets) and skip with the reason when the files are absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def real_data_dir(dataset: str = "mnist") -> Path:
    root = os.environ.get("LATENT_ATLAS_DATA")
    if not root:
        pytest.skip("LATENT_ATLAS_DATA is not set: point it at a directory holding mnist/ and fashion-mnist/")
    path = Path(root)
    if not (path / dataset / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"the {dataset} files are not in {path / dataset}")
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real dataset directory (MNIST files), or a skip naming what is missing."""
    return real_data_dir("mnist")
