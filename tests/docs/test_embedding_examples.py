"""The embedding pages' programs in other languages run as written and give the Python runtime's pixels.

docs/embedding/node.md: its ```js program, saved as the page says (decode.mjs) beside onnxruntime-node
(examples/node's locked install), run with the page's own `node decode.mjs ...` line.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latent_atlas import runtime
from latent_atlas.runtime.images import to_uint8

from .test_snippets import REPO, blocks_of

NODE_EXAMPLE = REPO / "examples" / "node"
NODE_PAGE = REPO / "docs" / "embedding" / "node.md"

pytestmark = pytest.mark.npm


@pytest.fixture(scope="module")
def node_modules() -> Path:
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not on PATH: install Node.js 18+ with npm (scripts/install-system-deps.sh does)")
    env = {**os.environ, "ONNXRUNTIME_NODE_INSTALL": "skip"}
    result = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_EXAMPLE, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return NODE_EXAMPLE / "node_modules"


def _page_command(prefix: str) -> list[str]:
    (line,) = [line.strip() for block in blocks_of(NODE_PAGE, {"sh"}) for line in block.code.splitlines()
               if line.strip().startswith(prefix)]
    return shlex.split(line, comments=True)


def test_the_node_page_program_decodes_what_the_python_runtime_decodes(node_modules, tmp_path):
    (program,) = blocks_of(NODE_PAGE, {"js", "javascript"})
    (tmp_path / "decode.mjs").write_text(program.code)
    (tmp_path / "node_modules").symlink_to(node_modules)
    model = runtime.load("mnist", providers="cpu")
    shutil.copy(model.bundle.decoder_path, tmp_path / "decoder.onnx")

    argv = _page_command("node decode.mjs decoder.onnx ")
    result = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr

    point = [float(v) for v in argv[4:]]
    with Image.open(tmp_path / argv[3]) as picture:
        pixels = np.asarray(picture).astype(int)
    expected = to_uint8(model.decode(point)).astype(int)
    assert pixels.shape == expected.shape == (28, 28)
    assert np.abs(pixels - expected).max() <= 1
    assert "#" in result.stdout and f"{argv[3]}: z = [" in result.stdout   # the digit drawn, then the summary
