"""Fixtures for the explorer's tests: offscreen Qt, the bundled models, a ready window (the 3-D bundle is tests/conftest.py's).

QT_QPA_PLATFORM must be set before Qt is first imported, so it is set at the top of this file.
"""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"

import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

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
    state.worker.wait()


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
        window.state.worker.wait()


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

