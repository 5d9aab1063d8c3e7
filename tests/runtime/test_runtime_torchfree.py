"""The runtime runs with numpy, onnxruntime and pillow alone: no torch, no onnx, no Qt."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CONFTEST = Path(__file__).with_name("conftest.py")
# Everything the training and app extras install; the runtime must import none of it.
NOT_RUNTIME_DEPENDENCIES = ("torch", "onnx", "onnxscript", "safetensors", "tqdm", "matplotlib", "PyQt6", "scipy")


def python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env})


def test_the_block_makes_torch_unimportable():
    if os.environ.get("LATENT_ATLAS_BLOCK_TORCH") == "1":
        with pytest.raises(ImportError):
            import torch  # noqa: F401
    # The conftest's mechanism itself, in a fresh interpreter where torch is installed.
    result = python(f"import runpy; runpy.run_path({str(CONFTEST)!r}); import torch", LATENT_ATLAS_BLOCK_TORCH="1")
    assert result.returncode != 0 and "import of torch halted" in result.stderr


def test_runtime_and_cli_work_with_only_their_dependencies(tmp_path):
    out_file = tmp_path / "grid.png"
    blocked = "; ".join(f"sys.modules[{name!r}] = None" for name in NOT_RUNTIME_DEPENDENCIES)
    code = f"""
import sys
{blocked}
import numpy as np
from latent_atlas import runtime
from latent_atlas.cli.main import main
model = runtime.load("mnist")
image = model.decode([0.0, 0.0])
model.encode(image)
model.encode(runtime.to_pil(image, scale=3))
sys.exit(main(["grid", "-n", "5", "-o", {str(out_file)!r}]))
"""
    result = python(code)
    assert result.returncode == 0, result.stderr
    assert out_file.stat().st_size > 0


def test_importing_the_runtime_loads_none_of_the_heavy_packages():
    code = f"""
import sys
import latent_atlas.runtime, latent_atlas.runtime.commands
from latent_atlas.cli.main import build_parser
build_parser()
print(sorted(m for m in {NOT_RUNTIME_DEPENDENCIES!r} if m in sys.modules))
"""
    result = python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
