"""Fixtures for the runtime's tests, which must pass without torch.

With LATENT_ATLAS_BLOCK_TORCH=1 (how `make test` runs this folder) `import torch` fails for the whole
session: a None entry in sys.modules makes the import system raise ImportError, so any torch import
hidden in the runtime, or in a test, shows up as a failure.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

BLOCK_TORCH_ENV = "LATENT_ATLAS_BLOCK_TORCH"

if os.environ.get(BLOCK_TORCH_ENV) == "1":
    sys.modules["torch"] = None  # type: ignore[assignment]



@pytest.fixture(scope="session")
def model():
    """The bundled MNIST model, loaded once on the CPU."""
    from latent_atlas.runtime import load

    return load("mnist", providers="cpu")


@pytest.fixture(scope="session")
def bundle_dir(model) -> Path:
    return model.bundle.path


@pytest.fixture
def bundle_copy(bundle_dir, tmp_path) -> Path:
    """A writable copy of the bundled model, to break on purpose."""
    target = tmp_path / "bundle"
    shutil.copytree(bundle_dir, target)
    return target


@pytest.fixture
def mnist_test(data_dir):
    """(images uint8 [N, 28, 28], labels) of the real MNIST test set; skips when the files are absent."""
    return _mnist_test(str(data_dir))


@functools.lru_cache(maxsize=1)
def _mnist_test(data_dir: str) -> tuple[np.ndarray, np.ndarray]:
    from latent_atlas.train.data import load_split

    return load_split("mnist", "test", data_dir=data_dir, download=False)


@pytest.fixture(scope="session")
def onnx_file(tmp_path_factory):
    """Writes a small ONNX graph with the bundle format's names (or deliberately wrong ones).

    onnx_file("decoder", latent_dim=3) -> a linear decoder z [N, 3] -> sigmoid image [N, 1, 28, 28];
    onnx_file("encoder", latent_dim=3) -> a linear encoder image -> z_mean, z_logvar [N, 3].
    input_name / image_side / channels / metadata_dim change the signature to test the checks."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    directory = tmp_path_factory.mktemp("onnx")
    counter = iter(range(10**6))

    def make(role: str, latent_dim: int = 3, input_name: str | None = None, image_side: int = 28,
             metadata_dim: int | None = None, channels: int = 1) -> Path:
        rng = np.random.default_rng(latent_dim)
        pixels = channels * image_side * image_side
        shape = ["N", channels, image_side, image_side]
        if role == "decoder":
            name = input_name or "z"
            weights = [numpy_helper.from_array(rng.normal(0, 1, (latent_dim, pixels)).astype(np.float32), "w"),
                       numpy_helper.from_array(np.array([-1, channels, image_side, image_side], np.int64), "shape")]
            nodes = [helper.make_node("MatMul", [name, "w"], ["logits"]),
                     helper.make_node("Sigmoid", ["logits"], ["flat"]),
                     helper.make_node("Reshape", ["flat", "shape"], ["image"])]
            inputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", latent_dim])]
            outputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)]
        else:
            name = input_name or "image"
            weights = [numpy_helper.from_array(np.array([-1, pixels], np.int64), "shape"),
                       numpy_helper.from_array(rng.normal(0, 0.05, (pixels, latent_dim)).astype(np.float32), "wm"),
                       numpy_helper.from_array(rng.normal(0, 0.05, (pixels, latent_dim)).astype(np.float32), "wv")]
            nodes = [helper.make_node("Reshape", [name, "shape"], ["flat"]),
                     helper.make_node("MatMul", ["flat", "wm"], ["z_mean"]),
                     helper.make_node("MatMul", ["flat", "wv"], ["z_logvar"])]
            inputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)]
            outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", latent_dim])
                       for n in ("z_mean", "z_logvar")]
        graph = helper.make_graph(nodes, role, inputs, outputs, initializer=weights)
        proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
        helper.set_model_props(proto, {"latent_atlas.role": f'"{role}"',
                                       "latent_atlas.latent_dim": str(metadata_dim or latent_dim)})
        onnx.checker.check_model(proto)
        path = directory / f"{role}-{next(counter)}.onnx"
        onnx.save(proto, path)
        return path

    return make
