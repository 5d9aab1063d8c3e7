"""What the explorer remembers between runs, in QSettings: the window's geometry and dock layout,
the last model, the provider, grid and interpolation options, recently opened bundle directories, and the
explaining options that hold for any model (background layer, posterior ellipses, neighbour count).

`open_settings(path)` gives an ini file at `path` (tests, screenshots: isolated from the user's own
settings); without a path, the platform's usual place under ORGANIZATION/APPLICATION.
"""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import QByteArray, QSettings

from latent_atlas.runtime.explorer_rules import LAYERS, NEIGHBOUR_COUNTS, clamp

from .state import GRID_SOURCES, INTERPOLATION_METHODS, ExplorerState

ORGANIZATION = "Latent Atlas"
APPLICATION = "Explorer"


def open_settings(path: str | Path | None = None) -> QSettings:
    if path is not None:
        return QSettings(str(path), QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)


def _str_list(value) -> list[str]:
    # An ini file stores a one-element list as a plain string and an empty one as nothing.
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def restore_state(settings: QSettings, state: ExplorerState) -> str | None:
    """Applies saved options to `state`; returns the model to open (None: the default)."""
    state.provider = str(settings.value("provider", state.provider))
    state.recent_bundles = [p for p in _str_list(settings.value("recent_bundles")) if Path(p).is_dir()]
    state.set_grid_options(n=int(settings.value("grid/n", state.grid_n)),
                           source=_choice(settings.value("grid/source"), GRID_SOURCES, state.grid_source))
    state.set_interpolation(method=_choice(settings.value("interpolation/method"), INTERPOLATION_METHODS,
                                                           state.interp_method),
                            steps=int(settings.value("interpolation/steps", state.interp_steps)))
    state.neighbour_k = clamp(int(settings.value("explain/neighbours", state.neighbour_k)), NEIGHBOUR_COUNTS)
    # An ini file gives booleans back as the strings "true" and "false".
    state.uncertainty = str(settings.value("explain/uncertainty", state.uncertainty)).lower() == "true"
    state.layer = _choice(settings.value("explain/layer"), LAYERS, state.layer)
    model = settings.value("model")
    return str(model) if model else None


def _choice(value, allowed: tuple[str, ...], default: str) -> str:
    return value if value in allowed else default


def save_state(settings: QSettings, state: ExplorerState) -> None:
    if state.engine is not None:
        settings.setValue("model", state.engine.source)
    settings.setValue("provider", state.provider)
    settings.setValue("recent_bundles", state.recent_bundles)
    settings.setValue("grid/n", state.grid_n)
    settings.setValue("grid/source", state.grid_source)
    settings.setValue("interpolation/method", state.interp_method)
    settings.setValue("interpolation/steps", state.interp_steps)
    settings.setValue("explain/neighbours", state.neighbour_k)
    settings.setValue("explain/uncertainty", state.uncertainty)
    settings.setValue("explain/layer", state.layer)
    settings.sync()


def restore_window(settings: QSettings, window) -> None:
    geometry, layout = settings.value("window/geometry"), settings.value("window/state")
    if isinstance(geometry, QByteArray):
        window.restoreGeometry(geometry)
    if isinstance(layout, QByteArray):
        window.restoreState(layout)


def save_window(settings: QSettings, window) -> None:
    settings.setValue("window/geometry", window.saveGeometry())
    settings.setValue("window/state", window.saveState())
    settings.sync()
