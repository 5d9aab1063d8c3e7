"""A drawing pad: white ink on black, like MNIST. It emits `changed` after every stroke segment so the
encoding can follow the pen live; the runtime's preprocessing turns the big canvas into 28 x 28."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QImage, QPainter, QPen
from PyQt6.QtWidgets import QSizePolicy, QWidget

from . import theme
from .imageview import from_qimage

CANVAS = 280       # 10x MNIST: strokes are smooth, and downsampling averages them like MNIST's anti-aliasing
PEN_WIDTH = 24     # about 2.4 MNIST pixels, the width of a typical MNIST stroke


class DrawPad(QWidget):
    changed = pyqtSignal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.canvas = QImage(CANVAS, CANVAS, QImage.Format.Format_Grayscale8)
        self.canvas.fill(0)
        self._last: QPointF | None = None
        self.empty = True
        self.setMinimumSize(160, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setToolTip("Draw a digit with the mouse; the right button erases.")

    def sizeHint(self) -> QSize:
        return QSize(CANVAS, CANVAS)

    def pixels(self) -> np.ndarray:
        """The canvas as uint8 [CANVAS, CANVAS], 255 = ink."""
        return from_qimage(self.canvas)

    def clear(self) -> None:
        self.canvas.fill(0)
        self.empty = True
        self.update()
        self.changed.emit()

    def canvas_rect(self) -> QRectF:
        side = min(self.width(), self.height())
        return QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side)

    def _to_canvas(self, point: QPointF) -> QPointF:
        rect = self.canvas_rect()
        return QPointF((point.x() - rect.left()) * CANVAS / rect.width(), (point.y() - rect.top()) * CANVAS / rect.height())

    def stroke(self, points: list[QPointF], erase: bool = False) -> None:
        """Draws a polyline given in canvas coordinates (0..CANVAS)."""
        painter = QPainter(self.canvas)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        ink = QColor(0, 0, 0) if erase else QColor(255, 255, 255)
        painter.setPen(QPen(ink, PEN_WIDTH * (2 if erase else 1), Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
                            Qt.PenJoinStyle.RoundJoin))
        if len(points) == 1:
            painter.drawPoint(points[0])
        else:
            for start, end in zip(points, points[1:]):
                painter.drawLine(start, end)
        painter.end()
        self.empty = not self.pixels().any()
        self.update()
        self.changed.emit()

    def mousePressEvent(self, event) -> None:
        self._last = self._to_canvas(event.position())
        self.stroke([self._last], erase=event.button() == Qt.MouseButton.RightButton)

    def mouseMoveEvent(self, event) -> None:
        if self._last is None:
            return
        point = self._to_canvas(event.position())
        self.stroke([self._last, point], erase=bool(event.buttons() & Qt.MouseButton.RightButton))
        self._last = point

    def mouseReleaseEvent(self, event) -> None:
        self._last = None

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), theme.BACKGROUND)
        rect = self.canvas_rect()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawImage(rect, self.canvas)
        painter.setPen(QPen(theme.ACCENT.darker(150), 1))
        painter.drawRect(rect.adjusted(0, 0, -1, -1))
        if self.empty:
            painter.setPen(theme.MUTED)
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, "Draw a digit here")
