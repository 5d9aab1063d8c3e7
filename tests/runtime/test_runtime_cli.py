"""The runtime's `latent-atlas` subcommands, run in-process (plus one real subprocess)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latent_atlas.cli.main import main
from latent_atlas.runtime import doctor


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_info(capsys):
    code, out, _ = run(capsys, "info", "-m", "mnist", "--json")
    info = json.loads(out)
    assert code == 0 and info["latent_dim"] == 2 and info["providers"]["decoder"] == "CPUExecutionProvider"
    code, out, _ = run(capsys, "info", "-m", "mnist")
    assert code == 0 and "2-D" in out and "z[1]" in out


def test_the_binarized_model_says_so_and_decodes_pixel_probabilities(capsys, tmp_path):
    """Issue 14: the third bundled model is used like the others; its figures are over binary pixels."""
    code, out, _ = run(capsys, "info", "-m", "mnist-binarized", "--json")
    metrics = json.loads(out)["metrics"]
    assert code == 0 and metrics["binarized"] is True and metrics["iw_samples"] == 500
    code, out, _ = run(capsys, "grid", "-m", "mnist-binarized", "-n", "4", "-o", str(tmp_path / "grid.png"))
    assert code == 0 and (tmp_path / "grid.png").is_file()


def test_decode_writes_the_decoded_image(model, capsys, tmp_path):
    out_file = tmp_path / "digit.png"
    code, out, _ = run(capsys, "decode", "-m", "mnist", "--z=0.5,-1", "-o", str(out_file))
    assert code == 0 and "28x28" in out
    expected = np.round(np.clip(model.decode([0.5, -1.0]), 0, 1) * 255)
    np.testing.assert_allclose(np.asarray(Image.open(out_file)), expected, atol=1)
    code, _, _ = run(capsys, "decode", "-m", "mnist", "--z", "0,0", "--z", "1,1", "-o", str(out_file), "--scale", "2")
    assert code == 0 and Image.open(out_file).size == (2 * (2 * 30 + 2), 2 * 32)


def test_grid_sample_and_interpolate(capsys, tmp_path):
    grid = tmp_path / "grid.png"
    assert run(capsys, "grid", "-m", "mnist", "-n", "20", "-o", str(grid))[0] == 0
    assert Image.open(grid).size == (20 * 30 + 2,) * 2
    assert run(capsys, "grid", "-m", "mnist", "-n", "3", "--extent=-2,2,-1,1", "-o", str(grid))[0] == 0
    assert run(capsys, "grid", "-m", "mnist", "-n", "3", "--extent", "percentiles", "-o", str(grid))[0] == 0
    samples = tmp_path / "samples.png"
    assert run(capsys, "sample", "-m", "mnist", "-n", "64", "--seed", "0", "-o", str(samples))[0] == 0
    first = np.asarray(Image.open(samples))
    assert first.shape == (8 * 30 + 2,) * 2
    run(capsys, "sample", "-m", "mnist", "-n", "64", "--seed", "0", "-o", str(samples))
    np.testing.assert_array_equal(np.asarray(Image.open(samples)), first)  # seeded: the same picture

    start = tmp_path / "start.png"
    Image.open(grid).crop((2, 2, 30, 30)).save(start)
    morph = tmp_path / "morph.gif"
    code, out, _ = run(capsys, "interpolate", "-m", "mnist", "--from", str(start), "--to", "1,1", "--steps", "6",
                       "--method", "slerp", "-o", str(morph), "--scale", "2")
    assert code == 0 and "6 frames" in out
    with Image.open(morph) as gif:
        assert gif.n_frames == 6 and gif.size == (56, 56)
    strip = tmp_path / "morph.png"
    assert run(capsys, "interpolate", "-m", "mnist", "--from=-1,0", "--to", "1,0", "-o", str(strip))[0] == 0
    assert Image.open(strip).size == (10 * 30 + 2, 32)


def test_encode_prints_the_posterior(model, capsys, tmp_path):
    image = model.decode([0.3, -0.4])
    path = tmp_path / "digit.png"
    Image.fromarray((image * 255).round().astype(np.uint8)).save(path)
    code, out, _ = run(capsys, "encode", "-m", "mnist", str(path), "--json")
    row = json.loads(out)
    assert code == 0 and row["image"] == str(path)
    np.testing.assert_allclose(row["mean"], model.encode(path).mean, atol=1e-5)
    assert row["nearest_class"] in model.class_names
    code, out, _ = run(capsys, "encode", "-m", "mnist", str(path), str(path))
    assert code == 0 and out.count("z = [") == 2


def test_bench_reports_figures(capsys):
    code, out, _ = run(capsys, "bench", "-m", "mnist", "--repeats", "50", "--json")
    result = json.loads(out)
    assert code == 0 and result["provider"] == "CPUExecutionProvider"
    assert 0 < result["decode_p50_us"] <= result["decode_p99_us"] and result["grid_30x30_ms"] > 0


@pytest.mark.parametrize("argv, message", [
    (["decode", "--z", "1,2,3", "-o", "x.png"], r"expected latent points \[N, 2\]"),
    (["decode", "--z", "a,b", "-o", "x.png"], "comma-separated numbers"),
    (["grid", "-n", "0", "-o", "x.png"], "n must be a positive integer"),
    (["grid", "--extent", "1,2,3", "-o", "x.png"], "XMIN,XMAX,YMIN,YMAX"),
    (["grid", "--dims", "0,5", "-o", "x.png"], "dims must be two different"),
    (["grid", "-o", "x.unknown"], "unknown file extension"),
    (["sample", "-n", "0", "-o", "x.png"], "-n must be >= 1"),
    (["encode", "NOT_AN_IMAGE"], "not an image file"),
    (["encode", "missing.png"], "no such file"),
    (["interpolate", "--from", "nowhere.png", "--to", "0,0", "-o", "m.gif"], "neither an image file nor"),
    (["info", "--provider", "warp-drive"], "unknown execution provider"),
])
def test_errors_are_one_line_and_exit_2(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    Path("NOT_AN_IMAGE").write_text("plain text")
    command, rest = argv[0], argv[1:]
    code, _, err = run(capsys, command, "-m", "mnist", *rest)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith(f"latent-atlas {command}: error: ")
    assert re.search(message, err), err


@pytest.mark.parametrize("name, argv", [
    ("grid.png", ["grid", "-n", "3"]),
    ("morph.gif", ["interpolate", "--from", "0,0", "--to", "1,1", "--steps", "3"]),
])
def test_a_full_disk_is_one_line_and_keeps_the_old_picture(capsys, tmp_path, monkeypatch, name, argv):
    out_file = tmp_path / name
    out_file.write_bytes(b"the picture saved yesterday")

    def save_half_then_fail(image, fp, *args, **kwargs):
        Path(fp).write_bytes(b"half a pic")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", save_half_then_fail)
    code, _, err = run(capsys, argv[0], "-m", "mnist", *argv[1:], "-o", str(out_file))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "No space left on device" in err
    assert out_file.read_bytes() == b"the picture saved yesterday"
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left behind


def test_a_missing_model_is_one_line(capsys, tmp_path):
    code, _, err = run(capsys, "info", "-m", str(tmp_path / "nothing-here"))
    assert code == 2 and "neither a bundled model" in err and len(err.strip().splitlines()) == 1


def test_provider_fallback_is_a_one_line_warning(capsys):
    from latent_atlas.runtime.session import ALIASES, available_providers

    missing = next(p for p in ("cuda", "coreml", "directml") if ALIASES[p] not in available_providers())
    code, out, err = run(capsys, "info", "-m", "mnist", "--provider", missing)
    assert code == 0 and "runs on CPUExecutionProvider" in out
    assert len(err.strip().splitlines()) == 1 and "warning: " in err and "not available" in err
    code, _, err = run(capsys, "info", "-m", "mnist", "--provider", missing, "--strict")
    assert code == 2 and "strict=True" in err


def test_doctor_reports_and_warns_about_two_onnxruntimes(capsys, monkeypatch):
    code, out, _ = run(capsys, "doctor")
    assert code == 0, out
    assert "CPUExecutionProvider" in out and "model         mnist:" in out and "checksums ok" in out
    monkeypatch.setattr(doctor, "installed", lambda: {"onnxruntime": "1.20.0", "onnxruntime-gpu": "1.20.0"})
    code, out, _ = run(capsys, "doctor")
    assert code == 0 and "warning: both onnxruntime and onnxruntime-gpu are installed" in out
    assert doctor.GPU_FIX in out


def test_doctor_notices_a_gpu_provider_that_falls_back(capsys, monkeypatch):
    from latent_atlas.runtime import session

    monkeypatch.setattr(session, "available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    with pytest.warns(UserWarning):  # onnxruntime's own note that it cannot use CUDA here
        code, out, _ = run(capsys, "doctor")
    assert code == 0 and "auto runs on  CPUExecutionProvider" in out
    assert "warning: CUDAExecutionProvider is available but the models run on the CPU" in out


def test_latent_atlas_grid_runs_as_a_program(tmp_path):
    out_file = tmp_path / "grid.png"
    script = Path(sys.executable).parent / "latent-atlas"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "latent_atlas.cli.main"]
    result = subprocess.run([*command, "grid", "-m", "mnist", "-n", "10", "-o", str(out_file)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert Image.open(out_file).size == (10 * 30 + 2,) * 2
    failure = subprocess.run([*command, "decode", "-m", "mnist", "--z", "nan,0", "-o", str(out_file)],
                             capture_output=True, text=True, timeout=60)
    assert failure.returncode == 2 and failure.stderr.count("\n") == 1 and "Traceback" not in failure.stderr
