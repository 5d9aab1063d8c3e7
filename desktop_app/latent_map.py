"""The latent map: the test set's embeddings as a scatter coloured by label (or by reconstruction error,
or a known factor), over an optional background layer, pan and zoom, a cursor that decodes as the mouse
hovers or drags, and the markers (encoded images, drawing, samples, A/B, the interpolation path, the
grid's extent, the focused image's posterior ellipses); a second model's atlas beside the first when
comparing. It exports itself as PNG or SVG.

Even rasterised with numpy (scatter.py), ten thousand points cost milliseconds, too much for every
mouse move; so the layer, scatter, axes and legend are rendered once per view (size, centre, zoom,
dims, layer, colouring) into a cached pixmap, and a hover repaint only blits the strips under the
cursor and draws the few overlay items.
"""

from __future__ import annotations

import math

import numpy as np
from pathlib import Path

from PyQt6.QtCore import QPointF, QRect, QRectF, QSize, Qt
from PyQt6.QtGui import (QBrush, QColor, QFont, QFontMetrics, QImage, QPainter, QPainterPath, QPen, QPixmap,
                         QPolygonF, QRegion)
from PyQt6.QtSvg import QSvgGenerator
from PyQt6.QtWidgets import QSizePolicy, QWidget

from latent_atlas.runtime.explorer_rules import (HOME_MARGIN, LAYER_COLOUR_MAPS, LAYER_NAMES, ZOOM_STEP, error_range,
                                                 layer_range, legend_rows, legend_ticks, map_colours)
from latent_atlas.runtime.files import atomic_write
from latent_atlas.runtime.images import write_picture

from . import theme
from .engine import Engine
from .imageview import qimage_to_pil
from .scatter import splat
from .state import ExplorerState

POINT_RADIUS = 1.6     # pixels
CURSOR_RADIUS = 9
CLASS_RGB = np.array([c.getRgb()[:3] for c in theme.CLASS_COLOURS], np.uint8)
UNLABELLED_RGB = np.array(theme.UNLABELLED.getRgb()[:3], np.uint8)
OTHER_ATLAS_RGB = np.array(theme.OTHER_ATLAS.getRgb()[:3], np.uint8)
LAYER_OPACITY = 0.7
COLOUR_BAR = (150, 10)   # width, height of a legend's colour scale in pixels
EXPORT_SUFFIXES = (".png", ".svg")


class LatentMap(QWidget):
    def __init__(self, state: ExplorerState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.follow_hover = True    # hovering moves the cursor; off: only clicks and drags do
        self.center = (0.0, 0.0)    # latent coordinates at the widget's centre
        self.scale = 100.0          # pixels per latent unit, the same on both axes
        self._cache: QPixmap | None = None
        self._cache_key = None
        self._point_order: np.ndarray | None = None
        self._auto_fit = True       # until the user pans or zooms, a resize re-fits the data
        self._dragging = False
        self._pan_from: QPointF | None = None
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(300, 300)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self._cursor_at: QPointF | None = None  # where the cursor was last painted
        state.model_changed.connect(self.reset_view)
        state.dims_changed.connect(self.reset_view)
        state.cursor_changed.connect(self._cursor_moved)
        state.view_requested.connect(self.show_extent)
        for signal in (state.markers_changed, state.grid_changed, state.interpolation_changed, state.frame_changed,
                       state.uncertainty_changed):
            signal.connect(self.update)
        for signal in (state.layer_changed, state.points_changed, state.compare_changed):
            signal.connect(self.update)  # the cache key sees what changed

    # -- view transform ----------------------------------------------------------------------------

    def to_screen(self, x: float, y: float) -> QPointF:
        return QPointF(self.width() / 2 + (x - self.center[0]) * self.scale,
                       self.height() / 2 - (y - self.center[1]) * self.scale)

    def to_latent(self, point: QPointF) -> tuple[float, float]:
        return (self.center[0] + (point.x() - self.width() / 2) / self.scale,
                self.center[1] - (point.y() - self.height() / 2) / self.scale)

    def visible_extent(self):
        (x0, y1), (x1, y0) = self.to_latent(QPointF(0, 0)), self.to_latent(QPointF(self.width(), self.height()))
        return (x0, x1), (y0, y1)

    def reset_view(self) -> None:
        """Fits the test set's p01..p99 box (plus a margin) into the widget."""
        if self.state.engine is None:
            return
        (x0, x1), (y0, y1) = self.state.home_extent()
        w, h = max(x1 - x0, 1e-6) * (1 + 2 * HOME_MARGIN), max(y1 - y0, 1e-6) * (1 + 2 * HOME_MARGIN)
        self.center = ((x0 + x1) / 2, (y0 + y1) / 2)
        self.scale = min(self.width() / w, self.height() / h)
        self._auto_fit = True
        self._view_changed()

    def show_extent(self, extent) -> None:
        """Shows a latent region ((xlo, xhi), (ylo, yhi)) whole, centred (a restored session's view)."""
        (x0, x1), (y0, y1) = extent
        self.center = ((x0 + x1) / 2, (y0 + y1) / 2)
        self.scale = min(self.width() / max(x1 - x0, 1e-9), self.height() / max(y1 - y0, 1e-9))
        self._auto_fit = False
        self._view_changed()

    def zoom(self, factor: float, anchor: QPointF | None = None) -> None:
        """Zooms by `factor` keeping the latent point under `anchor` (default: the centre) in place."""
        anchor = anchor if anchor is not None else QPointF(self.width() / 2, self.height() / 2)
        ax, ay = self.to_latent(anchor)
        self.scale *= factor
        self._auto_fit = False
        self.center = (ax - (anchor.x() - self.width() / 2) / self.scale,
                       ay + (anchor.y() - self.height() / 2) / self.scale)
        self._view_changed()

    def _view_changed(self) -> None:
        self.state.set_view_extent(self.visible_extent())
        self.state.set_layer_view(self.visible_extent(), self.width(), self.height())
        self.update()

    def resizeEvent(self, event) -> None:
        if self._auto_fit:
            self.reset_view()
        else:
            self._view_changed()

    # -- input: hover/drag moves the cursor, Shift/Ctrl+click sets A/B, right/middle drag pans --------

    def mousePressEvent(self, event) -> None:
        pos, modifiers = event.position(), event.modifiers()
        if event.button() in (Qt.MouseButton.RightButton, Qt.MouseButton.MiddleButton):
            self._pan_from = pos
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        elif event.button() == Qt.MouseButton.LeftButton and self.state.engine is not None:
            x, y = self.to_latent(pos)
            if modifiers & (Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.ControlModifier):
                z = self.state.cursor.copy()
                z[self.state.dims[0]], z[self.state.dims[1]] = x, y
                self.state.set_endpoint("a" if modifiers & Qt.KeyboardModifier.ShiftModifier else "b", z)
            else:
                self._dragging = True
                self.state.move_cursor(x, y)

    def mouseMoveEvent(self, event) -> None:
        pos = event.position()
        if self._pan_from is not None:
            delta = pos - self._pan_from
            self._pan_from = pos
            self.center = (self.center[0] - delta.x() / self.scale, self.center[1] + delta.y() / self.scale)
            self._auto_fit = False
            self._view_changed()
        elif self.state.engine is not None and (self._dragging or self.follow_hover):
            self.state.move_cursor(*self.to_latent(pos))

    def mouseReleaseEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._dragging = False
        elif self._pan_from is not None:
            self._pan_from = None
            self.setCursor(Qt.CursorShape.CrossCursor)

    def wheelEvent(self, event) -> None:
        notches = event.angleDelta().y() / 120
        if notches:
            self.zoom(ZOOM_STEP ** notches, event.position())

    # -- painting ----------------------------------------------------------------------------------

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        if self.state.engine is None:
            painter.fillRect(self.rect(), theme.MAP_BACKGROUND)
            painter.setPen(theme.MUTED)
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No model loaded: Model ▸ Open bundle… (Ctrl+Shift+O)")
            return
        painter.drawPixmap(0, 0, self._scatter())
        self._paint_overlays(painter)

    def _paint_overlays(self, painter: QPainter) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        self._paint_grid_box(painter)
        self._paint_interpolation(painter)
        self._paint_ellipses(painter)
        self._paint_markers(painter)
        self._paint_cursor(painter)

    # -- export ------------------------------------------------------------------------------------

    def export(self, path: str | Path) -> Path:
        """Writes the map as it is shown, layer, points, legend and markers: a PNG, or an SVG whose points,
        axes and markers are vectors (the layer stays a picture). Atomic; ValueError for another suffix."""
        path = Path(path)
        if path.suffix.lower() not in EXPORT_SUFFIXES:
            raise ValueError(f"{path.name}: expected a file name ending in {' or '.join(EXPORT_SUFFIXES)}")
        if self.state.engine is None:
            raise ValueError("no model is open, so there is no map to export")
        if path.suffix.lower() == ".png":
            write_picture(path, qimage_to_pil(self.grab().toImage()).convert("RGB"))
        else:
            atomic_write(path, self._write_svg)
        return path

    def _write_svg(self, target: Path) -> None:
        generator = QSvgGenerator()
        generator.setFileName(str(target))
        generator.setSize(QSize(self.width(), self.height()))
        generator.setViewBox(QRect(0, 0, self.width(), self.height()))
        generator.setTitle(f"Latent Atlas map of {self.state.engine.model.name}")
        painter = QPainter(generator)
        painter.fillRect(QRectF(0, 0, self.width(), self.height()), theme.MAP_BACKGROUND)
        layer = self._layer_image()
        if layer is not None:
            self._paint_layer(painter, layer)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        for xs, ys, colours in self._atlas_pixels(1.0):
            for colour in np.unique(colours, axis=0):  # one brush per colour: an SVG of few style changes
                painter.setBrush(QColor(*colour.tolist(), 205))
                same = np.all(colours == colour, axis=1)
                for x, y in zip(xs[same].tolist(), ys[same].tolist()):
                    painter.drawEllipse(QPointF(x, y), POINT_RADIUS, POINT_RADIUS)
        self._paint_axes(painter)
        self._paint_legend(painter)
        self._paint_overlays(painter)
        if not painter.end():
            raise OSError(f"{target}: the SVG could not be written")

    def _plane(self, z: np.ndarray) -> QPointF:
        dx, dy = self.state.dims
        return self.to_screen(float(z[dx]), float(z[dy]))

    def _scatter(self) -> QPixmap:
        state = self.state
        key = (self.width(), self.height(), self.devicePixelRatioF(), self.center, self.scale, state.dims,
               id(state.engine), id(state.layer_result), state.layer_note, state.points,
               tuple(id(engine) for engine in state.shown_atlases()))
        if self._cache is None or key != self._cache_key:
            self._cache, self._cache_key = self._render_scatter(), key
        return self._cache

    def _render_scatter(self) -> QPixmap:
        ratio = self.devicePixelRatioF()
        size = (round(self.width() * ratio), round(self.height() * ratio))
        background = self._background(size, ratio)
        for xs, ys, colours in self._atlas_pixels(ratio):
            background = splat(xs, ys, colours, size, background, POINT_RADIUS * ratio)
        pixels = np.ascontiguousarray(background)
        image = QImage(pixels.data, size[0], size[1], 3 * size[0], QImage.Format.Format_RGB888)
        pixmap = QPixmap.fromImage(image)  # copies: `pixels` may go
        pixmap.setDevicePixelRatio(ratio)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        self._paint_axes(painter)
        self._paint_legend(painter)
        painter.end()
        return pixmap

    def _background(self, size: tuple[int, int], ratio: float) -> tuple | np.ndarray:
        """The map's background colour, or a picture of it with the layer drawn in (uint8 [h, w, 3])."""
        layer = self._layer_image()
        if layer is None:
            return theme.MAP_BACKGROUND.getRgb()[:3]
        canvas = QImage(size[0], size[1], QImage.Format.Format_RGB888)
        canvas.fill(theme.MAP_BACKGROUND)
        painter = QPainter(canvas)
        painter.scale(ratio, ratio)
        self._paint_layer(painter, layer)
        painter.end()
        rows = np.frombuffer(canvas.constBits().asstring(canvas.sizeInBytes()), np.uint8)
        return rows.reshape(size[1], canvas.bytesPerLine())[:, :3 * size[0]].reshape(size[1], size[0], 3)

    @staticmethod
    def _paint_layer(painter: QPainter, layer: tuple[QRectF, QImage]) -> None:
        """The layer's cells smoothly interpolated, toned down so the points on top stay readable."""
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.setOpacity(LAYER_OPACITY)
        painter.drawImage(*layer)
        painter.setOpacity(1.0)

    def _layer_image(self) -> tuple[QRectF, QImage] | None:
        """Where the computed layer lies on the widget and its cells coloured, or None. A layer of an
        older view is stretched over its own extent until the new one arrives."""
        result = self.state.layer_result
        if result is None or result.dims != self.state.dims:
            return None
        pixels = np.ascontiguousarray(map_colours(result.values, *layer_range(result.name, result.values),
                                                  LAYER_COLOUR_MAPS[result.name]))
        image = QImage(pixels.data, result.grid.cols, result.grid.rows, 3 * result.grid.cols,
                       QImage.Format.Format_RGB888).copy()
        (x0, x1), (y0, y1) = result.grid.x_range, result.grid.y_range
        return QRectF(self.to_screen(x0, y1), self.to_screen(x1, y0)), image

    def _atlas_pixels(self, ratio: float) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(xs, ys, colours) per shown atlas, bottom first: both models' while comparing, overlaid."""
        engines = self.state.shown_atlases()
        return [self._point_pixels(ratio, engine, overlay=len(engines) > 1 and engine is not self.state.engine)
                for engine in engines]

    def _point_pixels(self, ratio: float, engine: Engine | None = None,
                      overlay: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Device-pixel positions and colours of an atlas' points (the open model's by default), in an order
        that mixes the classes. An overlaid second atlas takes one colour, so the two stay apart."""
        engine = engine or self.state.engine
        z, labels = engine.atlas()
        order = np.random.default_rng(0).permutation(len(z)) if engine is not self.state.engine else self._order(len(z))
        z, labels = z[order], labels[order]
        dx, dy = self.state.dims
        xs = (self.width() / 2 + (z[:, dx] - self.center[0]) * self.scale) * ratio
        ys = (self.height() / 2 - (z[:, dy] - self.center[1]) * self.scale) * ratio
        values = self.state.point_values if engine is self.state.engine else None
        if overlay:
            return xs, ys, np.broadcast_to(OTHER_ATLAS_RGB, (len(xs), 3))
        if values is not None:
            return xs, ys, map_colours(values[order], *self._points_range(values), LAYER_COLOUR_MAPS[self._points_kind()])
        if not engine.model.class_names:  # a dataset without labels: one uncoloured cloud
            return xs, ys, np.broadcast_to(UNLABELLED_RGB, (len(xs), 3))
        return xs, ys, CLASS_RGB[labels.astype(np.int64) % len(CLASS_RGB)]

    def _order(self, count: int) -> np.ndarray:
        if self._point_order is None or len(self._point_order) != count:
            self._point_order = np.random.default_rng(0).permutation(count)
        return self._point_order

    def _points_kind(self) -> str:
        return "error" if self.state.points == "error" else "factor"

    def _points_range(self, values: np.ndarray) -> tuple[float, float]:
        return error_range(values) if self.state.points == "error" else layer_range("factor", values)

    def _paint_axes(self, painter: QPainter) -> None:
        (x0, x1), (y0, y1) = self.visible_extent()
        step = _nice_step(max(x1 - x0, y1 - y0) / 8)
        font = QFont(self.font())
        font.setPointSizeF(8.5)
        painter.setFont(font)
        for value in np.arange(math.ceil(x0 / step) * step, x1, step):
            sx = self.to_screen(value, 0).x()
            painter.setPen(QPen(theme.MAP_GRID if abs(value) > step / 2 else QColor(255, 255, 255, 60), 1))
            painter.drawLine(QPointF(sx, 0), QPointF(sx, self.height()))
            painter.setPen(theme.MUTED)
            painter.drawText(QPointF(sx + 3, self.height() - 5), _tick_label(value, step))
        for value in np.arange(math.ceil(y0 / step) * step, y1, step):
            sy = self.to_screen(0, value).y()
            painter.setPen(QPen(theme.MAP_GRID if abs(value) > step / 2 else QColor(255, 255, 255, 60), 1))
            painter.drawLine(QPointF(0, sy), QPointF(self.width(), sy))
            painter.setPen(theme.MUTED)
            painter.drawText(QPointF(4, sy - 3), _tick_label(value, step))
        dx, dy = self.state.dims
        caption = f"x: z[{dx}]   y: z[{dy}]"
        box = QRectF(10, 10, QFontMetrics(font).horizontalAdvance(caption) + 16, QFontMetrics(font).height() + 8)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(18, 20, 24, 215))
        painter.drawRoundedRect(box, 5, 5)
        painter.setPen(theme.TEXT)
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, caption)

    def legend_items(self) -> list[tuple]:
        """What the legend shows, top down: ("row", text, colour) for a class or an atlas, ("bar", title,
        colour map, low, high) for a colour scale, ("note", text) for why a layer or colouring is empty."""
        state = self.state
        items: list[tuple] = []
        engines = state.shown_atlases()
        if state.engine in engines and state.point_values is not None:
            title = "reconstruction error (nats)" if state.points == "error" else state.points.split(":", 1)[1]
            items.append(("bar", title, LAYER_COLOUR_MAPS[self._points_kind()], *self._points_range(state.point_values)))
        elif len(engines[0].atlas()[1]):
            items += [("row", name, QColor(colour)) for name, colour in legend_rows(engines[0].model.class_names)]
        if len(engines) > 1:
            items.append(("row", f"{state.compare.model.name} (compared)", QColor(*OTHER_ATLAS_RGB.tolist())))
        result = state.layer_result
        if result is not None and result.dims == state.dims:
            items.append(("bar", LAYER_NAMES[result.name], LAYER_COLOUR_MAPS[result.name],
                          *layer_range(result.name, result.values)))
        if state.layer_note:
            items.append(("note", state.layer_note))
        return items

    def _paint_legend(self, painter: QPainter) -> None:
        items = self.legend_items()
        if not items:
            return
        painter.setFont(self.font())
        metrics = QFontMetrics(self.font())
        row = metrics.height() + 4
        note_width = min(320, self.width() // 2)

        def height(item: tuple) -> float:
            if item[0] == "row":
                return row
            if item[0] == "bar":
                return 2 * row + COLOUR_BAR[1] + 4
            return metrics.boundingRect(QRect(0, 0, note_width, 1000), Qt.TextFlag.TextWordWrap, item[1]).height() + 6

        def width(item: tuple) -> float:
            if item[0] == "row":
                return metrics.horizontalAdvance(item[1]) + 34
            if item[0] == "bar":
                return max(COLOUR_BAR[0], metrics.horizontalAdvance(item[1])) + 24
            return note_width + 16

        heights = [height(item) for item in items]
        width = max(width(item) for item in items)
        box = QRectF(self.width() - width - 12, 12, width, sum(heights) + 12)
        painter.setPen(QPen(QColor(255, 255, 255, 40), 1))
        painter.setBrush(QColor(18, 20, 24, 215))
        painter.drawRoundedRect(box, 6, 6)
        top = box.top() + 6
        for item, height in zip(items, heights):
            if item[0] == "row":
                y = top + row / 2
                painter.setPen(Qt.PenStyle.NoPen)
                painter.setBrush(item[2])
                painter.drawEllipse(QPointF(box.left() + 14, y), 5, 5)
                painter.setPen(theme.TEXT)
                painter.drawText(QRectF(box.left() + 26, top, width - 28, row), Qt.AlignmentFlag.AlignVCenter, item[1])
            elif item[0] == "bar":
                self._paint_colour_bar(painter, QPointF(box.left() + 12, top), item[1:], row)
            else:
                painter.setPen(theme.MUTED)
                painter.drawText(QRectF(box.left() + 8, top, note_width, height), Qt.TextFlag.TextWordWrap, item[1])
            top += height

    def _paint_colour_bar(self, painter: QPainter, at: QPointF, bar: tuple, row: float) -> None:
        """A titled colour scale with round ticks (explorer_rules.legend_ticks) under it."""
        title, colour_map, low, high = bar
        width, height = COLOUR_BAR
        painter.setPen(theme.TEXT)
        painter.drawText(QRectF(at.x(), at.y(), width + 200, row), Qt.AlignmentFlag.AlignVCenter, title)
        ramp = np.ascontiguousarray(map_colours(np.linspace(low, high, width)[None, :], low, high, colour_map))
        image = QImage(ramp.data, width, 1, 3 * width, QImage.Format.Format_RGB888).copy()
        bar_rect = QRectF(at.x(), at.y() + row, width, height)
        painter.drawImage(bar_rect, image)
        font = QFont(self.font())
        font.setPointSizeF(8)
        painter.setFont(font)
        for value, label in legend_ticks(low, high):
            x = bar_rect.left() + (value - low) / (high - low) * width
            painter.setPen(QPen(theme.TEXT, 1))
            painter.drawLine(QPointF(x, bar_rect.bottom()), QPointF(x, bar_rect.bottom() + 3))
            painter.drawText(QRectF(x - 30, bar_rect.bottom() + 2, 60, row), Qt.AlignmentFlag.AlignHCenter, label)
        painter.setFont(self.font())

    def _paint_grid_box(self, painter: QPainter) -> None:
        box = self.state.grid_box()
        if box is None:
            return
        (x0, x1), (y0, y1) = box
        painter.setPen(QPen(QColor(255, 255, 255, 110), 1, Qt.PenStyle.DashLine))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(QRectF(self.to_screen(x0, y1), self.to_screen(x1, y0)))

    def _paint_interpolation(self, painter: QPainter) -> None:
        interpolation = self.state.interpolation
        if interpolation is None:
            return
        points = [self._plane(z) for z in interpolation.path]
        painter.setPen(QPen(theme.MARKER_COLOURS["a"], 2))
        painter.drawPolyline(QPolygonF(points))
        painter.setBrush(theme.MARKER_COLOURS["a"])
        for point in points:
            painter.drawEllipse(point, 2.5, 2.5)
        painter.setPen(QPen(QColor("#000000"), 1.5))
        painter.drawEllipse(points[self.state.frame_index], 6, 6)

    def _paint_ellipses(self, painter: QPainter) -> None:
        """The focused image's posterior: its 1 and 2 sigma ellipses, solid then dashed."""
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for i, (cx, cy, rx, ry) in enumerate(self.state.ellipses()):
            centre = self.to_screen(cx, cy)
            for colour, width in ((QColor(0, 0, 0, 160), 3.5), (theme.POSTERIOR, 1.6)):
                painter.setPen(QPen(colour, width, Qt.PenStyle.SolidLine if i == 0 else Qt.PenStyle.DashLine))
                painter.drawEllipse(centre, rx * self.scale, ry * self.scale)

    def _paint_markers(self, painter: QPainter) -> None:
        painter.setFont(self.font())
        for marker in self.state.markers():
            point = self._plane(marker.z)
            colour = theme.MARKER_COLOURS[marker.kind]
            painter.setPen(QPen(QColor("#000000"), 1.5))
            painter.setBrush(colour)
            if marker.kind == "encoded":
                diamond = QPainterPath()
                diamond.addPolygon(QPolygonF([point + QPointF(0, -7), point + QPointF(7, 0), point + QPointF(0, 7),
                                              point + QPointF(-7, 0), point + QPointF(0, -7)]))
                painter.drawPath(diamond)
            else:
                painter.drawEllipse(point, 7, 7)
            # Endpoint letters go left of their dot, names right: an endpoint is often an encoded image.
            offset = QPointF(-20, -8) if marker.kind in ("a", "b") else QPointF(10, -8)
            _outlined_text(painter, point + offset, marker.label, colour)

    def _cursor_region(self, point: QPointF) -> QRegion:
        """What the cursor covers: its two crosshair lines and its ring."""
        x, y, r = round(point.x()), round(point.y()), CURSOR_RADIUS + 4
        return (QRegion(x - 2, 0, 5, self.height()) + QRegion(0, y - 2, self.width(), 5)
                + QRegion(x - r, y - r, 2 * r + 1, 2 * r + 1))

    def _cursor_moved(self) -> None:
        # Only the strips under the old and the new cursor are repainted: a hover frame then costs a
        # fraction of a full repaint. Whatever else lies there is redrawn by paintEvent, clipped.
        if self.state.engine is None or self._cursor_at is None:
            self.update()
            return
        new = self._plane(self.state.cursor)
        self.update(self._cursor_region(self._cursor_at) + self._cursor_region(new))

    def _paint_cursor(self, painter: QPainter) -> None:
        point = self._cursor_at = self._plane(self.state.cursor)
        painter.setPen(QPen(QColor(255, 255, 255, 70), 1))
        painter.drawLine(QPointF(point.x(), 0), QPointF(point.x(), self.height()))
        painter.drawLine(QPointF(0, point.y()), QPointF(self.width(), point.y()))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(QPen(QColor("#000000"), 4))
        painter.drawEllipse(point, CURSOR_RADIUS, CURSOR_RADIUS)
        painter.setPen(QPen(theme.CURSOR, 2))
        painter.drawEllipse(point, CURSOR_RADIUS, CURSOR_RADIUS)


def _outlined_text(painter: QPainter, at: QPointF, text: str, colour: QColor) -> None:
    """Text readable over any colour of the scatter: a dark halo under it."""
    painter.setPen(QColor(0, 0, 0, 200))
    for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        painter.drawText(at + QPointF(dx, dy), text)
    painter.setPen(colour)
    painter.setBrush(QBrush(colour))
    painter.drawText(at, text)


def _nice_step(raw: float) -> float:
    """1, 2 or 5 times a power of ten, at least `raw`: tick spacing that reads well."""
    power = 10 ** math.floor(math.log10(max(raw, 1e-12)))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _tick_label(value: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step)))
    return f"{0.0 if abs(value) < step / 2 else value:.{decimals}f}"
