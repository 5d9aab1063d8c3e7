"""Bundles built hostile in the test, as the issue's attacker built them: each refused with one line naming
the file (and the field), quickly, without reading outside the bundle, allocating what a header claims,
or running a pickle; and the bundle a user already has is untouched."""

from __future__ import annotations

import io
import json
import os
import re
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from latent_atlas import runtime
from latent_atlas.runtime import bundle as fmt
from latent_atlas.runtime import untrusted
from latent_atlas.runtime.limits import (MAX_ATLAS_ROWS, MAX_JSON_BYTES, MAX_JSON_DEPTH, MAX_JSON_INTEGER,
                                         MAX_NPZ_ARRAY_BYTES, MAX_NPZ_MEMBERS)

from .conftest import edit_manifest, one_line_error, reseal, run_cli

SECRET = "the user's private file"


@pytest.fixture
def secret(tmp_path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(SECRET)
    return path


# --- paths the manifest names --------------------------------------------------------------------

@pytest.mark.parametrize("name", ["../secret.txt", "ABSOLUTE", "sub/../../secret.txt", "..\\secret.txt"])
def test_a_files_entry_outside_the_bundle_is_refused_without_reading_it(mnist_copy, secret, capsys, name):
    name = str(secret) if name == "ABSOLUTE" else name
    edit_manifest(mnist_copy, lambda v: v["files"].update({name: {"sha256": "0" * 64, "bytes": 1}}))
    with pytest.raises(fmt.BundleError, match=r"bundle\.json files names .*not a file inside the bundle"):
        fmt.read(mnist_copy)
    code, out, err = run_cli(capsys, "info", "-m", str(mnist_copy))
    message = one_line_error(err, "info")
    assert code == 2 and "not a file inside the bundle" in message
    assert fmt.sha256_file(secret) not in message  # the file was not hashed, so nothing of it leaks


def test_a_symlink_out_of_the_bundle_is_refused(mnist_copy, secret, tmp_path):
    outside = tmp_path / "elsewhere.onnx"
    (mnist_copy / fmt.DECODER).rename(outside)
    (mnist_copy / fmt.DECODER).symlink_to(outside)
    with pytest.raises(fmt.BundleError, match="symbolic link that leads out of the bundle"):
        runtime.load(mnist_copy)
    (mnist_copy / "loop").symlink_to(mnist_copy / "loop")
    edit_manifest(mnist_copy, lambda v: v["files"].update({"loop": {"sha256": "0" * 64, "bytes": 1}}))
    with pytest.raises(fmt.BundleError, match="symbolic link"):
        fmt.read(mnist_copy, verify=True)


def test_the_web_site_never_copies_a_file_from_outside_the_bundle(mnist_copy, secret, tmp_path, capsys):
    edit_manifest(mnist_copy, lambda v: v["files"].update({"../secret.txt": {
        "sha256": fmt.sha256_file(secret), "bytes": secret.stat().st_size}}))
    site = tmp_path / "site"
    code, _, err = run_cli(capsys, "web", "-m", str(mnist_copy), "--out", str(site), "--quiet")
    assert code == 2 and "not a file inside the bundle" in one_line_error(err, "web")
    assert not site.exists()
    # Without the checksum pass (a bundle read with verify=False) the copy itself applies the rule.
    from latent_atlas.web import site as web_site
    with pytest.raises(fmt.BundleError, match="not a file inside the bundle"):
        web_site._copy_bundle_file(mnist_copy, "../secret.txt", tmp_path)


def test_a_fifo_named_by_the_manifest_is_not_copied_into_a_site(mnist_copy, tmp_path):
    from latent_atlas.web import site as web_site
    os.mkfifo(mnist_copy / "pipe")
    with pytest.raises(fmt.BundleError, match="not a regular file"):
        web_site._copy_bundle_file(mnist_copy, "pipe", tmp_path)


# --- bundle.json -------------------------------------------------------------------------------------

def refused_quickly(bundle: Path, capsys, words: str) -> str:
    started = time.perf_counter()
    with pytest.raises(fmt.BundleError, match=re.escape(words)):
        runtime.load(bundle)
    code, _, err = run_cli(capsys, "info", "-m", str(bundle))
    assert code == 2 and words in one_line_error(err, "info")
    assert time.perf_counter() - started < 2  # both refusals together
    return err


def test_a_deeply_nested_manifest_is_refused_before_parsing(mnist_copy, capsys):
    (mnist_copy / fmt.MANIFEST).write_text("[" * 100_000 + "]" * 100_000)
    err = refused_quickly(mnist_copy, capsys, f"more than the {MAX_JSON_DEPTH} allowed")
    assert "bundle.json" in err


def test_a_huge_manifest_is_refused_before_reading(mnist_copy, capsys):
    with open(mnist_copy / fmt.MANIFEST, "r+b") as f:
        f.truncate(200 << 20)  # sparse: 200 MB that take no disk
    refused_quickly(mnist_copy, capsys, f"more than the {MAX_JSON_BYTES:,}")


@pytest.mark.parametrize("value, field, words", [
    ("NaN", "latent_stats.p01[0]", "NaN is not JSON"),
    ("-Infinity", "latent_stats.p01[0]", "-Infinity is not JSON"),
    ("1e400", "latent_stats.p01[0]", "out of the float64 range"),
    ("9" * 5000, "latent_stats.p01[0]", f"beyond +-{MAX_JSON_INTEGER}"),
    (str(MAX_JSON_INTEGER + 1), "latent_stats.p01[0]", f"beyond +-{MAX_JSON_INTEGER}"),
])
def test_numbers_python_and_the_browser_disagree_on_are_refused_naming_the_field(mnist_copy, capsys, value, field,
                                                                                 words):
    text = (mnist_copy / fmt.MANIFEST).read_text()
    values = json.loads(text)
    values["latent_stats"]["p01"][0] = "@NUMBER@"
    (mnist_copy / fmt.MANIFEST).write_text(json.dumps(values).replace('"@NUMBER@"', value))
    err = refused_quickly(mnist_copy, capsys, words)
    assert f"bundle.json: {field}: " in err


def test_the_largest_exact_integer_is_still_accepted(mnist_copy):
    edit_manifest(mnist_copy, lambda v: v["training"].update(big=MAX_JSON_INTEGER, small=-MAX_JSON_INTEGER))
    assert fmt.read(mnist_copy).manifest.training["big"] == MAX_JSON_INTEGER


# --- atlas.npz ---------------------------------------------------------------------------------------

def npy_header(shape: tuple[int, ...], descr: str = "<f4") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def write_zeros_member(archive: zipfile.ZipFile, name: str, shape: tuple[int, ...], descr: str = "<f4") -> None:
    """A member whose header is honest and whose body is zeros, compressed as it is written (a zip bomb)."""
    with archive.open(name, "w", force_zip64=True) as member:
        member.write(npy_header(shape, descr))
        left = int(np.prod(shape)) * np.dtype(descr).itemsize
        chunk = bytes(1 << 22)
        while left:
            left -= member.write(chunk[: min(left, len(chunk))])


def atlas_of(bundle: Path, **arrays) -> None:
    fmt.write_npz(bundle / fmt.ATLAS, **arrays)
    reseal(bundle)


def refused_atlas(bundle: Path, words: str) -> str:
    started = time.perf_counter()
    model = runtime.load(bundle, providers="cpu")
    with pytest.raises(fmt.BundleError, match=re.escape(words)) as caught:
        model.atlas()
    assert time.perf_counter() - started < 2
    message = str(caught.value)
    assert len(message.splitlines()) == 1 and str(bundle / fmt.ATLAS) in message
    return message


def test_a_zip_bomb_atlas_is_refused_before_it_is_decompressed(mnist_copy):
    rows = MAX_NPZ_ARRAY_BYTES // 8 + 1  # float32 [rows, 2]: one row over the array limit, ~64 MB of zeros
    with zipfile.ZipFile(mnist_copy / fmt.ATLAS, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        write_zeros_member(archive, "z_mean.npy", (rows, 2))
        write_zeros_member(archive, "labels.npy", (rows,), "|u1")
    assert (mnist_copy / fmt.ATLAS).stat().st_size < 1 << 20
    reseal(mnist_copy)
    refused_atlas(mnist_copy, f"more than the {MAX_NPZ_ARRAY_BYTES:,}")


def test_a_header_that_claims_terabytes_allocates_nothing(mnist_copy):
    with zipfile.ZipFile(mnist_copy / fmt.ATLAS, "w") as archive:
        archive.writestr("z_mean.npy", npy_header((1 << 39, 2)) + bytes(64))
        archive.writestr("labels.npy", npy_header((1 << 39,), "|u1") + bytes(64))
    reseal(mnist_copy)
    refused_atlas(mnist_copy, "z_mean.npy: shape")


def test_a_header_that_understates_its_body_is_refused(mnist_copy):
    with zipfile.ZipFile(mnist_copy / fmt.ATLAS, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("z_mean.npy", npy_header((10, 2)) + bytes(10 * 2 * 4 + (50 << 20)))
        archive.writestr("labels.npy", npy_header((10,), "|u1") + bytes(10))
    reseal(mnist_copy)
    refused_atlas(mnist_copy, "does not match the")


def test_too_many_rows_are_refused(mnist_copy):
    with zipfile.ZipFile(mnist_copy / fmt.ATLAS, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        write_zeros_member(archive, "z_mean.npy", (MAX_ATLAS_ROWS + 1, 1))  # within the array limit
        write_zeros_member(archive, "labels.npy", (MAX_ATLAS_ROWS + 1,), "|u1")
    reseal(mnist_copy)
    refused_atlas(mnist_copy, f"more than the {MAX_ATLAS_ROWS:,}")


def test_labels_and_means_of_different_lengths_are_refused(mnist_copy):
    atlas_of(mnist_copy, z_mean=np.zeros((10, 2), np.float32), labels=np.zeros(9, np.uint8))
    refused_atlas(mnist_copy, "arrays of different lengths")


def test_too_many_members_are_refused(mnist_copy):
    atlas_of(mnist_copy, **{f"a{i}": np.zeros(1, np.uint8) for i in range(MAX_NPZ_MEMBERS + 1)})
    refused_atlas(mnist_copy, f"more than the {MAX_NPZ_MEMBERS}")


def test_a_pickle_in_the_atlas_is_refused_without_running_it(mnist_copy, tmp_path):
    marker = tmp_path / "pickle-ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    buffer = io.BytesIO()
    np.save(buffer, np.array([Payload()], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(mnist_copy / fmt.ATLAS, "w") as archive:
        archive.writestr("z_mean.npy", buffer.getvalue())
        archive.writestr("labels.npy", npy_header((1,), "|u1") + bytes(1))
    reseal(mnist_copy)
    refused_atlas(mnist_copy, "pickled objects are never loaded")
    assert not marker.exists()


def test_a_member_that_is_not_an_array_is_refused(mnist_copy):
    with zipfile.ZipFile(mnist_copy / fmt.ATLAS, "w") as archive:
        archive.writestr("z_mean.npy", b"not numpy at all")
        archive.writestr("labels.npy", npy_header((1,), "|u1") + bytes(1))
    reseal(mnist_copy)
    refused_atlas(mnist_copy, "unreadable .npy header")


def test_the_real_atlas_still_reads(mnist_copy):
    z, labels = runtime.load(mnist_copy, providers="cpu").atlas()
    with np.load(mnist_copy / fmt.ATLAS) as atlas:
        assert np.array_equal(z, atlas["z_mean"]) and np.array_equal(labels, atlas["labels"])


def test_the_depth_scan_ignores_brackets_inside_strings():
    assert untrusted.json_depth(b'{"a": "[[[[[[", "b": [{"c": "\\"]]]]"}]}') == 3
    assert untrusted.parse_json(json.dumps({"x": "[" * 1000}).encode(), "x.json") == {"x": "[" * 1000}
