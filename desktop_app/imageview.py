"""Widgets that show decoded images: one image (the preview), or tiles (the grid, the interpolation strip).

Small images are upscaled with nearest neighbour, by whole factors where there is room, so every
model pixel is a crisp square; only a picture larger than its widget (a 40 x 40 grid) is scaled down
smoothly.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image
from PyQt6.QtCore import QPointF, QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QImage, QPainter, QPen
from PyQt6.QtWidgets import QSizePolicy, QWidget

from latent_atlas.runtime.images import tile, to_uint8

from . import theme


def to_qimage(image: np.ndarray) -> QImage:
    """A float image in [0, 1], grey [H, W] or colour [H, W, 3] (the runtime's display layout) -> a QImage
    that owns its pixels."""
    pixels = np.ascontiguousarray(to_uint8(image))
    if pixels.ndim == 3 and pixels.shape[2] == 3:
        h, w, _ = pixels.shape
        # QImage only borrows the buffer: copy() detaches it before `pixels` is freed.
        return QImage(pixels.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    h, w = pixels.shape
    return QImage(pixels.data, w, h, w, QImage.Format.Format_Grayscale8).copy()


def from_qimage(image: QImage) -> np.ndarray:
    """A QImage -> uint8 grey pixels [H, W] (rows are padded to 4 bytes inside a QImage)."""
    grey = image.convertToFormat(QImage.Format.Format_Grayscale8)
    buffer = np.frombuffer(grey.constBits().asstring(grey.sizeInBytes()), np.uint8)
    return buffer.reshape(grey.height(), grey.bytesPerLine())[:, :grey.width()].copy()


def qimage_to_pil(image: QImage) -> Image.Image:
    """Keeps the alpha channel: a pasted drawing is often dark ink on a transparent background."""
    rgba = image.convertToFormat(QImage.Format.Format_RGBA8888)
    data = rgba.constBits().asstring(rgba.sizeInBytes())
    return Image.frombuffer("RGBA", (rgba.width(), rgba.height()), data, "raw", "RGBA", rgba.bytesPerLine(), 1).copy()


class ImageView(QWidget):
    """One picture (grey or colour), centred, as large as fits; a placeholder text while there is none."""

    def __init__(self, placeholder: str = "", minimum: int = 112, parent: QWidget | None = None):
        super().__init__(parent)
        self.placeholder = placeholder
        self.image: np.ndarray | None = None
        self._qimage: QImage | None = None
        self.setMinimumSize(minimum, minimum)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:
        return QSize(280, 280)

    def set_image(self, image: np.ndarray | None) -> None:
        self.image = None if image is None else np.asarray(image, np.float32)
        self._qimage = None if image is None else to_qimage(self.image)
        self.update()

    def image_rect(self) -> QRectF:
        """Where the picture is drawn: a whole-number upscale when it fits, else scaled down to fit."""
        if self._qimage is None:
            return QRectF()
        w, h = self._qimage.width(), self._qimage.height()
        fit = min(self.width() / w, self.height() / h)
        # Whole factors keep every model pixel the same size; below 3x the rounding would waste too much room.
        scale = math.floor(fit) if fit >= 3 else fit
        dw, dh = w * scale, h * scale
        return QRectF((self.width() - dw) / 2, (self.height() - dh) / 2, dw, dh)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), theme.BASE)
        if self._qimage is None:
            painter.setPen(theme.MUTED)
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
            return
        target = self.image_rect()
        downscaled = target.width() < self._qimage.width()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, downscaled)
        painter.drawImage(target, self._qimage)
        self.paint_overlay(painter, target)

    def paint_overlay(self, painter: QPainter, target: QRectF) -> None:
        """Subclasses draw on top of the picture here."""


class TiledView(ImageView):
    """Equal tiles laid out in rows (a manifold grid, an interpolation strip); click a tile to pick it."""

    tile_clicked = pyqtSignal(int)

    def __init__(self, placeholder: str = "", minimum: int = 112, parent: QWidget | None = None):
        super().__init__(placeholder, minimum, parent)
        self.columns, self.count, self.padding, self.highlighted = 1, 0, 0, -1
        self.captions: list[str] = []
        self.tile_size = (0, 0)  # (height, width) of one tile in model pixels
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def set_tiles(self, images: np.ndarray | None, columns: int, padding: int = 0,
                  captions: list[str] | None = None) -> None:
        """Shows the tiles; `captions` (one per tile) are painted on them: no label whose text changes on
        every hover re-runs the layouts around it."""
        self.highlighted = -1
        self.captions = list(captions or [])
        if images is None:
            self.count = 0
            self.set_image(None)
            return
        # [N, H, W] grey or [N, H, W, 3] colour: a tile is H x W either way, and need not be square.
        self.columns, self.count, self.padding, self.tile_size = columns, len(images), padding, images.shape[1:3]
        self.set_image(tile(images, columns, padding, background=0.12))

    def highlight(self, index: int) -> None:
        self.highlighted = index
        self.update()

    def _tile_size(self, target: QRectF) -> float:
        return target.width() / self.image.shape[1]  # screen pixels per model pixel

    def tile_rect(self, index: int) -> QRectF:
        target = self.image_rect()
        unit = self._tile_size(target)
        row, col = divmod(index, self.columns)
        (h, w), pad = self.tile_size, self.padding
        return QRectF(target.left() + (pad + col * (w + pad)) * unit, target.top() + (pad + row * (h + pad)) * unit,
                      w * unit, h * unit)

    def tile_at(self, point: QPointF) -> int:
        """The index of the tile under a widget point, or -1."""
        if not self.count:
            return -1
        target = self.image_rect()
        if not target.contains(point):
            return -1
        unit = self._tile_size(target)
        (h, w), pad = self.tile_size, self.padding
        col = int((point.x() - target.left() - pad * unit / 2) // ((w + pad) * unit))
        row = int((point.y() - target.top() - pad * unit / 2) // ((h + pad) * unit))
        index = row * self.columns + col
        return index if 0 <= col < self.columns and index < self.count else -1

    def mousePressEvent(self, event) -> None:
        index = self.tile_at(event.position())
        if event.button() == Qt.MouseButton.LeftButton and index >= 0:
            self.tile_clicked.emit(index)

    def paint_overlay(self, painter: QPainter, target: QRectF) -> None:
        for index, caption in enumerate(self.captions[:self.count]):
            rect = self.tile_rect(index)
            metrics = painter.fontMetrics()
            box = QRectF(rect.left(), rect.bottom() - metrics.height() - 2,
                         min(rect.width(), metrics.horizontalAdvance(caption) + 8), metrics.height() + 2)
            painter.fillRect(box, QColor(0, 0, 0, 170))
            painter.setPen(theme.TEXT)
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, caption)
        if 0 <= self.highlighted < self.count:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(QPen(QColor(theme.ACCENT), 2))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(self.tile_rect(self.highlighted).adjusted(-1, -1, 1, 1))
