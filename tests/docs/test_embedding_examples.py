"""The embedding pages' programs in other languages run as written and give the Python runtime's pixels.

docs/embedding/node.md: its ```js program, saved as the page says (decode.mjs) beside onnxruntime-node
(examples/node's locked install), run with the page's own `node decode.mjs ...` line.
docs/embedding/browser.md: its ```html page, served with decoder.onnx and the pinned onnxruntime-web's
WASM files where the page imports them, in headless Chromium; the canvas is read back.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latent_atlas import runtime
from latent_atlas.runtime.images import to_uint8

from tests.examples.test_node_example import node_example  # noqa: F401 (a fixture: examples/node's npm ci)

from .test_snippets import REPO, blocks_of

NODE_PAGE = REPO / "docs" / "embedding" / "node.md"

BROWSER_PAGE = REPO / "docs" / "embedding" / "browser.md"
PAGE_TIMEOUT_MS = 60_000


def _page_command(prefix: str) -> list[str]:
    (line,) = [line.strip() for block in blocks_of(NODE_PAGE, {"sh"}) for line in block.code.splitlines()
               if line.strip().startswith(prefix)]
    return shlex.split(line, comments=True)


@pytest.mark.npm
def test_the_node_page_program_decodes_what_the_python_runtime_decodes(node_example, tmp_path):
    (program,) = blocks_of(NODE_PAGE, {"js", "javascript"})
    (tmp_path / "decode.mjs").write_text(program.code)
    (tmp_path / "node_modules").symlink_to(node_example / "node_modules")
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


@pytest.mark.npm
@pytest.mark.browser
def test_the_browser_page_paints_what_the_python_runtime_decodes(tmp_path):
    from playwright.sync_api import sync_playwright

    from latent_atlas.web import onnxruntime_web
    from latent_atlas.web.browser import launched
    from latent_atlas.web.serve import serve_in_thread

    (page_html,) = blocks_of(BROWSER_PAGE, {"html"})
    (tmp_path / "index.html").write_text(page_html.code)
    model = runtime.load("mnist", providers="cpu")
    shutil.copy(model.bundle.decoder_path, tmp_path / "decoder.onnx")
    dist = tmp_path / "node_modules" / "onnxruntime-web" / "dist"  # where `npm install onnxruntime-web` puts them
    dist.mkdir(parents=True)
    for name in onnxruntime_web.WASM_BUILD:
        shutil.copy(onnxruntime_web.ensure_files(quiet=True) / name, dist / name)

    server, url = serve_in_thread(tmp_path)
    try:
        with sync_playwright() as playwright, launched(playwright) as context:
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(url)
            page.wait_for_function("document.getElementById('status').textContent.startsWith('z =')",
                                   timeout=PAGE_TIMEOUT_MS)
            rgba = page.evaluate("Array.from(document.getElementById('digit').getContext('2d')"
                                 ".getImageData(0, 0, 28, 28).data)")
            status = page.text_content("#status")
    finally:
        server.shutdown()
    assert not errors
    assert status == "z = [0.5, -1]"
    grey = np.asarray(rgba, dtype=int).reshape(28, 28, 4)[..., 0]
    expected = to_uint8(model.decode([0.5, -1.0])).astype(int)
    assert np.abs(grey - expected).max() <= 1
