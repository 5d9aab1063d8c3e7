"""The explorer's state: current model, cursor, markers, grid and interpolation; no widgets.

Widgets display this state and forward user input to its methods; they never compute anything
themselves. Changes are announced with Qt signals (QtCore only, so this layer runs and is tested
without a display). A method triggered by the user that fails (bad bundle, unreadable image) emits
`error` with a message and leaves the previous state untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QObject, pyqtSignal

from latent_atlas.runtime import Decoded
from latent_atlas.runtime.explorer_rules import (GRID_SIZES, GRID_SOURCES, INTERPOLATION_METHODS, INTERPOLATION_STEPS,
                                                 clamp)

from . import saving

from .engine import Encoding, Engine, Interpolation, bundled_names
from .worker import GridWorker

# What a bad file, bundle or image raises through the runtime (BundleError is a ValueError; PIL's
# UnidentifiedImageError is an OSError).
USER_ERRORS = (ValueError, TypeError, OSError)

MAX_ENCODINGS = 12
MAX_RECENT_BUNDLES = 8
# Arrow keys move the cursor by this fraction of the visible extent.
NUDGE_FRACTION = 0.02
# Slider range (+-) for a dim without spread in the test set: 3 standard deviations of the prior.
PRIOR_RANGE = 3.0


@dataclass(frozen=True)
class Marker:
    """A labelled point the map draws: an encoded image, the drawing, a prior sample, an endpoint."""
    kind: str  # "encoded" | "drawing" | "sample" | "a" | "b"
    label: str
    z: np.ndarray


class ExplorerState(QObject):
    model_changed = pyqtSignal()
    provider_changed = pyqtSignal()
    dims_changed = pyqtSignal()
    cursor_changed = pyqtSignal()
    markers_changed = pyqtSignal()
    drawing_changed = pyqtSignal()
    grid_changed = pyqtSignal()
    grid_busy_changed = pyqtSignal(bool)
    interpolation_changed = pyqtSignal()
    frame_changed = pyqtSignal()
    error = pyqtSignal(str)

    def __init__(self, parent: QObject | None = None, verify_checksums: bool = True):
        super().__init__(parent)
        self.engine: Engine | None = None
        self.verify_checksums = verify_checksums  # False: open bundles whose files were edited on purpose
        self.provider = "auto"          # what the user chose; engine.model.provider is what is active
        self.recent_bundles: list[str] = []
        self.dims = (0, 1)
        self.cursor = np.zeros(0, np.float32)
        self.preview: np.ndarray | None = None
        self.decode_ms = 0.0
        self.view_extent = None         # ((xmin, xmax), (ymin, ymax)) the map shows, set by the map
        self.encodings: list[Encoding] = []
        self.drawing: Encoding | None = None
        self.sample: np.ndarray | None = None
        self.endpoints: dict[str, np.ndarray | None] = {"a": None, "b": None}
        self.interp_method = "linear"
        self.interp_steps = 12
        self.interpolation: Interpolation | None = None
        self.frame_index = 0
        self.grid_n = 20
        self.grid_source = "view"
        self.grid: Decoded | None = None  # z [n*n, D] row-major (top row = largest y), images, ncols = n
        self.grid_busy = False
        self.worker = GridWorker(self)
        self.worker.finished.connect(self._grid_finished)
        self.worker.failed.connect(self._grid_failed)

    # -- model ---------------------------------------------------------------------------------

    @property
    def latent_dim(self) -> int:
        return self.engine.model.latent_dim if self.engine else 0

    def model_choices(self) -> list[str]:
        """Bundled model names, then remembered bundle directories."""
        names = bundled_names()
        return names + [p for p in self.recent_bundles if p not in names]

    def load_model(self, source: str | Path, provider: str | None = None) -> bool:
        """Opens a bundled model (by name) or a bundle directory. On failure: `error`, old model kept."""
        provider = provider or self.provider
        if str(source) not in bundled_names():
            source = str(Path(source).resolve())  # one spelling per directory, for recents and settings
        engine = self._open(source, provider)
        if engine is None:
            return False
        self.provider = provider
        self._install(engine)
        return True

    def set_provider(self, provider: str) -> bool:
        """Runs the same model on another execution provider: cursor, markers and results stay."""
        if self.engine is None:
            self.provider = provider
            return True
        engine = self._open(self.engine.source, provider)
        if engine is None:
            return False
        self.provider, self.engine = provider, engine
        self.provider_changed.emit()
        self.set_cursor(self.cursor)
        return True

    def _open(self, source: str, provider: str) -> Engine | None:
        try:
            engine = Engine.open(source, provider, verify=self.verify_checksums)
            engine.atlas()  # a broken atlas.npz fails the switch now, not on the first paint
        except USER_ERRORS as exc:
            self.error.emit(f"Could not open the model {source}: {exc}")
            return None
        return engine

    def _install(self, engine: Engine) -> None:
        self.engine = engine
        if engine.source not in bundled_names():
            self._remember_bundle(engine.source)
        # Markers, grids and paths of the old model live in another latent space: drop them.
        self.worker.invalidate()
        self.encodings, self.drawing, self.sample = [], None, None
        self.endpoints = {"a": None, "b": None}
        self.interpolation, self.frame_index, self.grid = None, 0, None
        self._set_grid_busy(False)
        self.dims = (0, 1)
        self.view_extent = None
        self._decode_cursor(np.zeros(engine.model.latent_dim, np.float32))  # before anyone looks at the new model
        for signal in (self.model_changed, self.markers_changed, self.drawing_changed, self.grid_changed,
                       self.interpolation_changed, self.cursor_changed):
            signal.emit()

    def _remember_bundle(self, path: str) -> None:
        self.recent_bundles = [path] + [p for p in self.recent_bundles if p != path]
        del self.recent_bundles[MAX_RECENT_BUNDLES:]

    # -- latent plane and cursor ----------------------------------------------------------------

    def set_dims(self, x_dim: int, y_dim: int) -> None:
        """Which two latent dims the map shows; the others keep the cursor's values (the sliders)."""
        if self.engine is None or (x_dim, y_dim) == self.dims:
            return
        if x_dim == y_dim or not all(0 <= d < self.latent_dim for d in (x_dim, y_dim)):
            raise ValueError(f"the map needs two different dims in [0, {self.latent_dim}), got {x_dim}, {y_dim}")
        self.dims = (x_dim, y_dim)
        self.view_extent = None
        self.dims_changed.emit()
        self.cursor_changed.emit()

    def set_view_extent(self, extent) -> None:
        self.view_extent = tuple(tuple(float(v) for v in axis) for axis in extent)

    def home_extent(self):
        """The map's initial view: the test set's p01..p99 box in the shown dims."""
        return self.engine.percentile_extent(self.dims)

    def set_cursor(self, z) -> None:
        """Moves the cursor to a full latent vector and decodes it."""
        if self.engine is None:
            return
        self._decode_cursor(z)
        self.cursor_changed.emit()

    def _decode_cursor(self, z) -> None:
        self.cursor = np.array(z, dtype=np.float32).reshape(self.latent_dim)
        self.preview = self.engine.decode_one(self.cursor)
        self.decode_ms = self.engine.last_decode_ms

    def move_cursor(self, x: float, y: float) -> None:
        """Moves the cursor within the shown plane (the map's x and y)."""
        z = self.cursor.copy()
        z[self.dims[0]], z[self.dims[1]] = x, y
        self.set_cursor(z)

    def set_dim_value(self, dim: int, value: float) -> None:
        z = self.cursor.copy()
        z[dim] = value
        self.set_cursor(z)

    def nudge(self, dx: int, dy: int) -> None:
        """Moves the cursor by dx, dy steps of NUDGE_FRACTION of the visible extent."""
        if self.engine is None:
            return
        (x0, x1), (y0, y1) = self.view_extent or self.home_extent()
        x, y = self.cursor[self.dims[0]], self.cursor[self.dims[1]]
        self.move_cursor(x + dx * NUDGE_FRACTION * (x1 - x0), y + dy * NUDGE_FRACTION * (y1 - y0))

    def dim_range(self, dim: int) -> tuple[float, float]:
        """A slider's range for one dim: a little beyond the test set's min..max."""
        stats = self.engine.model.latent_stats
        lo, hi = float(stats["min"][dim]), float(stats["max"][dim])
        if not hi - lo > 1e-6:  # a dim the test set never moves: offer the prior's range
            return -PRIOR_RANGE, PRIOR_RANGE
        pad = 0.1 * (hi - lo)
        return lo - pad, hi + pad

    # -- markers: encoded images, the drawing, prior samples -------------------------------------

    def markers(self) -> list[Marker]:
        out = [Marker("encoded", e.name, e.z) for e in self.encodings]
        if self.drawing is not None:
            out.append(Marker("drawing", "drawing", self.drawing.z))
        if self.sample is not None:
            out.append(Marker("sample", "sample", self.sample))
        out += [Marker(k, k.upper(), z) for k, z in self.endpoints.items() if z is not None]
        return out

    def encode_image(self, image, name: str | None = None) -> bool:
        """Encodes a file path, PIL image or array; its point joins the map and the cursor jumps to it."""
        if self.engine is None:
            return False
        name = name or (Path(image).name if isinstance(image, (str, Path)) else "image")
        try:
            encoding = self.engine.encode(image, name)
        except USER_ERRORS as exc:
            self.error.emit(f"Could not encode {name}: {exc}")
            return False
        self.encodings = (self.encodings + [encoding])[-MAX_ENCODINGS:]
        self.markers_changed.emit()
        self.set_cursor(encoding.z)
        return True

    def select_encoding(self, index: int) -> None:
        self.set_cursor(self.encodings[index].z)

    def update_drawing(self, pixels: np.ndarray) -> None:
        """The draw pad's current picture (uint8 [H, W], white ink on black) -> its live encoding. Grey
        models only: white ink on black is no picture a colour model knows (the pad says so)."""
        if self.engine is None or not self.engine.grey:
            return
        if not np.any(pixels):
            self.clear_drawing()
            return
        try:
            self.drawing = self.engine.encode(pixels, "drawing")
        except USER_ERRORS as exc:
            self.error.emit(f"Could not encode the drawing: {exc}")
            return
        self.drawing_changed.emit()
        self.markers_changed.emit()

    def clear_drawing(self) -> None:
        self.drawing = None
        self.drawing_changed.emit()
        self.markers_changed.emit()

    def sample_prior(self, seed: int | None = None) -> None:
        """One draw from the model's prior (N(0, I) unless its export fitted one); the cursor jumps to it."""
        if self.engine is None:
            return
        self.sample = self.engine.model.sample(1, seed=seed).z[0]
        self.markers_changed.emit()
        self.set_cursor(self.sample)

    # -- interpolation -------------------------------------------------------------------------

    def set_endpoint(self, which: str, z=None) -> None:
        """Sets endpoint "a" or "b" (the cursor by default); with both set, the path is recomputed."""
        if self.engine is None:
            return
        self.endpoints[which] = np.array(self.cursor if z is None else z, dtype=np.float32).reshape(self.latent_dim)
        self.markers_changed.emit()
        if all(v is not None for v in self.endpoints.values()):
            self.interpolate()

    def set_interpolation(self, method: str | None = None, steps: int | None = None) -> None:
        if method is not None:
            if method not in INTERPOLATION_METHODS:
                raise ValueError(f"method must be one of {INTERPOLATION_METHODS}, got {method!r}")
            self.interp_method = method
        if steps is not None:
            self.interp_steps = clamp(steps, INTERPOLATION_STEPS)
        if self.interpolation is not None:
            self.interpolate()

    def interpolate(self) -> bool:
        a, b = self.endpoints["a"], self.endpoints["b"]
        if self.engine is None or a is None or b is None:
            self.error.emit("Choose two points first: A and B (buttons, or Shift+click / Ctrl+click on the map).")
            return False
        try:
            self.interpolation = self.engine.interpolate(a, b, self.interp_steps, self.interp_method)
        except USER_ERRORS as exc:
            self.error.emit(f"Could not interpolate: {exc}")
            return False
        self.frame_index = 0
        self.interpolation_changed.emit()
        self.frame_changed.emit()
        return True

    def set_frame(self, index: int) -> None:
        if self.interpolation is None:
            return
        self.frame_index = index % len(self.interpolation.frames)
        self.frame_changed.emit()

    def advance_frame(self) -> None:
        self.set_frame(self.frame_index + 1)

    # -- manifold grid -------------------------------------------------------------------------

    def set_grid_options(self, n: int | None = None, source: str | None = None) -> None:
        if n is not None:
            self.grid_n = clamp(n, GRID_SIZES)
        if source is not None:
            if source not in GRID_SOURCES:
                raise ValueError(f"grid source must be one of {GRID_SOURCES}, got {source!r}")
            self.grid_source = source

    def grid_extent(self):
        if self.grid_source == "view" and self.view_extent is not None:
            return self.view_extent
        return "percentiles"

    def request_grid(self) -> int:
        """Queues an n x n grid on the worker; returns its request id (0 without a model)."""
        if self.engine is None:
            return 0
        base = self.cursor.copy() if self.latent_dim > 2 else None
        request = self.worker.submit(self.engine, self.grid_n, self.grid_extent(), self.dims, base)
        self._set_grid_busy(True)
        return request.id

    def _grid_finished(self, request_id: int, manifold: Decoded) -> None:
        if not self.worker.is_current(request_id):
            return  # stale: a newer request or another model replaced it
        self.grid = manifold
        self._set_grid_busy(False)
        self.grid_changed.emit()

    def _grid_failed(self, request_id: int, message: str) -> None:
        if self.worker.is_current(request_id):
            self._set_grid_busy(False)
            self.error.emit(message)

    def _set_grid_busy(self, busy: bool) -> None:
        if busy != self.grid_busy:
            self.grid_busy = busy
            self.grid_busy_changed.emit(busy)

    def select_tile(self, index: int) -> None:
        if self.grid is not None:
            self.set_cursor(self.grid.z[index])

    def grid_box(self):
        """The latent box spanned by the shown grid's tile centres in the map's dims, or None."""
        if self.grid is None:
            return None
        xs, ys = self.grid.z[:, self.dims[0]], self.grid.z[:, self.dims[1]]
        return (float(xs.min()), float(xs.max())), (float(ys.min()), float(ys.max()))

    # -- saving ----------------------------------------------------------------------------------

    def save(self, what: str, path: str | Path) -> bool:
        """Writes "preview", "grid" or "interpolation" (a PNG strip, or a GIF animation by suffix)."""
        try:
            if what == "preview" and self.preview is not None:
                saving.save_image(self.preview, path)
            elif what == "grid" and self.grid is not None:
                saving.save_grid(self.grid.images, self.grid.ncols, path)
            elif what == "interpolation" and self.interpolation is not None:
                saving.save_frames(self.interpolation.frames, path)
            else:
                self.error.emit(f"Nothing to save yet: compute the {what} first.")
                return False
        except USER_ERRORS as exc:
            self.error.emit(f"Could not save {path}: {exc}")
            return False
        return True
