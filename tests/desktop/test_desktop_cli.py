"""`latent-atlas explore` from the command line: light help, one-line errors, and no display -> pictures."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from PIL import Image

from latent_atlas.cli.main import main

SHOTS = ("map.png", "grid.png", "interpolation.png", "draw.png", "manifold.png", "interpolation.gif")


def environment_without_display() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["HOME"] = env.get("HOME", "/tmp")
    return env


def test_help_does_not_load_qt():
    code = "import sys; from latent_atlas.cli.main import build_parser; build_parser(); print('PyQt6' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_a_bad_bundle_or_provider_is_one_line_before_any_window(tmp_path, capsys):
    for argv, message in ((["explore", "-m", str(tmp_path)], "not a model bundle"),
                          (["explore", "--provider", "warp-drive"], "unknown execution provider")):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err.startswith("latent-atlas explore: error:") and message in err


def test_an_altered_bundle_is_refused_in_one_line_unless_told(tmp_path, capsys, mnist):
    import onnx
    from onnx import numpy_helper

    from latent_atlas.runtime import bundle as bundle_format

    bundle = tmp_path / "edited"
    shutil.copytree(bundle_format.read("mnist").path, bundle)
    proto = onnx.load(bundle / bundle_format.DECODER)  # one weight changed: a valid graph, not the recorded bytes
    weight = max(proto.graph.initializer, key=lambda t: len(t.raw_data))
    values = numpy_helper.to_array(weight).copy()
    values.flat[0] += 0.5
    weight.CopyFrom(numpy_helper.from_array(values, weight.name))
    onnx.save(proto, bundle / bundle_format.DECODER)
    assert main(["explore", "-m", str(bundle), "--screenshots", str(tmp_path / "no")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "SHA-256" in err and "--no-verify-checksums" in err
    assert not (tmp_path / "no").exists()
    out = tmp_path / "shots"  # a process of its own, as a user runs it (and this one's Qt stays untouched)
    result = subprocess.run([sys.executable, "-m", "latent_atlas.cli.main", "explore", "-m", str(bundle),
                             "--no-verify-checksums", "--screenshots", str(out)],
                            capture_output=True, text=True, timeout=120, env=environment_without_display())
    assert result.returncode == 0, result.stderr
    assert "pictures of mnist" in result.stdout and (out / "grid.png").stat().st_size > 1000


def test_without_a_display_it_says_so_and_writes_screenshots_under_runs(tmp_path, mnist):
    # Under runs/ of the working directory, never docs/: a headless `make run` must not overwrite the README's pictures.
    out = tmp_path / "runs" / "screenshots"
    result = subprocess.run([sys.executable, "-m", "latent_atlas.cli.main", "explore"],
                            capture_output=True, text=True, timeout=120, env=environment_without_display(),
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert "no display" in first and "runs/screenshots/" in first
    assert "pictures of mnist on the offscreen platform" in result.stdout  # MNIST is the default model
    for name in SHOTS:
        assert (out / name).stat().st_size > 1000, name
    with Image.open(out / "grid.png") as grid:
        assert grid.size[0] > 1000 and len(grid.convert("RGB").getcolors(1 << 16) or ()) > 50
