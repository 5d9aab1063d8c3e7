"""Where latent-atlas keeps what it downloads once (datasets, onnxruntime-web): the user cache dir."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def user_cache_dir(*parts: str) -> Path:
    """~/.cache/latent-atlas/PARTS on Linux ($XDG_CACHE_HOME honoured), the platform's cache dir elsewhere."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base.joinpath("latent-atlas", *parts).expanduser().absolute()
