"""What a hostile or careless user tries: altered bundles, huge sizes, bad output paths; and the layout
every caller takes from the model."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest

from latent_atlas import runtime
from latent_atlas.cli.main import main
from latent_atlas.runtime import bundle as fmt
from latent_atlas.runtime.images import to_pil, write_gif
from latent_atlas.runtime.limits import MAX_GRID_SIDE, MAX_PICTURE_PIXELS, MAX_POINTS
from latent_atlas.runtime.preprocessing import LAYOUTS, preprocess


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str, command: str) -> str:
    assert len(err.strip().splitlines()) == 1 and err.startswith(f"latent-atlas {command}: error: "), err
    return err


def altered(bundle_copy: Path) -> Path:
    """The bundle with one weight of its decoder changed: still a valid graph, no longer the recorded bytes."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(bundle_copy / fmt.DECODER)
    weight = max(proto.graph.initializer, key=lambda t: len(t.raw_data))
    values = numpy_helper.to_array(weight).copy()
    values.flat[0] += 0.5
    weight.CopyFrom(numpy_helper.from_array(values, weight.name))
    onnx.save(proto, bundle_copy / fmt.DECODER)
    return bundle_copy


# --- checksums are verified on load ----------------------------------------------------------------

def test_an_altered_decoder_is_refused_on_load(bundle_copy):
    altered(bundle_copy)
    with pytest.raises(fmt.BundleError, match=r"decoder\.onnx: SHA-256 .* does not match"):
        runtime.load(bundle_copy)
    with pytest.raises(fmt.BundleError, match="does not match"):
        fmt.read(bundle_copy)
    model = runtime.load(bundle_copy, verify=False)  # the opt-out, for bundles edited on purpose
    assert model.decode([0.0, 0.0]).shape == (28, 28)


def test_the_cli_refuses_an_altered_bundle_in_one_line_unless_told(capsys, bundle_copy, tmp_path):
    altered(bundle_copy)
    out = tmp_path / "digit.png"
    code, _, err = run(capsys, "decode", "-m", str(bundle_copy), "--z=0,0", "-o", str(out))
    assert code == 2 and "SHA-256" in one_line_error(err, "decode") and "--no-verify-checksums" in err
    assert not out.exists()
    code, _, _ = run(capsys, "decode", "-m", str(bundle_copy), "--z=0,0", "-o", str(out), "--no-verify-checksums")
    assert code == 0 and out.is_file()


def test_a_bundle_without_its_optional_atlas_still_verifies(bundle_copy):
    (bundle_copy / fmt.ATLAS).unlink()
    assert runtime.load(bundle_copy).latent_dim == 2


# --- the typed manifest ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "mnist-binarized"])
def test_the_manifest_reads_and_writes_the_same_json(name, tmp_path):
    path = fmt.resolve(name)
    original = json.loads((path / fmt.MANIFEST).read_text())
    manifest = fmt.Manifest.load(path)
    assert manifest.to_json() == original
    assert list(manifest.to_json()) == list(original)  # the key order too: the browser app diffs it
    manifest.write(tmp_path)
    assert json.loads((tmp_path / fmt.MANIFEST).read_text()) == original


def test_unknown_keys_survive_a_rewrite(tmp_path, bundle_copy):
    values = json.loads((bundle_copy / fmt.MANIFEST).read_text())
    values["static_batch"] = 7
    values["dataset"]["source"] = {"kind": "folder"}
    (bundle_copy / fmt.MANIFEST).write_text(json.dumps(values))
    fmt.Manifest.load(bundle_copy).write(tmp_path)
    again = json.loads((tmp_path / fmt.MANIFEST).read_text())
    assert again["static_batch"] == 7 and again["dataset"]["source"] == {"kind": "folder"}


def test_a_malformed_manifest_is_one_clear_error(bundle_copy):
    values = json.loads((bundle_copy / fmt.MANIFEST).read_text())
    values["latent_dim"] = "two"
    (bundle_copy / fmt.MANIFEST).write_text(json.dumps(values))
    with pytest.raises(fmt.BundleError, match=r"bundle\.json: latent_dim: expected integer, found string \"two\"$"):
        fmt.read(bundle_copy)


# --- the layout comes from the model -----------------------------------------------------------------

def test_layout_comes_from_the_bundle():
    assert runtime.load("mnist").layout == "mnist"
    assert runtime.load("fashion-mnist").layout == "fashion-mnist"


def test_dataset_layout_key_wins_over_the_name_and_old_bundles_fall_back(bundle_copy):
    values = json.loads((bundle_copy / fmt.MANIFEST).read_text())
    assert values["dataset"]["layout"] == "mnist"
    del values["dataset"]["layout"]  # as in bundles written before the key: the dataset's name decides
    values["dataset"]["name"] = "fashion-mnist"
    (bundle_copy / fmt.MANIFEST).write_text(json.dumps(values))
    assert runtime.load(bundle_copy).layout == "fashion-mnist"
    values["dataset"].update(name="my-shoes", layout="fashion-mnist")
    (bundle_copy / fmt.MANIFEST).write_text(json.dumps(values))
    model = runtime.load(bundle_copy)
    assert model.layout == model.encoder.layout == "fashion-mnist"
    values["dataset"]["layout"] = "polaroid"
    (bundle_copy / fmt.MANIFEST).write_text(json.dumps(values))
    with pytest.raises(fmt.BundleError, match=r'dataset\.layout: expected one of "mnist", .*, found "polaroid"'):
        runtime.load(bundle_copy)
    assert fmt.layout_of({"name": "something-else"}) == "mnist"


def test_the_model_preprocesses_in_its_own_layout():
    rng = np.random.default_rng(0)
    picture = np.zeros((60, 40), np.float32)
    picture[5:55, 10:30] = rng.uniform(0.5, 1.0, (50, 20))  # a tall object: the layouts differ in its size
    fashion = runtime.load("fashion-mnist")
    np.testing.assert_array_equal(fashion.preprocess(picture), preprocess(picture, LAYOUTS["fashion-mnist"]))
    assert not np.array_equal(fashion.preprocess(picture), preprocess(picture, "mnist"))


# --- every size a user can type is bounded -----------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["grid", "-n", "100000"], rf"n \(points per side\) is 100,000, above the limit of {MAX_GRID_SIDE}"),
    (["decode", "--z=0,0", "--scale", "100000"], r"scale must be an integer from 1 to 256"),
    (["grid", "-n", "200", "--scale", "100"], r"above the limit of 67,108,864 \(64 M 8-bit values\)"),
    (["sample", "-n", "1000000000"], rf"above the limit of {MAX_POINTS:,}"),
    (["interpolate", "--from", "0,0", "--to", "1,1", "--steps", "100000000"], "steps is 100,000,000, above"),
    (["bench", "--repeats", "1000000000000"], r"--repeats must be from 10 to 1,000,000"),
    (["bench", "--threads", "100000"], r"--threads must be from 1 to 1024"),
])
def test_huge_sizes_are_refused_in_one_line(capsys, tmp_path, argv, message):
    command = argv[0]
    extra = [] if command == "bench" else ["-o", str(tmp_path / ("x.gif" if command == "interpolate" else "x.png"))]
    code, _, err = run(capsys, command, "-m", "mnist", *argv[1:], *extra)
    assert code == 2 and re.search(message, one_line_error(err, command)), err


def test_the_library_bounds_sizes_too(model):
    with pytest.raises(ValueError, match="above the limit"):
        model.manifold(MAX_GRID_SIDE + 1)
    with pytest.raises(ValueError, match="above the limit"):
        model.sample(MAX_POINTS + 1)
    with pytest.raises(ValueError, match="scale must be an integer"):
        to_pil(np.zeros((28, 28)), scale=10**5)
    side = int(np.sqrt(MAX_PICTURE_PIXELS / 4)) + 1
    with pytest.raises(ValueError, match="frames of"):
        write_gif("never.gif", np.zeros((4, side, side)))
    assert not Path("never.gif").exists()


# --- outputs are checked before the work, and errors name the user's path ---------------------------

def test_an_output_that_is_a_directory_fails_before_loading(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(runtime, "load", lambda *a, **k: pytest.fail("the model was loaded before the check"))
    code, _, err = run(capsys, "grid", "-m", "mnist", "-o", str(tmp_path))
    assert code == 2 and f"{tmp_path} is a directory" in one_line_error(err, "grid")


def test_an_unwritable_folder_names_the_target_not_the_temp_file(capsys, tmp_path, monkeypatch):
    target = tmp_path / "grid.png"

    def refuse(*args, dir=None, prefix="", suffix="", **kwargs):
        raise PermissionError(13, "Permission denied", str(Path(dir) / f"{prefix}x1y2z3{suffix}"))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    code, _, err = run(capsys, "grid", "-m", "mnist", "-n", "3", "-o", str(target))
    assert code == 2 and "Permission denied" in one_line_error(err, "grid")
    assert str(target) in err and ".tmp" not in err and not target.exists()


def test_written_files_get_the_umask_not_a_temp_files_private_mode(capsys, tmp_path):
    """Outputs are written to a private temp file and renamed: the result must not stay 0600."""
    import os
    import stat

    from latent_atlas.runtime.files import staged_folder

    mask = os.umask(0o027)
    try:
        target = tmp_path / "new" / "grid.png"
        code, _, _ = run(capsys, "grid", "-m", "mnist", "-n", "2", "-o", str(target))
        assert code == 0 and stat.S_IMODE(target.stat().st_mode) == 0o640
        target.chmod(0o604)  # a file it replaces keeps its own mode
        assert run(capsys, "sample", "-m", "mnist", "-n", "1", "-o", str(target))[0] == 0
        assert stat.S_IMODE(target.stat().st_mode) == 0o604
        with staged_folder(tmp_path / "site") as staging:
            (staging / "index.html").write_text("")
        assert stat.S_IMODE((tmp_path / "site").stat().st_mode) == 0o750
    finally:
        os.umask(mask)


@pytest.mark.parametrize("exchange", ["refused", "unsupported"])
def test_a_folder_that_cannot_be_replaced_is_kept_as_it_was(tmp_path, monkeypatch, exchange):
    """The web site's and onnxruntime-web's folders: the old one is deleted only once the new one is in place
    (swapped in one step where the system can, else by two renames)."""
    from latent_atlas.runtime import files
    from latent_atlas.runtime.files import staged_folder

    def no_exchange(a, b):
        if exchange == "refused":
            raise OSError(28, "No space left on device")
        return False
    monkeypatch.setattr(files, "exchange", no_exchange)

    target = tmp_path / "site"
    target.mkdir()
    (target / "index.html").write_text("the old site")
    import os

    def refusing(move):
        def refuse_the_new_folder(source, destination, *args, **kwargs):
            name = Path(source).name
            if Path(destination) == target and name.startswith(".site.") and ".old-" not in name:
                raise OSError(28, "No space left on device")
            return move(source, destination, *args, **kwargs)
        return refuse_the_new_folder

    for move in ("rename", "replace"):  # however the folder is moved into place
        monkeypatch.setattr(os, move, refusing(getattr(os, move)))
    with pytest.raises(OSError, match="No space left"):
        with staged_folder(target) as staging:
            (staging / "index.html").write_text("the new site")
    assert (target / "index.html").read_text() == "the old site"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]  # no staging or old folder left behind


def test_an_output_below_a_file_fails_before_loading(capsys, tmp_path, monkeypatch):
    (tmp_path / "plain").write_text("a file, not a folder")
    monkeypatch.setattr(runtime, "load", lambda *a, **k: pytest.fail("the model was loaded before the check"))
    code, _, err = run(capsys, "sample", "-m", "mnist", "-o", str(tmp_path / "plain" / "x.png"))
    assert code == 2 and "is not a directory" in one_line_error(err, "sample")

