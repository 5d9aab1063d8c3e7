"""The explorer's state: current model, cursor, markers, grid, interpolation, and what explains the model
(the posterior of an encoded image, the real neighbours under the cursor, the map's background layer and
point colouring, a second model to compare with); no widgets.

Widgets display this state and forward user input to its methods; they never compute anything
themselves. Changes are announced with Qt signals (QtCore only, so this layer runs and is tested
without a display). A method triggered by the user that fails (bad bundle, unreadable image) emits
`error` with a message and leaves the previous state untouched.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QObject, pyqtSignal

from latent_atlas.runtime import Decoded, explain, untrusted
from latent_atlas.runtime import view_state as view_format
from latent_atlas.runtime.files import atomic_write
from latent_atlas.runtime.image_shape import shape_text
from latent_atlas.runtime.explorer_rules import (DEFAULT_NEIGHBOURS, FACTOR_PREFIX, GRID_SIZES, GRID_SOURCES,
                                                 INTERPOLATION_METHODS, INTERPOLATION_STEPS, LAYERS,
                                                 NEIGHBOUR_COUNTS, POINT_COLOURINGS, POSTERIOR_SAMPLES,
                                                 POSTERIOR_SIGMAS, SLIDER_MARGIN, SLIDER_PRIOR_RANGE, clamp,
                                                 layer_shape)

from . import saving

from .engine import Encoding, Engine, Interpolation, Neighbours, bundled_names
from .worker import GridWorker, LatestWorker

# What a bad file, bundle or image raises through the runtime (BundleError is a ValueError; PIL's
# UnidentifiedImageError is an OSError).
USER_ERRORS = (ValueError, TypeError, OSError)

MAX_ENCODINGS = 12
MAX_RECENT_BUNDLES = 8
# Arrow keys move the cursor by this fraction of the visible extent.
NUDGE_FRACTION = 0.02
# Computed layers kept per model: panning back and forth, or toggling a layer, finds them again.
LAYER_CACHE_SIZE = 16
# How the map shows the atlases while comparing: this model's, the other's, or both overlaid.
ATLAS_CHOICES = {"both": "both atlases", "this": "this model's atlas", "other": "the other model's atlas"}


@dataclass(frozen=True)
class LayerResult:
    """A background layer computed over a region of the map: values [rows, cols], row 0 at the top."""
    name: str
    grid: explain.LayerGrid
    dims: tuple[int, int]
    values: np.ndarray


@dataclass(frozen=True)
class LayerView:
    """What the map shows, as the layer needs it: the latent extent and the cells across and down."""
    extent: tuple[tuple[float, float], tuple[float, float]]
    width_px: int
    height_px: int

    def grid(self, layer: str) -> explain.LayerGrid:
        """Coarse cells of a few screen pixels each (explorer_rules.layer_shape): the screen's resolution,
        at the layer's cost."""
        return explain.LayerGrid(self.extent[0], self.extent[1], *layer_shape(layer, self.width_px, self.height_px))


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
    uncertainty_changed = pyqtSignal()
    layer_changed = pyqtSignal()
    points_changed = pyqtSignal()
    compare_changed = pyqtSignal()
    view_requested = pyqtSignal(object)  # ((xlo, xhi), (ylo, yhi)): a restored session asks the map for it
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
        # Uncertainty: the image whose posterior the map draws, and draws of that posterior.
        self.uncertainty = view_format.DEFAULT.uncertainty
        self.focus: Encoding | None = None
        self.posterior_seed = 0
        self.posterior_draws: tuple[np.ndarray, np.ndarray] | None = None  # (z [n, D], images)
        # Real neighbours of the cursor, or why there are none.
        self.neighbour_k = DEFAULT_NEIGHBOURS
        self.neighbours: Neighbours | None = None
        self.neighbours_note = ""
        # The landscape: a background layer and how the points are coloured.
        self.layer = "none"
        self.layer_view: LayerView | None = None
        self.layer_result: LayerResult | None = None
        self.layer_note = ""
        self._layer_cache: OrderedDict[tuple, LayerResult] = OrderedDict()
        self._layer_pending: tuple | None = None  # the cache key of the layer the worker computes
        self.layer_worker = LatestWorker(self)
        self.layer_worker.finished.connect(self._layer_finished)
        self.layer_worker.failed.connect(self._layer_failed)
        self.points = "class"
        self.point_values: np.ndarray | None = None
        # A second model under the same cursor.
        self.compare: Engine | None = None
        self.compare_preview: np.ndarray | None = None
        self.difference: np.ndarray | None = None
        self.atlases = "both"

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

    def _open(self, source: str, provider: str, failure: str = "Could not open the model") -> Engine | None:
        try:
            engine = Engine.open(source, provider, verify=self.verify_checksums)
            engine.atlas()  # a broken atlas.npz fails the switch now, not on the first paint
        except USER_ERRORS as exc:
            self.error.emit(f"{failure} {source}: {exc}")
            return None
        return engine

    def _install(self, engine: Engine) -> None:
        self.engine = engine
        if engine.source not in bundled_names():
            self._remember_bundle(engine.source)
        # Markers, grids, paths and layers of the old model live in another latent space: drop them.
        self.worker.invalidate()
        self.layer_worker.invalidate()
        self._layer_cache.clear()
        self.encodings, self.drawing, self.sample = [], None, None
        self.focus, self.posterior_draws = None, None
        self.endpoints = {"a": None, "b": None}
        self.interpolation, self.frame_index, self.grid = None, 0, None
        self._set_grid_busy(False)
        self.dims = (0, 1)
        self.view_extent = None
        self.layer_view, self.layer_result = None, None
        refusal = None if self.compare is None else self._compare_refusal(self.compare)
        if refusal is not None:
            self.error.emit(f"Stopped comparing with {self.compare.model.name}: {refusal}")
            self.compare = None
        if not self._set_points(self.points):
            self._set_points("class")
        self._decode_cursor(np.zeros(engine.model.latent_dim, np.float32))  # before anyone looks at the new model
        self._refresh_layer()
        for signal in (self.model_changed, self.markers_changed, self.drawing_changed, self.grid_changed,
                       self.interpolation_changed, self.uncertainty_changed, self.compare_changed,
                       self.points_changed, self.cursor_changed):
            signal.emit()

    def shutdown(self, msecs: int = -1) -> bool:
        """Drops queued grids and layers and waits for the running ones (before the state goes): a worker
        thread must not deliver a result to a state being destroyed."""
        self.worker.invalidate()
        self.layer_worker.invalidate()
        return self.worker.wait(msecs) and self.layer_worker.wait(msecs)

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
        self._update_neighbours()
        self.dims_changed.emit()
        self.uncertainty_changed.emit()
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
        previous = self.cursor
        self.cursor = np.array(z, dtype=np.float32).reshape(self.latent_dim)
        self.preview = self.engine.decode_one(self.cursor)
        self.decode_ms = self.engine.last_decode_ms
        if self.compare is not None:
            self.compare_preview = self.compare.decode_one(self.cursor)
            self.difference = explain.difference_image(self.preview, self.compare_preview)
        self._update_neighbours()
        if self.latent_dim > 2 and previous.shape == self.cursor.shape and self.layer != "none":
            # The layer is the slice through the cursor's other dims: it follows a slider, not a hover.
            others = [d for d in range(self.latent_dim) if d not in self.dims]
            if not np.array_equal(previous[others], self.cursor[others]):
                self._refresh_layer()

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
            return -SLIDER_PRIOR_RANGE, SLIDER_PRIOR_RANGE
        pad = SLIDER_MARGIN * (hi - lo)
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
        self._set_focus(encoding)
        self.markers_changed.emit()
        self.set_cursor(encoding.z)
        return True

    def select_encoding(self, index: int) -> None:
        self._set_focus(self.encodings[index])
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
        self._set_focus(self.drawing)
        self.drawing_changed.emit()
        self.markers_changed.emit()

    def clear_drawing(self) -> None:
        if self.drawing is not None and self.focus is self.drawing:
            self._set_focus(self.encodings[-1] if self.encodings else None)
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

    # -- uncertainty: the posterior of an encoded or drawn image ---------------------------------

    def _set_focus(self, encoding: Encoding | None) -> None:
        """The image whose posterior q(z|x) the map draws and the samples come from (the latest one picked)."""
        self.focus = encoding
        self._draw_posterior()
        self.uncertainty_changed.emit()

    def _draw_posterior(self) -> None:
        self.posterior_draws = None if self.focus is None else self.engine.posterior_samples(
            self.focus, POSTERIOR_SAMPLES, self.posterior_seed)

    def set_uncertainty(self, on: bool) -> None:
        """Shows or hides the posterior's ellipses on the map."""
        self.uncertainty = bool(on)
        self.uncertainty_changed.emit()

    def resample_posterior(self) -> None:
        """New draws of the focused image's posterior (the next seed)."""
        if self.focus is None:
            self.error.emit("Encode or draw an image first: its posterior is what is sampled.")
            return
        self.posterior_seed += 1
        self._draw_posterior()
        self.uncertainty_changed.emit()

    def ellipses(self) -> list[tuple[float, float, float, float]]:
        """(cx, cy, rx, ry) of the focused posterior's POSTERIOR_SIGMAS ellipses in the shown dims, when shown."""
        if not self.uncertainty or self.focus is None:
            return []
        return explain.posterior_ellipses(self.focus.z, self.focus.logvar, self.dims, POSTERIOR_SIGMAS)

    # -- real neighbours of the cursor -----------------------------------------------------------

    def set_neighbour_count(self, k: int) -> None:
        self.neighbour_k = clamp(k, NEIGHBOUR_COUNTS)
        self._update_neighbours()
        self.cursor_changed.emit()

    def _update_neighbours(self) -> None:
        if self.engine.atlas_extra() is None:
            self.neighbours, self.neighbours_note = None, self.engine.missing_extra("neighbour images")
            return
        self.neighbours = self.engine.neighbours(self.cursor, self.neighbour_k, self.dims)
        self.neighbours_note = ""

    # -- the landscape: a background layer, the points' colours ----------------------------------

    def set_layer(self, layer: str) -> None:
        if layer not in LAYERS:
            raise ValueError(f"layer must be one of {LAYERS}, got {layer!r}")
        self.layer = layer
        self._refresh_layer()

    def set_layer_view(self, extent, width_px: int, height_px: int) -> None:
        """The map's visible region and size in pixels (set by the map on every view change)."""
        self.layer_view = LayerView(tuple(tuple(float(v) for v in axis) for axis in extent), int(width_px),
                                    int(height_px))
        self._refresh_layer()

    def _layer_key(self) -> tuple:
        base = tuple(self.cursor.tolist()) if self.latent_dim > 2 else None
        return (self.layer, self.dims, self.layer_view, base)

    def _refresh_layer(self) -> None:
        """Shows the layer for the current view: from the cache, else computed on the worker."""
        self.layer_note = ""
        if self.engine is None or self.layer == "none" or self.layer_view is None:
            self.layer_worker.invalidate()
            self.layer_result = None
            self.layer_changed.emit()
            return
        if self.layer == "aggregate" and self.engine.atlas_extra() is None:
            self.layer_worker.invalidate()
            self.layer_result = None
            self.layer_note = self.engine.missing_extra("posterior variances for the aggregate posterior")
            self.layer_changed.emit()
            return
        key = self._layer_key()
        cached = self._layer_cache.get(key)
        if cached is not None:
            self._layer_cache.move_to_end(key)
            self.layer_worker.invalidate()
            self.layer_result = cached
            self.layer_changed.emit()
            return
        engine, layer, dims, grid = self.engine, self.layer, self.dims, self.layer_view.grid(self.layer)
        base = self.cursor.copy() if self.latent_dim > 2 else None
        self._layer_pending = key
        self.layer_worker.submit_call(lambda: LayerResult(layer, grid, dims, engine.layer(layer, grid, dims, base)),
                                      f"the {layer} layer")

    def _layer_finished(self, request_id: int, result: LayerResult) -> None:
        if not self.layer_worker.is_current(request_id):
            return
        self._layer_cache[self._layer_pending] = result
        while len(self._layer_cache) > LAYER_CACHE_SIZE:
            self._layer_cache.popitem(last=False)
        self.layer_result = result
        self.layer_changed.emit()

    def _layer_failed(self, request_id: int, message: str) -> None:
        if self.layer_worker.is_current(request_id):
            self.layer_result, self.layer_note = None, message
            self.layer_changed.emit()
            self.error.emit(message)

    def point_colourings(self) -> list[str]:
        """What the points can be coloured by for this model: class, error, and each known factor."""
        if self.engine is None or self.engine.atlas_extra() is None:
            return ["class"]
        return list(POINT_COLOURINGS) + [FACTOR_PREFIX + name for name in self.engine.factor_names()]

    def set_points(self, colouring: str) -> bool:
        """Colours the atlas points by class, "error" or "factor:NAME"; a choice the bundle cannot give
        is an error message and the colouring stays."""
        if not self._set_points(colouring):
            return False
        self.points_changed.emit()
        return True

    def _set_points(self, colouring: str) -> bool:
        try:
            values = self.engine.point_values(colouring)
        except USER_ERRORS as exc:
            self.error.emit(f"Cannot colour the points by {colouring}: {exc}")
            return False
        self.points, self.point_values = colouring, values
        return True

    # -- two models side by side -----------------------------------------------------------------

    def _compare_refusal(self, other: Engine) -> str | None:
        """Why `other` cannot be compared with the open model, or None."""
        mine, theirs = self.engine.model, other.model
        if theirs.latent_dim != mine.latent_dim:
            return (f"its latent size is {theirs.latent_dim} and {mine.name}'s is {mine.latent_dim}; "
                    f"expected the same latent size")
        if other.image_shape != self.engine.image_shape:
            return (f"its images are {shape_text(other.image_shape)} and {mine.name}'s are "
                    f"{shape_text(self.engine.image_shape)}; expected the same image shape")
        return None

    def load_compare(self, source: str | Path) -> bool:
        """Opens a second bundle under the same cursor; one of another latent size is refused in one line."""
        if self.engine is None:
            return False
        if str(source) not in bundled_names():
            source = str(Path(source).resolve())
        other = self._open(source, self.provider)
        if other is None:
            return False
        refusal = self._compare_refusal(other)
        if refusal is not None:
            self.error.emit(f"Cannot compare with {other.model.name}: {refusal}")
            return False
        if source not in bundled_names():
            self._remember_bundle(source)
        self.compare = other
        self.compare_changed.emit()
        self.set_cursor(self.cursor)
        return True

    def close_compare(self) -> None:
        self.compare, self.compare_preview, self.difference = None, None, None
        self.compare_changed.emit()
        self.cursor_changed.emit()

    def set_atlases(self, which: str) -> None:
        """Which atlases the map shows while comparing: "both", "this" or "other"."""
        if which not in ATLAS_CHOICES:
            raise ValueError(f"atlases must be one of {tuple(ATLAS_CHOICES)}, got {which!r}")
        self.atlases = which
        self.compare_changed.emit()

    def shown_atlases(self) -> list[Engine]:
        """The engines whose atlas points the map draws, bottom first: overlaid, the other model's lie under
        this one's, whose colouring (class, error, factor) stays readable."""
        if self.compare is None or self.atlases == "this":
            return [self.engine]
        return [self.compare] if self.atlases == "other" else [self.compare, self.engine]

    # -- sessions: runtime/view_state.py's format, the browser link's state as a file -----------------

    def view_state(self) -> view_format.ViewState:
        """What the explorer shows, as the one state format both explorers share."""
        vector = (lambda z: None if z is None else tuple(float(v) for v in z))
        return view_format.ViewState(
            model=self.engine.source if self.engine else None, compare=self.compare.source if self.compare else None,
            dims=self.dims, cursor=vector(self.cursor) if self.engine else None, view=self.view_extent,
            a=vector(self.endpoints["a"]), b=vector(self.endpoints["b"]), layer=self.layer, points=self.points,
            grid_n=self.grid_n, grid_source=self.grid_source, uncertainty=self.uncertainty,
            neighbours=self.neighbour_k)

    def save_session(self, path: str | Path) -> bool:
        path = Path(path)
        if self.engine is None:
            self.error.emit("Nothing to save yet: open a model first.")
            return False
        text = json.dumps(self.view_state().to_json(), indent=2) + "\n"
        try:
            atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        except OSError as exc:
            self.error.emit(f"Could not save the session {path}: {exc}")
            return False
        return True

    def load_session(self, path: str | Path) -> bool:
        """Restores a saved session. A file that is no session, or whose model does not open: one line, and
        nothing changes; values a session may not hold are repaired, and the repairs said in one line."""
        path = Path(path)
        try:
            value = untrusted.read_json(path, ValueError)
        except USER_ERRORS as exc:
            self.error.emit(f"Could not open the session {path.name}: {exc}")
            return False
        if not isinstance(value, dict) or not set(value) & set(view_format.FIELDS):
            self.error.emit(f"Could not open the session {path.name}: expected a JSON object of view-state keys "
                            f"({', '.join(view_format.FIELDS)})")
            return False
        first, _ = view_format.from_json(value, bundled_names())
        model = first.model or (self.engine.source if self.engine else None)
        if model is None:
            self.error.emit(f"Could not open the session {path.name}: it names no model and none is open")
            return False
        if model not in bundled_names():
            model = str((path.parent / model).resolve())  # a relative bundle path is the session file's neighbour
        if self.engine is None or model != self.engine.source:
            engine = self._open(model, self.provider, f"Could not open the session {path.name}: its model")
            if engine is None:
                return False
            self._install(engine)
        session, messages = view_format.from_json(value, bundled_names(), self.latent_dim)
        self._apply(session)
        if messages:
            self.error.emit(f"The session {path.name} was repaired: {'; '.join(messages)}")
        return True

    def _apply(self, session: view_format.ViewState) -> None:
        """Shows a state whose model is open (a second model that fails to open is said, and left out)."""
        if session.compare is None:
            if self.compare is not None:
                self.close_compare()
        elif self.compare is None or self.compare.source != session.compare:
            self.load_compare(session.compare)
        if max(session.dims) < self.latent_dim:
            self.set_dims(*session.dims)
        if session.view is not None:
            self.view_requested.emit(session.view)
        self.set_grid_options(n=session.grid_n, source=session.grid_source)
        self.neighbour_k = clamp(session.neighbours, NEIGHBOUR_COUNTS)
        self.set_uncertainty(session.uncertainty)
        if not self.set_points(session.points):
            self.set_points("class")
        self.set_layer(session.layer)
        for which in ("a", "b"):
            self.endpoints[which] = None
        self.interpolation = None
        for which in ("a", "b"):
            if getattr(session, which) is not None:
                self.set_endpoint(which, getattr(session, which))
        self.markers_changed.emit()
        self.interpolation_changed.emit()
        self.set_cursor(self.cursor if session.cursor is None else session.cursor)

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
