"""Tests for latent_atlas.train.data: real files, corrupt IDX files, and downloads from a local server."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import os
import socket
import stat
import struct
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from latent_atlas.train import data
from latent_atlas.train.data import (
    DATASETS,
    DatasetError,
    DatasetFile,
    DatasetInfo,
    ensure_files,
    load_split,
    read_idx,
    resolve_data_dir,
    to_float,
)

TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"


# ----------------------------------------------------------------------------------------------
# helpers


def idx_bytes(array: np.ndarray, dtype_code: int = 0x08, magic_ndim: int | None = None) -> bytes:
    """Encode an array as an (uncompressed) IDX file."""
    ndim = array.ndim if magic_ndim is None else magic_ndim
    header = bytes([0, 0, dtype_code, ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_gz(path: Path, payload: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(payload, mtime=0))
    return path


def synthetic_split(n_images: int = 5, n_labels: int | None = None, max_label: int = 9):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n_images, 28, 28), dtype=np.uint8)
    labels = (np.arange(n_images if n_labels is None else n_labels) % (max_label + 1)).astype(np.uint8)
    return images, labels


def make_dataset(root: Path, name: str = "tiny", **split_kwargs) -> DatasetInfo:
    """Write the four IDX files of a tiny dataset under root/name and a registry entry matching them."""
    images, labels = synthetic_split(**split_kwargs)
    files = []
    for filename, array in [("train-images-idx3-ubyte.gz", images), ("train-labels-idx1-ubyte.gz", labels),
                            (TEST_IMAGES, images[:3]), (TEST_LABELS, labels[:3])]:
        blob = gzip.compress(idx_bytes(array), mtime=0)
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / filename).write_bytes(blob)
        files.append(DatasetFile(filename, hashlib.sha256(blob).hexdigest(), len(blob)))
    return DatasetInfo(name, tuple(files), tuple(str(i) for i in range(10)), mirrors=())


def closed_port_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/"


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# ----------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch):
    # A proxy setting would route 127.0.0.1 through it; a user's mirror list would override ours.
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                data.MIRRORS_ENV):
        monkeypatch.delenv(var, raising=False)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep pytest output clean
        pass


@pytest.fixture
def serve():
    """serve(directory) -> base URL of an HTTP server on 127.0.0.1 serving that directory."""
    servers = []

    def start(directory: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(directory))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def shared_dir() -> Path:
    root = os.environ.get(data.DATA_DIR_ENV)
    if not root:
        pytest.skip(f"{data.DATA_DIR_ENV} is not set; the real-dataset tests need the shared copy")
    return Path(root)


def require_files(root: Path, dataset: str, *filenames: str) -> None:
    missing = [f for f in filenames if not (root / dataset / f).is_file()]
    if missing:
        pytest.skip(f"real {dataset} files absent from {root / dataset}: {', '.join(missing)}")


# ----------------------------------------------------------------------------------------------
# real files


def test_real_mnist_test_split(shared_dir):
    require_files(shared_dir, "mnist", TEST_IMAGES, TEST_LABELS)
    images, labels = load_split("mnist", "test", data_dir=shared_dir, download=False)
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.uint8
    counts = np.bincount(labels, minlength=10)
    assert counts.sum() == 10000 and counts[1] == 1135
    assert counts.tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert images.max() == 255 and images.min() == 0


def test_real_mnist_train_split(shared_dir):
    require_files(shared_dir, "mnist", "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
    images, labels = load_split("mnist", "train", data_dir=shared_dir, download=False)
    assert images.shape == (60000, 28, 28) and labels.shape == (60000,)
    assert np.bincount(labels, minlength=10).tolist() == [5923, 6742, 5958, 6131, 5842,
                                                          5421, 5918, 6265, 5851, 5949]


def test_real_fashion_mnist_test_split(shared_dir):
    require_files(shared_dir, "fashion-mnist", TEST_IMAGES, TEST_LABELS)
    images, labels = load_split("fashion-mnist", "test", data_dir=shared_dir, download=False)
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels, minlength=10).tolist() == [1000] * 10
    assert DATASETS["fashion-mnist"].class_names[9] == "Ankle boot"


def test_real_checksums_match_registry(shared_dir):
    for name in ("mnist", "fashion-mnist"):
        entries = [f for f in DATASETS[name].files if f.size < 5_000_000]  # skip the big ones: speed
        require_files(shared_dir, name, *(f.filename for f in entries))
        paths = ensure_files(name, data_dir=shared_dir, download=False, filenames=[f.filename for f in entries])
        for entry in entries:
            assert paths[entry.filename].stat().st_size == entry.size
            assert data.file_sha256(paths[entry.filename]) == entry.sha256


def test_real_file_downloaded_through_local_mirror(shared_dir, serve, tmp_path, capsys):
    require_files(shared_dir, "mnist", TEST_LABELS)
    mirror = serve(shared_dir / "mnist")
    paths = ensure_files("mnist", data_dir=tmp_path, mirrors=[mirror], filenames=[TEST_LABELS])
    assert paths[TEST_LABELS] == tmp_path / "mnist" / TEST_LABELS
    assert paths[TEST_LABELS].read_bytes() == (shared_dir / "mnist" / TEST_LABELS).read_bytes()
    labels = read_idx(paths[TEST_LABELS], ndim=1)
    assert labels.shape == (10000,) and np.bincount(labels)[1] == 1135
    assert "downloading" in capsys.readouterr().err
    # Readable as any file the user creates (umask), not private as the temp file it was fetched into.
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(paths[TEST_LABELS].stat().st_mode) == 0o666 & ~mask


# ----------------------------------------------------------------------------------------------
# corrupt IDX files


@pytest.mark.parametrize("name, payload, expected", [
    ("wrong-magic", b"\x00\x00\x08\x02" + b"\x00" * 12, "0x00000802"),
    ("wrong-dtype", idx_bytes(np.zeros(4, np.uint8), dtype_code=0x0D), "dtype byte 0x08 (uint8), found 0x0d"),
    ("truncated", idx_bytes(np.zeros(10000, np.uint8))[:-1000],
     "expected 10000 bytes of labels after the header, found 9000 (truncated"),
    ("trailing", idx_bytes(np.zeros((2, 28, 28), np.uint8)) + b"junk",
     "expected 1568 bytes of image data (2 x 28 x 28) after the header, found 1572 (trailing"),
    ("short-header", b"\x00\x00\x08\x03\x00\x00", "16-byte IDX header"),
])
def test_read_idx_rejects_corrupt_payload(tmp_path, name, payload, expected):
    path = write_gz(tmp_path / f"{name}.gz", payload)
    with pytest.raises(DatasetError) as err:
        read_idx(path)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_read_idx_rejects_truncated_gzip(tmp_path):
    blob = gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8)))
    path = tmp_path / "cut.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DatasetError, match="not a valid gzip stream") as err:
        read_idx(path)
    assert str(path) in str(err.value)


def test_read_idx_rejects_non_gzip_garbage(tmp_path):
    path = tmp_path / "garbage.gz"
    path.write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(DatasetError, match="expected a gzip-compressed IDX file") as err:
        read_idx(path)
    assert str(path) in str(err.value)


def test_read_idx_rejects_labels_where_images_expected(tmp_path):
    path = write_gz(tmp_path / "labels.gz", idx_bytes(np.zeros(3, np.uint8)))
    with pytest.raises(DatasetError, match=r"expected IDX magic 0x00000803 \(images\), found 0x00000801"):
        read_idx(path, ndim=3)


def test_read_idx_plain_and_gzip_roundtrip(tmp_path):
    images, _ = synthetic_split(3)
    plain = tmp_path / "plain-idx3-ubyte"
    plain.write_bytes(idx_bytes(images))
    np.testing.assert_array_equal(read_idx(plain), images)
    np.testing.assert_array_equal(read_idx(write_gz(tmp_path / "x.gz", idx_bytes(images))), images)
    assert read_idx(plain).flags.writeable


def test_load_split_count_mismatch(tmp_path):
    info = make_dataset(tmp_path, n_images=5, n_labels=4)
    with pytest.raises(DatasetError, match="holds 5 images but .* holds 4 labels") as err:
        load_split(info, "train", data_dir=tmp_path, download=False)
    assert "train-images-idx3-ubyte.gz" in str(err.value)


def test_load_split_label_out_of_range(tmp_path):
    info = make_dataset(tmp_path, n_images=12, max_label=11)
    with pytest.raises(DatasetError, match=r"expected labels in 0\.\.9, found 11") as err:
        load_split(info, "train", data_dir=tmp_path, download=False)
    assert "train-labels-idx1-ubyte.gz" in str(err.value)


def test_unknown_dataset_and_split():
    with pytest.raises(DatasetError, match="fashion-mnist, mnist"):
        load_split("cifar", "train")
    with pytest.raises(DatasetError, match="train, test"):
        load_split("mnist", "validation")


def test_checksum_mismatch_without_download(tmp_path):
    info = make_dataset(tmp_path)
    target = tmp_path / "tiny" / TEST_LABELS
    target.write_bytes(b"x" * info.file(TEST_LABELS).size)
    with pytest.raises(DatasetError) as err:
        load_split(info, "test", data_dir=tmp_path, download=False)
    message = str(err.value)
    assert str(target) in message and info.file(TEST_LABELS).sha256 in message
    assert hashlib.sha256(target.read_bytes()).hexdigest() in message and "Delete it" in message
    assert target.exists()  # never deleted behind the user's back


def test_load_split_and_to_float(tmp_path):
    info = make_dataset(tmp_path)
    images, labels = load_split(info, "test", data_dir=tmp_path, download=False)
    assert images.shape == (3, 28, 28) and labels.tolist() == [0, 1, 2]
    floats = to_float(images)
    assert floats.shape == (3, 1, 28, 28) and floats.dtype == np.float32
    np.testing.assert_allclose(floats[:, 0] * 255.0, images, atol=1e-4)
    assert 0.0 <= floats.min() and floats.max() <= 1.0
    full = data.load_dataset(info, data_dir=tmp_path, download=False)
    assert full.train_images.shape == (5, 28, 28) and full.info is info


def test_hash_is_cached(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    expected = hashlib.sha256(b"abc").hexdigest()
    assert data.file_sha256(path) == expected
    monkeypatch.setattr(data.hashlib, "sha256", lambda *a: pytest.fail("re-hashed an unchanged file"))
    assert data.file_sha256(path) == expected
    monkeypatch.undo()
    path.write_bytes(b"abcd")  # a changed size invalidates the cached digest
    assert data.file_sha256(path) == hashlib.sha256(b"abcd").hexdigest()


# ----------------------------------------------------------------------------------------------
# downloads from a local HTTP server


def mirror_dirs(tmp_path: Path, info: DatasetInfo):
    """(good, corrupt) server roots: the real synthetic files, and same-size wrong bytes."""
    good, corrupt = tmp_path / "good", tmp_path / "corrupt"
    os.replace(tmp_path / "src" / info.name, good)
    corrupt.mkdir()
    for entry in info.files:
        (corrupt / entry.filename).write_bytes(b"\x1f\x8b" + b"\x00" * (entry.size - 2))
    return good, corrupt


def test_download_falls_through_bad_mirrors(tmp_path, serve, capsys):
    info = make_dataset(tmp_path / "src")
    good, corrupt = mirror_dirs(tmp_path, info)
    refused, bad, ok = closed_port_url(), serve(corrupt), serve(good)
    images, labels = load_split(info, "test", data_dir=tmp_path / "data", mirrors=[refused, bad, ok])
    assert images.shape == (3, 28, 28) and labels.tolist() == [0, 1, 2]
    directory = tmp_path / "data" / "tiny"
    assert leftovers(directory) == [TEST_IMAGES, TEST_LABELS]
    err = capsys.readouterr().err
    assert f"mirror {refused} failed" in err and "cannot connect" in err
    assert f"mirror {bad} failed" in err and "SHA-256" in err


def test_download_all_mirrors_bad(tmp_path, serve):
    info = make_dataset(tmp_path / "src")
    _, corrupt = mirror_dirs(tmp_path, info)
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    for entry in info.files:
        (truncated / entry.filename).write_bytes((tmp_path / "good" / entry.filename).read_bytes()[:-10])
    mirrors = [closed_port_url(), serve(corrupt), serve(truncated)]
    with pytest.raises(DatasetError) as err:
        ensure_files(info, data_dir=tmp_path / "data", mirrors=mirrors)
    message = str(err.value)
    directory = tmp_path / "data" / "tiny"
    assert str(directory) in message and "LATENT_ATLAS_DATA" in message and "--data-dir" in message
    for mirror in mirrors:
        assert mirror in message
    assert "cannot connect" in message and "SHA-256" in message and "served" in message
    assert leftovers(directory) == []  # nothing under the final name, no temp files


def test_corrupt_local_file_is_moved_aside_and_replaced(tmp_path, serve):
    info = make_dataset(tmp_path / "src")
    good, _ = mirror_dirs(tmp_path, info)
    directory = tmp_path / "data" / "tiny"
    directory.mkdir(parents=True)
    (directory / TEST_IMAGES).write_bytes((good / TEST_IMAGES).read_bytes())
    (directory / TEST_LABELS).write_bytes(b"half a download")
    load_split(info, "test", data_dir=tmp_path / "data", mirrors=[serve(good)])
    assert (directory / TEST_LABELS).read_bytes() == (good / TEST_LABELS).read_bytes()
    assert (directory / (TEST_LABELS + ".corrupt")).read_bytes() == b"half a download"


def test_missing_files_without_download(tmp_path):
    info = make_dataset(tmp_path / "src")
    with pytest.raises(DatasetError) as err:
        load_split(info, "test", data_dir=tmp_path / "data", download=False)
    message = str(err.value)
    assert f"put the original gzipped files into {tmp_path / 'data' / 'tiny'}" in message
    assert TEST_IMAGES in message and TEST_LABELS in message and "download=False" in message
    assert not (tmp_path / "data").exists()


def test_mirror_returning_404(tmp_path, serve, capsys):
    info = make_dataset(tmp_path / "src")
    empty = tmp_path / "empty"
    empty.mkdir()
    mirror = serve(empty)
    with pytest.raises(DatasetError, match="HTTP 404"):
        ensure_files(info, data_dir=tmp_path / "data", mirrors=[mirror], filenames=[TEST_LABELS])
    assert "HTTP 404" in capsys.readouterr().err
    assert leftovers(tmp_path / "data" / "tiny") == []


def test_mirrors_env_var(tmp_path, serve, monkeypatch):
    info = make_dataset(tmp_path / "src")
    good, _ = mirror_dirs(tmp_path, info)
    monkeypatch.setenv(data.MIRRORS_ENV, f"{closed_port_url()}, {serve(good)}")
    paths = ensure_files(info, data_dir=tmp_path / "data", filenames=[TEST_LABELS])
    assert paths[TEST_LABELS].is_file()


# ----------------------------------------------------------------------------------------------
# data directory resolution


def test_resolve_data_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path / "env"))
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir() == tmp_path / "env"
    monkeypatch.delenv(data.DATA_DIR_ENV)
    assert resolve_data_dir() == tmp_path / "cache" / "latent-atlas" / "datasets"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_data_dir() == tmp_path / "home" / ".cache" / "latent-atlas" / "datasets"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert resolve_data_dir() == tmp_path / "home" / "Library" / "Caches" / "latent-atlas" / "datasets"


def test_a_corrupt_file_that_cannot_be_replaced_is_named_first(tmp_path):
    """Issue 13: the cause (SHA-256 mismatch, moved aside) was buried under "missing mnist files in ..."."""
    info = make_dataset(tmp_path / "src")
    mirror_dirs(tmp_path, info)
    directory = tmp_path / "data" / "tiny"
    directory.mkdir(parents=True)
    (directory / TEST_LABELS).write_bytes(b"half a download")
    with pytest.raises(DatasetError) as err:
        ensure_files(info, data_dir=tmp_path / "data", mirrors=[closed_port_url()], filenames=[TEST_LABELS])
    first, second = str(err.value).splitlines()[:2]
    assert first.startswith(f"{directory / TEST_LABELS}: SHA-256 mismatch")
    assert f"moved it to {TEST_LABELS}.corrupt" in first and "no fresh copy could be downloaded" in first
    assert second.startswith("To fix:")
    assert (directory / (TEST_LABELS + ".corrupt")).read_bytes() == b"half a download"
