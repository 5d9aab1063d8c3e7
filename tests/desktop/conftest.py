"""Fixtures for the explorer's tests: offscreen Qt, the bundled models, a 3-D bundle, a ready window.

QT_QPA_PLATFORM must be set before Qt is first imported, so it is set at the top of this file.
"""

from __future__ import annotations

import json
import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"

import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from latent_atlas import runtime  # noqa: E402
from latent_atlas.runtime import bundle as bundle_format  # noqa: E402

BUNDLED = ("mnist", "fashion-mnist")


def require_bundled(name: str) -> str:
    if name not in bundle_format.bundled_names():
        pytest.fail(f"the bundled model {name!r} is missing from {bundle_format.BUNDLED_MODELS_DIR}; "
                    f"run 'make models' to build it")
    return name


@pytest.fixture(scope="session")
def mnist():
    """The bundled MNIST model, loaded by the runtime: the reference the app's pictures must match."""
    return runtime.load(require_bundled("mnist"), providers="cpu")


@pytest.fixture(scope="session")
def fashion():
    return runtime.load(require_bundled("fashion-mnist"), providers="cpu")


@pytest.fixture
def state(qapp):
    """An ExplorerState with MNIST open, no widgets."""
    from latent_atlas.desktop_app.state import ExplorerState

    state = ExplorerState()
    messages: list[str] = []
    state.error.connect(messages.append)
    state.messages = messages
    assert state.load_model(require_bundled("mnist"), "cpu"), messages
    yield state
    state.shutdown()


@pytest.fixture
def settings_path(tmp_path) -> Path:
    return tmp_path / "settings.ini"


@pytest.fixture
def open_explorer(qtbot, settings_path):
    """open_explorer(bundle="mnist") -> a shown MainWindow with isolated settings; errors go to window.errors."""
    from latent_atlas.desktop_app.app import create_window

    windows = []

    def open_(bundle: str | None = "mnist", size=(1280, 820)):
        if bundle in BUNDLED:
            require_bundled(bundle)
        window = create_window(bundle, "cpu", settings_path=settings_path, report_error=lambda message: None)
        qtbot.addWidget(window)
        window.resize(*size)
        window.show()
        qtbot.waitExposed(window)
        windows.append(window)
        return window

    yield open_
    for window in windows:
        window.state.shutdown()


@pytest.fixture
def explorer(open_explorer):
    return open_explorer()


@pytest.fixture(scope="session")
def bundle_3d(tmp_path_factory) -> Path:
    """A 3-D bundle made from the bundled MNIST one: z = (z0, z1, z2) decodes as MNIST's (z0 + z2, z1 + z2),
    and the encoder puts z2 = 0. The third dim thus visibly moves the picture, which the sliders need."""
    import onnx
    from onnx import helper, numpy_helper

    source = bundle_format.read(require_bundled("mnist"))
    target = tmp_path_factory.mktemp("bundle-3d")

    def constants(graph, **arrays) -> None:
        graph.initializer.extend(numpy_helper.from_array(np.asarray(v), name) for name, v in arrays.items())

    def declare_3d(proto, values) -> None:
        for value in values:
            value.type.tensor_type.shape.dim[1].dim_value = 3
        for prop in proto.metadata_props:
            if prop.key == "latent_atlas.latent_dim":
                prop.value = "3"
        # MNIST's fitted prior is 2-D: the 3-D model keeps N(0, I)
        kept = [prop for prop in proto.metadata_props if prop.key != "latent_atlas.prior"]
        del proto.metadata_props[:]
        proto.metadata_props.extend(kept)

    decoder = onnx.load(source.decoder_path)
    constants(decoder.graph, d0=np.array([0]), d2=np.array([2]), d3=np.array([3]), axis=np.array([1]))
    for node in decoder.graph.node:  # the original graph now reads the 2-D point made below
        node.input[:] = ["z_2d" if name == "z" else name for name in node.input]
    nodes = [helper.make_node("Slice", ["z", "d0", "d2", "axis"], ["z01"]),
             helper.make_node("Slice", ["z", "d2", "d3", "axis"], ["z2"]),
             helper.make_node("Add", ["z01", "z2"], ["z_2d"]), *decoder.graph.node]
    del decoder.graph.node[:]
    decoder.graph.node.extend(nodes)  # the graph's nodes must stay in topological order
    declare_3d(decoder, decoder.graph.input)
    onnx.save(decoder, target / bundle_format.DECODER)

    encoder = onnx.load(source.encoder_path)
    constants(encoder.graph, e0=np.array([0]), e1=np.array([1]), axis=np.array([1]), zero=np.zeros(1, np.float32))
    for output in ("z_mean", "z_logvar"):
        two = f"{output}_2d"
        for node in encoder.graph.node:
            node.output[:] = [two if name == output else name for name in node.output]
        encoder.graph.node.extend([helper.make_node("Slice", [two, "e0", "e1", "axis"], [f"{output}_col"]),
                                   helper.make_node("Mul", [f"{output}_col", "zero"], [f"{output}_zeros"]),
                                   helper.make_node("Concat", [two, f"{output}_zeros"], [output], axis=1)])
    declare_3d(encoder, encoder.graph.output)
    onnx.save(encoder, target / bundle_format.ENCODER)

    z, labels = source.read_atlas()
    bundle_format.write_npz(target / bundle_format.ATLAS, z_mean=np.c_[z, 0.5 * z[:, :1]], labels=labels)
    manifest = json.loads((source.path / bundle_format.MANIFEST).read_text())
    manifest.update(name="mnist-3d", latent_dim=3, files=bundle_format.file_entries(target))
    manifest.pop("prior", None)
    for values in manifest["latent_stats"].values():
        values.append(0.5 * values[0])
    (target / bundle_format.MANIFEST).write_text(json.dumps(manifest))
    return target


@pytest.fixture
def broken_bundle(tmp_path) -> Path:
    """A directory that looks like a bundle but whose manifest is not JSON."""
    target = tmp_path / "broken-bundle"
    shutil.copytree(bundle_format.read(require_bundled("mnist")).path, target)
    (target / bundle_format.MANIFEST).write_text("{ this is not json")
    return target


@pytest.fixture
def corrupt_image(tmp_path) -> Path:
    path = tmp_path / "corrupt.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"definitely not the rest of a PNG" * 10)
    return path


@pytest.fixture
def digit_png(tmp_path, qapp) -> Path:
    """A typeset 3, dark on white, like a photo of a digit on paper."""
    from latent_atlas.desktop_app.screenshots import typed_digit

    path = tmp_path / "three.png"
    assert typed_digit("3").save(str(path))
    return path



def _copied_mnist(target: Path) -> Path:
    return Path(shutil.copytree(bundle_format.read(require_bundled("mnist")).path, target))


def _relist(folder: Path) -> None:
    """bundle.json's files entries brought up to date with what the folder holds (a deliberate edit)."""
    manifest = bundle_format.Manifest.load(folder)
    names = [n for n in manifest.files if (folder / n).exists()]
    manifest.replace(files=bundle_format.file_entries(folder, names)).write(folder)


@pytest.fixture(scope="session")
def bundle_without_extra(tmp_path_factory) -> Path:
    """MNIST exported with --no-atlas-extra: no thumbnails, posterior variances or errors."""
    folder = _copied_mnist(tmp_path_factory.mktemp("no-extra") / "mnist-plain")
    (folder / bundle_format.ATLAS_EXTRA).unlink()
    _relist(folder)
    return folder


@pytest.fixture(scope="session")
def bundle_with_factors(tmp_path_factory) -> Path:
    """MNIST whose atlas points carry two known factors (as a procedural data set's do): z0 and |z1|."""
    folder = _copied_mnist(tmp_path_factory.mktemp("factors") / "mnist-factors")
    arrays = dict(np.load(folder / bundle_format.ATLAS_EXTRA))
    z, _ = bundle_format.read(folder).read_atlas()
    bundle_format.write_npz(folder / bundle_format.ATLAS_EXTRA, **arrays,
                            factors=np.c_[z[:, 0], np.abs(z[:, 1])].astype(np.float32))
    _relist(folder)
    manifest = bundle_format.Manifest.load(folder)
    dataset = manifest.dataset.to_json() | {"factor_names": ["slant", "width"]}
    manifest.replace(dataset=bundle_format.DatasetEntry.from_json(dataset, folder)).write(folder)
    return folder
