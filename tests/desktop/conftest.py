"""Fixtures for the explorer's tests: offscreen Qt, the bundled models, a ready window (the 3-D bundle is tests/conftest.py's).

QT_QPA_PLATFORM must be set before Qt is first imported, so it is set at the top of this file.
"""

from __future__ import annotations

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
