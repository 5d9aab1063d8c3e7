"""examples/node: a bundle's decoder.onnx in onnxruntime-node gives the Python runtime's image.

`npm ci` installs the locked onnxruntime-node into examples/node/node_modules (git-ignored), without
its post-install GPU download (ONNXRUNTIME_NODE_INSTALL=skip); then decode.mjs runs as a user runs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image

from latent_atlas import runtime
from latent_atlas.export import mobile
from latent_atlas.runtime import bundle as fmt
from latent_atlas.runtime.images import to_uint8

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "node"
POINTS = [(0.0, 0.0), (0.5, -1.0), (-2.5, 1.75)]


@pytest.fixture(scope="module")
def node_example() -> Path:
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not on PATH: install Node.js 18+ with npm (scripts/install-system-deps.sh does) to run the Node example")
    env = {**os.environ, "ONNXRUNTIME_NODE_INSTALL": "skip"}
    result = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=EXAMPLE, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return EXAMPLE


def decode_with_node(decoder: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["node", str(EXAMPLE / "decode.mjs"), str(decoder), str(out), *args],
                          capture_output=True, text=True, timeout=120)


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.mode == "L"
        return np.asarray(image).astype(int)


@pytest.fixture(scope="module")
def mnist():
    return runtime.load("mnist", providers="cpu")


@pytest.mark.parametrize("z", POINTS)
def test_node_decodes_what_the_python_runtime_decodes(node_example, mnist, tmp_path, z):
    out = tmp_path / "digit.png"
    result = decode_with_node(mnist.bundle.decoder_path, out, "--z=" + ",".join(map(str, z)))
    assert result.returncode == 0, result.stderr
    assert "latent_dim 2" in result.stdout
    want = to_uint8(mnist.decode(z)).astype(int)
    got = read_png(out)
    assert got.shape == (28, 28)
    assert np.abs(got - want).max() <= 1  # 1/255 after quantisation
    other = to_uint8(mnist.decode(np.asarray(z) + 1.5)).astype(int)
    assert np.abs(got - other).max() > 20  # a different point gives a visibly different image


def test_node_defaults_scale_and_a_decoder_without_metadata(node_example, mnist, tmp_path):
    # No arguments but --scale: the bundled MNIST decoder, the origin, digit.png in the working directory.
    result = subprocess.run(["node", str(EXAMPLE / "decode.mjs"), "--scale=3"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    want = np.kron(to_uint8(mnist.decode([0.0, 0.0])).astype(int), np.ones((3, 3), int))
    assert np.abs(read_png(tmp_path / "digit.png") - want).max() <= 1

    # A lone decoder stripped of its metadata: the latent size comes from the input shape.
    proto = onnx.load(mnist.bundle.decoder_path)
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, bare)
    result = decode_with_node(bare, tmp_path / "bare.png", "--z=0.5,-1")
    assert result.returncode == 0, result.stderr
    assert np.abs(read_png(tmp_path / "bare.png") - to_uint8(mnist.decode([0.5, -1.0]))).max() <= 1


def test_node_pads_a_static_batch_decoder(node_example, mnist, tmp_path):
    bundle = shutil.copytree(mnist.bundle.path, tmp_path / "static")
    mobile.make_static_batch(bundle, 3)
    proto = onnx.load(bundle / fmt.DECODER)  # record the batch in the metadata, as the exporter does
    props = {p.key: p.value for p in proto.metadata_props}
    props.update({f"{fmt.METADATA_PREFIX}static_batch": "3"})
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, props)
    onnx.save(proto, bundle / fmt.DECODER)
    result = decode_with_node(bundle / fmt.DECODER, tmp_path / "d.png", "--z=-1,0.25")
    assert result.returncode == 0, result.stderr
    assert "batch 3" in result.stdout
    assert np.abs(read_png(tmp_path / "d.png") - to_uint8(mnist.decode([-1.0, 0.25]))).max() <= 1


@pytest.mark.parametrize("args, message", [
    (["{bundle}/encoder.onnx"], "a latent-atlas encoder, expected its decoder.onnx"),
    (["{bundle}/decoder.onnx", "x.png", "--z=1,2,3"], "--z: expected 2 comma-separated numbers"),
    (["{bundle}/decoder.onnx", "x.png", "--scale=0"], "--scale: expected a positive integer"),
    (["{bundle}/bundle.json"], "not an ONNX model"),
])
def test_node_bad_input_is_one_line(node_example, mnist, tmp_path, args, message):
    argv = [a.format(bundle=mnist.bundle.path) for a in args]
    result = subprocess.run(["node", str(EXAMPLE / "decode.mjs"), *argv], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()
