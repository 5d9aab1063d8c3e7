"""What this install of latent-atlas is and how to add to it: its version, and the pip command that adds
an extra from wherever it was installed.

The package is on no public index, so `pip install 'latent-atlas[train]'` could fetch somebody else's
project. pip records where each install came from (PEP 610's direct_url.json): the checkout or the
wheel, which is what a hint must point back to. Standard library only: these answers are needed
exactly when a dependency is missing.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Sequence
from importlib import metadata
from urllib.parse import unquote, urlparse

DISTRIBUTION = "latent-atlas"
# The extra that brings each missing top-level module, for the error that names it.
EXTRA_FOR_MODULE = {"onnxruntime": "cpu", "torch": "train", "onnx": "train", "onnxscript": "train",
                    "safetensors": "train", "tqdm": "train", "matplotlib": "train", "PyQt6": "app"}


def version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown (no installed package metadata)"


def install_source() -> tuple[str, bool] | None:
    """(what to hand pip to install this package again, whether it was an editable install), or None when
    pip recorded no direct source (an install from an index, or a bare checkout on sys.path)."""
    try:
        text = metadata.distribution(DISTRIBUTION).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    if not text:
        return None
    record = json.loads(text)
    url = record.get("url", "")
    editable = bool(record.get("dir_info", {}).get("editable"))
    if url.startswith("file:"):
        return unquote(urlparse(url).path), editable
    vcs = record.get("vcs_info", {}).get("vcs")
    return f"{DISTRIBUTION} @ {vcs + '+' if vcs else ''}{url}", editable


def install_command(extras: Sequence[str]) -> str:
    """The command that adds `extras` to this install, for this Python, from the source it came from."""
    selection = f"[{','.join(extras)}]"
    source = install_source()
    if source is None:
        target, editable = DISTRIBUTION + selection, False
    elif " @ " in source[0]:
        name, url = source[0].split(" @ ", 1)
        target, editable = f"{name}{selection} @ {url}", source[1]
    else:
        target, editable = source[0] + selection, source[1]
    words = [sys.executable, "-m", "pip", "install", *(["-e"] if editable else []), target]
    return shlex.join(words)


def missing_dependency_message(module: str | None) -> str | None:
    """One line saying which extra brings the missing top-level `module` and how to install it; None
    when no extra of latent-atlas provides it."""
    top = (module or "").split(".")[0]
    extra = EXTRA_FOR_MODULE.get(top)
    if extra is None:
        return None
    if top == "onnxruntime":
        return (f"needs ONNX Runtime, from the [cpu] extra or, for CUDA, the [gpu] extra (never both); "
                f"install it with {install_command(['cpu'])}")
    return f"needs the '{top}' package, from the [{extra}] extra; install it with {install_command([extra])}"
