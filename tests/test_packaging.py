"""The built wheel: every subpackage and the bundled models inside, and a plain install (no extras)
that runs the runtime's CLI on the bundled model without torch."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(REPO)],
                   check=True, capture_output=True, text=True)
    (path,) = dist.glob("latent_atlas-*.whl")
    return path


def test_wheel_contains_every_subpackage_and_the_bundled_models(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in ("cli/main.py", "train/model.py", "train/data.py", "export/exporter.py", "runtime/bundle.py",
                   "runtime/__init__.py", "desktop_app/__init__.py", "desktop_app/commands.py"):
        assert f"latent_atlas/{module}" in names, module
    for model in ("mnist", "fashion-mnist", "mnist-binarized"):
        for filename in ("encoder.onnx", "decoder.onnx", "bundle.json", "atlas.npz"):
            assert f"latent_atlas/runtime/models/{model}/{filename}" in names, (model, filename)
    # The browser explorer ships as its sources (no build step) with the lock file that pins onnxruntime-web;
    # onnxruntime-web's 40 MB of .wasm files do not: `latent-atlas web` fetches them once.
    app = REPO / "web" / "app"
    for path in app.rglob("*"):
        if path.is_file():
            wheel_name = f"latent_atlas/web/app/{path.relative_to(app).as_posix()}"
            assert zipfile.ZipFile(wheel).read(wheel_name) == path.read_bytes(), wheel_name
    for name in ("web/commands.py", "web/site.py", "web/serve.py", "web/onnxruntime_web.py", "web/package-lock.json"):
        assert f"latent_atlas/{name}" in names, name
    assert not any(n.endswith(".wasm") or "node_modules" in n for n in names)
    assert not any(n.startswith(("tests/", "benchmarks/")) for n in names)


def test_plain_install_runs_without_torch(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python, cli = env_dir / "bin" / "python", env_dir / "bin" / "latent-atlas"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], check=True, capture_output=True, text=True)

    probe = subprocess.run([str(python), "-c", "import torch"], capture_output=True, text=True)
    assert probe.returncode != 0, "a plain install must not pull torch"
    out = tmp_path / "grid.png"
    result = subprocess.run([str(cli), "grid", "-n", "6", "-o", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    with Image.open(out) as image:
        assert min(image.size) >= 6 * 28
    # The browser explorer too, with no Node or npm: onnxruntime-web comes from the lock file's pin.
    site = tmp_path / "site"
    result = subprocess.run([str(cli), "web", "mnist", "--out", str(site), "--quiet"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (site / "index.html").is_file() and (site / "ort" / "ort-wasm-simd-threaded.wasm").stat().st_size > 1e6
    bad = subprocess.run([str(cli), "train"], capture_output=True, text=True)
    assert bad.returncode == 2 and "pip install 'latent-atlas[train]'" in bad.stderr
    assert "Traceback" not in bad.stderr
