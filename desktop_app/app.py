"""Starting the explorer: the QApplication, the theme, the state, the window, remembered settings."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from PyQt6.QtCore import qInstallMessageHandler
from PyQt6.QtWidgets import QApplication

from . import settings as stored
from . import theme
from .state import ExplorerState
from .window import MainWindow


_app: QApplication | None = None  # held here: PyQt deletes a QApplication nobody references
# Qt notices that mean nothing to a user: the offscreen platform cannot resize to size hints.
_QUIET = ("This plugin does not support propagateSizeHints()",)


def _qt_message(kind, context, message: str) -> None:
    if message not in _QUIET:
        print(message, file=sys.stderr)


def application() -> QApplication:
    """The process's QApplication (created once, themed)."""
    global _app
    app = QApplication.instance()
    if app is None:
        qInstallMessageHandler(_qt_message)
        app = _app = QApplication(sys.argv[:1])
        app.setOrganizationName(stored.ORGANIZATION)
        app.setApplicationName(stored.APPLICATION)
        app.setApplicationDisplayName("Latent Atlas")
        theme.apply(app)
    return app


def create_window(bundle: str | None = None, provider: str | None = None, settings_path: str | Path | None = None,
                  report_error: Callable[[str], None] | None = None, verify_checksums: bool = True) -> MainWindow:
    """A ready window with a model open: `bundle`, else the remembered one, else the first bundled model.
    `settings_path` (an ini file) keeps tests and screenshots away from the user's settings;
    verify_checksums=False opens bundles whose files were edited on purpose."""
    application()
    settings = stored.open_settings(settings_path)
    state = ExplorerState(verify_checksums=verify_checksums)
    remembered = stored.restore_state(settings, state)
    if provider:
        state.provider = provider
    window = MainWindow(state, settings, report_error)
    window.open_initial_model(bundle or remembered)
    return window


def run(bundle: str | None = None, provider: str | None = None, verify_checksums: bool = True) -> int:
    app = application()
    window = create_window(bundle, provider, verify_checksums=verify_checksums)
    window.show()
    return app.exec()


def write_screenshots(out_dir: str | Path, bundle: str | None = None,
                      provider: str | None = None, verify_checksums: bool = True) -> tuple[list[Path], str]:
    """Opens the explorer with fresh settings, tours its views and saves their pictures into out_dir.
    Returns the files written and a line saying which model and Qt platform ("xcb", "offscreen") made them."""
    from .screenshots import take_screenshots

    app = application()
    with tempfile.TemporaryDirectory() as tmp:
        # Fresh settings: the pictures do not depend on what this machine's user last did.
        window = create_window(bundle, provider, settings_path=Path(tmp) / "settings.ini",
                               report_error=lambda message: print(f"explorer: {message}", file=sys.stderr),
                               verify_checksums=verify_checksums)
        try:
            paths = take_screenshots(window, Path(out_dir))
            return paths, f"{window.state.engine.model.name} on the {app.platformName()} platform"
        finally:
            window.close()
