"""The export tests' run and bundle: the session's shared training and its fp32 export (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def run_dir(shared_run) -> Path:
    return shared_run


@pytest.fixture(scope="session")
def bundle_dir(shared_bundle) -> Path:
    return shared_bundle
