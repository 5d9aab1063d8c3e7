"""The panels beside the map: preview (with extra-dim sliders), grid, interpolation, encode, draw, and the
ones that explain the model: uncertainty, neighbours, landscape, compare.

Each panel shows a slice of the ExplorerState and forwards its buttons to state methods; file
dialogs and the clipboard belong to the window, so panels ask for them with signals.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QIcon, QPixmap
from PyQt6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QGridLayout, QGroupBox, QHBoxLayout, QLabel,
                             QListWidget, QListWidgetItem, QPushButton, QSlider, QSpinBox, QVBoxLayout, QWidget)

from latent_atlas.runtime.explorer_rules import (DIFFERENCE_RANGE, GRID_SIZES, GRID_SOURCE_NAMES,
                                                 INTERPOLATION_METHODS, INTERPOLATION_STEPS, LAYER_COLOUR_MAPS,
                                                 LAYER_NAMES, NEIGHBOUR_COUNTS, POSTERIOR_SIGMAS, map_colours)

from .drawpad import DrawPad
from .engine import bundled_names
from .imageview import ImageView, TiledView, to_qimage
from .state import ATLAS_CHOICES, ExplorerState

SLIDER_TICKS = 1000
FRAME_MS = 90


def format_z(z: np.ndarray, limit: int = 4) -> str:
    values = ", ".join(f"{v:+.2f}" for v in z[:limit])
    return f"({values}{', …' if len(z) > limit else ''})"


def steady_label(widest: str, name: str = "") -> QLabel:
    """A label of fixed size (fit for `widest`) for text that changes on every mouse move: a label whose
    size can change makes Qt re-run the layouts of its parents, which costs milliseconds per frame."""
    label = QLabel()
    label.setObjectName(name)
    label.ensurePolished()  # the stylesheet's font decides the size
    metrics = label.fontMetrics()
    label.setFixedSize(metrics.horizontalAdvance(widest) + 12, metrics.height() + 6)
    return label


def _caption(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("caption")
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    return label


def _column(*widgets, stretch_first: bool = False) -> QVBoxLayout:
    layout = QVBoxLayout()
    for i, widget in enumerate(widgets):
        layout.addWidget(widget, 1 if stretch_first and i == 0 else 0)
    return layout


def _row(*items) -> QHBoxLayout:
    """Widgets side by side; an int is a stretch."""
    layout = QHBoxLayout()
    for item in items:
        if isinstance(item, int):
            layout.addStretch(item)
        else:
            layout.addWidget(item)
    return layout


def _button(text: str, tooltip: str, slot) -> QPushButton:
    button = QPushButton(text)
    button.setToolTip(tooltip)
    button.clicked.connect(slot)
    return button


def _combo(items: dict[str, str], current: str, slot) -> QComboBox:
    """A combo box of {value: shown text} that calls slot(value)."""
    combo = QComboBox()
    for value, text in items.items():
        combo.addItem(text, value)
    combo.setCurrentIndex(max(0, combo.findData(current)))
    combo.currentIndexChanged.connect(lambda _: slot(combo.currentData()))
    return combo


def _spin(bounds: tuple[int, int], value: int, slot, suffix: str = "") -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(*bounds)
    spin.setValue(value)
    spin.setSuffix(suffix)
    spin.valueChanged.connect(slot)
    return spin


class PreviewPanel(QWidget):
    """The cursor's decode, large and crisp, its coordinates, and the controls of the latent dims."""

    def __init__(self, state: ExplorerState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.view = ImageView("Hover over the map to decode", minimum=140)
        self.coordinates = steady_label("z[99] = -999.999   z[99] = -999.999", "coordinates")
        self.coordinates.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.coordinates.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.x_dim, self.y_dim = QComboBox(), QComboBox()
        for combo in (self.x_dim, self.y_dim):
            combo.currentIndexChanged.connect(self._dims_picked)
        self.sliders: dict[int, tuple[QSlider, QLabel]] = {}  # dim -> its slider and value label
        self.slider_form = QFormLayout()
        self.dims_box = QGroupBox("Latent dims")
        box_layout = QVBoxLayout(self.dims_box)
        box_layout.addLayout(_row(QLabel("Map x"), self.x_dim, QLabel("y"), self.y_dim, 1))
        box_layout.addLayout(self.slider_form)
        layout = _column(self.view, self.coordinates, self.dims_box, stretch_first=True)
        layout.setAlignment(self.coordinates, Qt.AlignmentFlag.AlignHCenter)
        self.setLayout(layout)
        state.model_changed.connect(self._rebuild_dims)
        state.dims_changed.connect(self._rebuild_dims)
        state.cursor_changed.connect(self._show_cursor)
        self._rebuild_dims()

    def _show_cursor(self) -> None:
        state = self.state
        self.view.set_image(state.preview)
        if state.engine is None:
            return
        dx, dy = state.dims
        shown = f"z[{dx}] = {state.cursor[dx]:+.3f}   z[{dy}] = {state.cursor[dy]:+.3f}"
        self.coordinates.setText(shown if state.latent_dim > 2 else f"z = ({state.cursor[0]:+.3f}, {state.cursor[1]:+.3f})")
        for dim, (slider, label) in self.sliders.items():
            slider.blockSignals(True)  # following the cursor must not feed back into it
            slider.setValue(self._to_ticks(dim, state.cursor[dim]))
            slider.blockSignals(False)
            label.setText(f"z[{dim}] = {state.cursor[dim]:+.2f}")

    def _rebuild_dims(self) -> None:
        state = self.state
        self.dims_box.setVisible(state.latent_dim > 2)
        for combo, value in ((self.x_dim, state.dims[0]), (self.y_dim, state.dims[1])):
            combo.blockSignals(True)
            combo.clear()
            combo.addItems([f"z[{d}]" for d in range(state.latent_dim)])
            combo.setCurrentIndex(value)
            combo.blockSignals(False)
        while self.slider_form.rowCount():
            self.slider_form.removeRow(0)
        self.sliders = {}
        for dim in range(state.latent_dim):
            if dim in state.dims:
                continue
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setRange(0, SLIDER_TICKS)
            slider.valueChanged.connect(lambda ticks, d=dim: state.set_dim_value(d, self._from_ticks(d, ticks)))
            label = steady_label("z[99] = -99.99")
            self.sliders[dim] = (slider, label)
            self.slider_form.addRow(label, slider)
        self._show_cursor()

    def _dims_picked(self) -> None:
        x, y = self.x_dim.currentIndex(), self.y_dim.currentIndex()
        if x != y and x >= 0 and y >= 0:
            self.state.set_dims(x, y)

    def _to_ticks(self, dim: int, value: float) -> int:
        lo, hi = self.state.dim_range(dim)
        return int(round(np.clip((value - lo) / (hi - lo), 0, 1) * SLIDER_TICKS))

    def _from_ticks(self, dim: int, ticks: int) -> float:
        lo, hi = self.state.dim_range(dim)
        return lo + (hi - lo) * ticks / SLIDER_TICKS


class GridPanel(QWidget):
    """An n x n grid of decodes over the visible region or the percentile extent; a click moves the cursor."""

    save_requested = pyqtSignal(str)

    def __init__(self, state: ExplorerState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.size = _spin(GRID_SIZES, state.grid_n, lambda n: state.set_grid_options(n=n), suffix=" × n")
        self.source = _combo(GRID_SOURCE_NAMES, state.grid_source,
                             lambda s: state.set_grid_options(source=s))
        self.compute = _button("Decode grid", "Decode an n × n grid (G)", state.request_grid)
        self.busy = QLabel("")
        self.busy.setObjectName("caption")
        self.view = TiledView("Press G to decode an n × n grid over the map's visible region.\n"
                              "Click a tile to move the cursor there.", minimum=150)
        self.view.tile_clicked.connect(self._tile_clicked)
        save = _button("Save PNG…", "Save the grid as a PNG", lambda: self.save_requested.emit("grid"))
        layout = _column(self.view, stretch_first=True)
        layout.insertLayout(0, _row(QLabel("Size"), self.size, QLabel("over"), self.source, 1, self.compute))
        layout.addLayout(_row(self.busy, 1, save))
        self.setLayout(layout)
        state.grid_changed.connect(self._show_grid)
        state.grid_busy_changed.connect(self._show_busy)

    def sync_options(self) -> None:
        """Shows the state's options (after settings were restored)."""
        self.size.setValue(self.state.grid_n)
        self.source.setCurrentIndex(self.source.findData(self.state.grid_source))

    def _show_grid(self) -> None:
        grid = self.state.grid
        self.view.set_tiles(None if grid is None else grid.images, grid.ncols if grid else 1)

    def _show_busy(self, busy: bool) -> None:
        self.busy.setText(f"Decoding {self.state.grid_n} × {self.state.grid_n} tiles…" if busy else "")

    def _tile_clicked(self, index: int) -> None:
        self.view.highlight(index)
        self.state.select_tile(index)


class InterpolationPanel(QWidget):
    """Two endpoints, the strip of frames between them, and an animation of the path."""

    save_requested = pyqtSignal(str)

    def __init__(self, state: ExplorerState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.endpoint_labels = {k: QLabel("–") for k in ("a", "b")}
        set_a = _button("A ← cursor", "Set endpoint A to the cursor (A, or Shift+click on the map)",
                        lambda: state.set_endpoint("a"))
        set_b = _button("B ← cursor", "Set endpoint B to the cursor (B, or Ctrl+click on the map)",
                        lambda: state.set_endpoint("b"))
        self.method = _combo({m: m for m in INTERPOLATION_METHODS}, state.interp_method,
                             lambda m: state.set_interpolation(method=m))
        self.steps = _spin(INTERPOLATION_STEPS, state.interp_steps, lambda n: state.set_interpolation(steps=n),
                           suffix=" frames")
        run = _button("Interpolate", "Decode the path from A to B (I)", state.interpolate)
        self.strip = TiledView("Set A and B, then Interpolate (I).", minimum=48)
        self.strip.setMaximumHeight(120)
        self.strip.tile_clicked.connect(state.set_frame)
        self.animation = ImageView("", minimum=84)
        self.play_button = _button("▶ Play", "Play or pause the animation (Space)", self.toggle_play)
        self.frame_label = _caption("")
        self.timer = QTimer(self)
        self.timer.setInterval(FRAME_MS)
        self.timer.timeout.connect(state.advance_frame)
        save_png = _button("Save strip…", "Save the frames as one PNG", lambda: self.save_requested.emit("interpolation"))
        save_gif = _button("Save GIF…", "Save the animation as a GIF", lambda: self.save_requested.emit("animation"))

        ends = QGridLayout()
        for row, (button, key) in enumerate(((set_a, "a"), (set_b, "b"))):
            ends.addWidget(button, row, 0)
            ends.addWidget(self.endpoint_labels[key], row, 1)
        ends.setColumnStretch(1, 1)
        layout = QVBoxLayout()
        layout.addLayout(ends)
        layout.addLayout(_row(QLabel("Method"), self.method, QLabel("Steps"), self.steps, 1, run))
        layout.addWidget(self.strip)
        layout.addWidget(self.animation, 1)
        layout.addLayout(_row(self.play_button, self.frame_label, 1, save_png, save_gif))
        self.setLayout(layout)
        state.markers_changed.connect(self._show_endpoints)
        state.interpolation_changed.connect(self._show_strip)
        state.frame_changed.connect(self._show_frame)

    def sync_options(self) -> None:
        self.method.setCurrentIndex(self.method.findData(self.state.interp_method))
        self.steps.setValue(self.state.interp_steps)

    def toggle_play(self) -> None:
        if self.timer.isActive():
            self.timer.stop()
        elif self.state.interpolation is not None or self.state.interpolate():
            self.timer.start()
        self.play_button.setText("❚❚ Pause" if self.timer.isActive() else "▶ Play")

    def _show_endpoints(self) -> None:
        for key, label in self.endpoint_labels.items():
            z = self.state.endpoints[key]
            label.setText("–" if z is None else format_z(z))

    def _show_strip(self) -> None:
        interpolation = self.state.interpolation
        if interpolation is None:
            self.timer.stop()
            self.play_button.setText("▶ Play")
            self.strip.set_tiles(None, 1)
            self.animation.set_image(None)
            self.frame_label.setText("")
            return
        self.strip.set_tiles(interpolation.frames, len(interpolation.frames), padding=2)

    def _show_frame(self) -> None:
        interpolation = self.state.interpolation
        if interpolation is None:
            return
        i = self.state.frame_index
        self.animation.set_image(interpolation.frames[i])
        self.strip.highlight(i)
        self.frame_label.setText(f"frame {i + 1} / {len(interpolation.frames)} · {interpolation.method}")


class EncodePanel(QWidget):
    """Your own images: open, paste or drop one; see what the encoder saw and what comes back."""

    open_requested = pyqtSignal()
    paste_requested = pyqtSignal()

    def __init__(self, state: ExplorerState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.input = ImageView("Input", minimum=84)
        self.reconstruction = ImageView("Reconstruction", minimum=84)
        self.list = QListWidget()
        self.list.setIconSize(QPixmap(28, 28).size() * 1.5)
        self.list.setMinimumHeight(64)
        self.list.setMaximumHeight(120)
        self.list.currentRowChanged.connect(self._picked)
        buttons = _row(_button("Open image…", "Encode an image file (Ctrl+O)", self.open_requested.emit),
                       _button("Paste", "Encode the image on the clipboard (Ctrl+V)", self.paste_requested.emit), 1)
        self.hint = hint = _caption("")
        hint.setWordWrap(True)
        pictures = QGridLayout()
        pictures.addWidget(self.input, 0, 0)
        pictures.addWidget(self.reconstruction, 0, 1)
        pictures.addWidget(_caption("input, as the encoder sees it"), 1, 0)
        pictures.addWidget(_caption("reconstruction"), 1, 1)
        layout = QVBoxLayout()
        layout.addLayout(buttons)
        layout.addWidget(hint)
        layout.addLayout(pictures, 1)
        self.as_a = _button("A ← selected", "Interpolate from the selected image", lambda: self._endpoint("a"))
        self.as_b = _button("B ← selected", "Interpolate to the selected image", lambda: self._endpoint("b"))
        layout.addLayout(_row(QLabel("Encoded (click: cursor there)"), 1, self.as_a, self.as_b))
        layout.addWidget(self.list)
        self.setLayout(layout)
        state.markers_changed.connect(self._show_encodings)
        state.model_changed.connect(self._show_model)
        self._show_model()

    def _show_model(self) -> None:
        engine = self.state.engine
        if engine is None:
            self.hint.setText("…or drop one on the window.")
            return
        channels, height, width = engine.image_shape
        self.hint.setText(f"…or drop one on the window. Preprocessed like the model's training images: "
                          f"{'grey' if channels == 1 else 'colour'}, {height} × {width}.")

    def _endpoint(self, which: str) -> None:
        row = self.list.currentRow()
        if row >= 0:
            self.state.set_endpoint(which, self.state.encodings[row].z)

    def _show_encodings(self) -> None:
        encodings = self.state.encodings
        if self.list.count() == len(encodings) and all(
                self.list.item(i).data(Qt.ItemDataRole.UserRole) is e for i, e in enumerate(encodings)):
            return  # only other markers changed
        self.list.blockSignals(True)
        self.list.clear()
        for encoding in encodings:
            item = QListWidgetItem(QIcon(QPixmap.fromImage(to_qimage(encoding.image))),
                                   f"{encoding.name}   {format_z(encoding.z)}")
            item.setData(Qt.ItemDataRole.UserRole, encoding)
            self.list.addItem(item)
        self.list.setCurrentRow(len(encodings) - 1)
        self.list.blockSignals(False)
        self._show(len(encodings) - 1)

    def _picked(self, row: int) -> None:
        if row >= 0:
            self._show(row)
            self.state.select_encoding(row)

    def _show(self, row: int) -> None:
        encoding = self.state.encodings[row] if row >= 0 else None
        self.input.set_image(None if encoding is None else encoding.image)
        self.reconstruction.set_image(None if encoding is None else encoding.reconstruction)


class DrawPanel(QWidget):
    """Draw a digit; its encoding follows the pen, its point moves on the map. Grey models only: a colour
    model's place for the pad says why it is off."""

    def __init__(self, state: ExplorerState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.pad = DrawPad()
        self.reconstruction = ImageView("Reconstruction", minimum=120)
        self.z_label = _caption("")
        self.clear_button = _button("Clear", "Clear the pad", self.pad.clear)
        to_cursor = _button("Cursor ← drawing", "Move the cursor to the drawing's point", self._cursor_to_drawing)
        right = _column(self.reconstruction, _caption("reconstruction"), self.z_label, stretch_first=True)
        right.addLayout(_row(self.clear_button, to_cursor))
        self.colour_note = _caption("")
        self.colour_note.setWordWrap(True)
        layout = QHBoxLayout()
        layout.addWidget(self.pad, 3)
        layout.addWidget(self.colour_note, 3)
        layout.addLayout(right, 2)
        self.setLayout(layout)
        self.pad.changed.connect(lambda: state.update_drawing(self.pad.pixels()))
        state.drawing_changed.connect(self._show_drawing)
        state.model_changed.connect(self._show_model)
        self._show_model()

    def _show_model(self) -> None:
        """The pad on grey models; on a colour one, a note in its place. A new model re-encodes the pad."""
        engine = self.state.engine
        grey = engine is None or engine.grey
        self.pad.setVisible(grey)
        self.colour_note.setVisible(not grey)
        self.clear_button.setEnabled(grey)
        if not grey:
            channels, height, width = engine.image_shape
            self.colour_note.setText(f"Drawing is for grey models. {engine.model.name} takes colour images "
                                     f"({height} × {width} × {channels}): encode a picture in the Encode tab instead.")
        elif not self.pad.empty:
            self.state.update_drawing(self.pad.pixels())

    def _show_drawing(self) -> None:
        drawing = self.state.drawing
        self.reconstruction.set_image(None if drawing is None else drawing.reconstruction)
        self.z_label.setText("" if drawing is None else f"z = {format_z(drawing.z)}")

    def _cursor_to_drawing(self) -> None:
        if self.state.drawing is not None:
            self.state.set_cursor(self.state.drawing.z)


class UncertaintyPanel(QWidget):
    """How sure the encoder is about the latest encoded or drawn image: its posterior's spread, the mean's
    decode, and a handful of decoded posterior samples; the map draws the posterior's ellipses."""

    def __init__(self, state: ExplorerState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.show_ellipses = QCheckBox(f"Ellipses on the map ({', '.join(f'{s}σ' for s in POSTERIOR_SIGMAS)})")
        self.show_ellipses.setChecked(state.uncertainty)
        self.show_ellipses.toggled.connect(state.set_uncertainty)
        self.title = _caption("")
        self.title.setWordWrap(True)
        self.mean = ImageView("Encode or draw an image: its posterior q(z|x) shows here.", minimum=96)
        self.samples = TiledView("", minimum=48)
        self.samples.tile_clicked.connect(self._sample_clicked)
        self.resample = _button("New samples", "Decode new draws of the posterior", state.resample_posterior)
        layout = QVBoxLayout()
        layout.addWidget(self.show_ellipses)
        layout.addWidget(self.title)
        layout.addWidget(self.mean, 2)
        caption = _caption("decode of the mean · below: decodes of posterior samples (click: cursor there)")
        caption.setWordWrap(True)
        layout.addWidget(caption)
        layout.addWidget(self.samples, 1)
        layout.addLayout(_row(1, self.resample))
        self.setLayout(layout)
        state.uncertainty_changed.connect(self._show)
        self._show()

    def _show(self) -> None:
        state, focus = self.state, self.state.focus
        self.show_ellipses.blockSignals(True)
        self.show_ellipses.setChecked(state.uncertainty)
        self.show_ellipses.blockSignals(False)
        self.resample.setEnabled(focus is not None)
        self.mean.set_image(None if focus is None else focus.reconstruction)
        if focus is None or state.posterior_draws is None:
            self.title.setText("")
            self.samples.set_tiles(None, 1)
            return
        std = np.exp(0.5 * focus.logvar)
        self.title.setText(f"{focus.name}: mean {format_z(focus.z)}, σ {format_z(std)}")
        _, images = state.posterior_draws
        self.samples.set_tiles(images, len(images), padding=2)

    def _sample_clicked(self, index: int) -> None:
        if self.state.posterior_draws is not None:
            self.state.set_cursor(self.state.posterior_draws[0][index])


class NeighboursPanel(QWidget):
    """The atlas images nearest the cursor in the whole latent space, nearest first, with their labels."""

    def __init__(self, state: ExplorerState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.count = _spin(NEIGHBOUR_COUNTS, state.neighbour_k, state.set_neighbour_count, suffix=" nearest")
        self.view = TiledView("", minimum=96)
        hint = _caption("Label and distance in the latent space on each; click one: cursor there.")
        hint.setWordWrap(True)
        layout = QVBoxLayout()
        layout.addLayout(_row(QLabel("Test images nearest the cursor"), 1, self.count))
        layout.addWidget(self.view, 1)
        layout.addWidget(hint)
        self.setLayout(layout)
        self.view.tile_clicked.connect(self._picked)
        state.cursor_changed.connect(self._show)
        state.model_changed.connect(self._show)

    def _show(self) -> None:
        if not self.isVisible():
            return  # hidden behind another tab: nothing to paint; showEvent catches up
        neighbours = self.state.neighbours
        if neighbours is None or not len(neighbours.indices):
            self.view.placeholder = self.state.neighbours_note or "The atlas holds no images."
            self.view.set_tiles(None, 1)
            return
        columns = min(len(neighbours.indices), 4)
        captions = [f"{label or '#' + str(i)} · {d:.2f}" for label, i, d
                    in zip(neighbours.labels, neighbours.indices, neighbours.distances)]
        self.view.set_tiles(neighbours.thumbnails, columns, padding=1, captions=captions)

    def showEvent(self, event) -> None:
        self._show()

    def _picked(self, index: int) -> None:
        neighbours = self.state.neighbours
        if neighbours is not None:
            self.state.set_cursor(self.state.engine.atlas()[0][neighbours.indices[index]])


class LandscapePanel(QWidget):
    """The map's background layer and what its points are coloured by."""

    def __init__(self, state: ExplorerState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.layer = _combo(LAYER_NAMES, state.layer, state.set_layer)
        self.points = QComboBox()
        self.points.currentIndexChanged.connect(self._points_picked)
        self.note = _caption("")
        self.note.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Background", self.layer)
        form.addRow("Points by", self.points)
        hint = _caption("Layers cover the visible region at screen resolution, computed off the UI thread and "
                        "kept for views you return to. The legend on the map gives the scale.")
        hint.setWordWrap(True)
        layout = QVBoxLayout()
        layout.addLayout(form)
        layout.addWidget(self.note)
        layout.addWidget(hint)
        layout.addStretch(1)
        self.setLayout(layout)
        state.model_changed.connect(self._show_choices)
        state.points_changed.connect(self._show_choices)
        state.layer_changed.connect(self._show_note)
        self._show_choices()

    def _show_choices(self) -> None:
        self.points.blockSignals(True)
        self.points.clear()
        for colouring in self.state.point_colourings():
            self.points.addItem({"class": "class", "error": "reconstruction error"}.get(
                colouring, colouring.replace(":", " ")), colouring)
        self.points.setCurrentIndex(max(0, self.points.findData(self.state.points)))
        self.points.blockSignals(False)
        self.layer.blockSignals(True)
        self.layer.setCurrentIndex(self.layer.findData(self.state.layer))
        self.layer.blockSignals(False)
        self._show_note()

    def _show_note(self) -> None:
        state = self.state
        missing = "" if state.engine is None or state.engine.atlas_extra() is not None else \
            state.engine.missing_extra("errors or factors to colour the points by")
        self.note.setText("\n".join(text for text in (state.layer_note, missing) if text))

    def _points_picked(self) -> None:
        colouring = self.points.currentData()
        if colouring is not None and not self.state.set_points(colouring):
            self._show_choices()


class ComparePanel(QWidget):
    """A second model under the same cursor: both decodes, their difference, both models' headline figures."""

    open_requested = pyqtSignal()

    def __init__(self, state: ExplorerState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.choice = QComboBox()
        self.choice.setMinimumContentsLength(14)
        self.choice.activated.connect(lambda _: self._compare_with(self.choice.currentData()))
        self.close_button = _button("Stop", "Stop comparing", state.close_compare)
        self.atlases = _combo(ATLAS_CHOICES, state.atlases, state.set_atlases)
        self.views = {key: ImageView("", minimum=72) for key in ("this", "other", "difference")}
        self.captions = {key: _caption(key) for key in self.views}
        self.metrics = QLabel("")
        self.metrics.setTextFormat(Qt.TextFormat.RichText)
        pictures = QGridLayout()
        for column, key in enumerate(self.views):
            pictures.addWidget(self.views[key], 0, column)
            pictures.addWidget(self.captions[key], 1, column)
        layout = QVBoxLayout()
        layout.addLayout(_row(QLabel("Compare with"), self.choice, 1, self.close_button))
        layout.addLayout(_row(QLabel("Map shows"), self.atlases, 1,
                              _button("Open bundle…", "Compare with a bundle directory", self.open_requested.emit)))
        layout.addLayout(pictures, 1)
        layout.addWidget(self.metrics)
        self.setLayout(layout)
        state.model_changed.connect(self._show_model)
        state.compare_changed.connect(self._show_model)
        state.cursor_changed.connect(self._show_decodes)
        self._show_model()

    def _compare_with(self, source: str | None) -> None:
        if source and not self.state.load_compare(source):
            self._show_model()

    def _show_model(self) -> None:
        state = self.state
        self.choice.blockSignals(True)
        self.choice.clear()
        self.choice.addItem("—", None)
        for source in state.model_choices():
            self.choice.addItem(source if source in bundled_names() else Path(source).name, source)
        if state.compare is not None:
            self.choice.setCurrentIndex(max(0, self.choice.findData(state.compare.source)))
        self.choice.blockSignals(False)
        comparing = state.compare is not None
        self.close_button.setEnabled(comparing)
        self.atlases.setEnabled(comparing)
        self.atlases.setCurrentIndex(self.atlases.findData(state.atlases))
        engines = [e for e in (state.engine, state.compare) if e is not None]
        self.captions["this"].setText(state.engine.model.name if state.engine else "this model")
        self.captions["other"].setText(state.compare.model.name if comparing else "second model")
        self.captions["difference"].setText("this − other (blue < 0 < red)")
        self.views["other"].placeholder = "Choose a second model of the same latent size."
        rows = list(dict.fromkeys(key for engine in engines for key in engine.headline()))
        header = "".join(f"<th>{e.model.name}</th>" for e in engines)
        body = "".join(f"<tr><td>{key}</td>" + "".join(f"<td>{e.headline().get(key, '–')}</td>" for e in engines)
                       + "</tr>" for key in rows)
        self.metrics.setText(f"<table cellspacing=6><tr><th></th>{header}</tr>{body}</table>" if engines else "")
        self._show_decodes()

    def showEvent(self, event) -> None:
        self._show_decodes()

    def _show_decodes(self) -> None:
        if not self.isVisible():
            return  # hidden behind another tab: a hover frame need not convert three pictures; showEvent catches up
        state = self.state
        self.views["this"].set_image(state.preview)
        self.views["other"].set_image(state.compare_preview if state.compare is not None else None)
        difference = state.difference if state.compare is not None else None
        if difference is not None and difference.ndim == 3:
            difference = difference.mean(axis=-1)  # colour: one diverging map shows the mean over the channels
        self.views["difference"].set_image(None if difference is None else map_colours(
            difference, *DIFFERENCE_RANGE, LAYER_COLOUR_MAPS["difference"]).astype(np.float32) / 255.0)
