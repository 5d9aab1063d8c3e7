"""A scripted tour of the explorer that photographs its main views (for the README, and for `make run`
on a machine without a display).

The tour drives the real widgets with synthetic mouse events, the same way the tests do, so the
pictures show what a user would see: map and preview, grid, interpolation, draw pad, and what explains
the model: a posterior's ellipses and samples, the real neighbours, a background layer, two models.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from PyQt6.QtCore import QEvent, QPointF, Qt
from PyQt6.QtGui import QColor, QFont, QImage, QMouseEvent, QPainter
from PyQt6.QtTest import QTest
from PyQt6.QtWidgets import QApplication, QWidget

from .imageview import qimage_to_pil
from .window import MainWindow

WINDOW_SIZE = (1440, 900)
GRID_SIZE = 20
GRID_TIMEOUT_S = 60
# The second model of compare.png: MNIST's binarized sibling, of the same latent size.
COMPARE_MODEL = "mnist-binarized"


def send_mouse(widget: QWidget, kind: QEvent.Type, pos: QPointF, button=Qt.MouseButton.NoButton,
               buttons=Qt.MouseButton.NoButton, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    """Delivers one mouse event, buttons held included (QTest.mouseMove cannot hold a button)."""
    event = QMouseEvent(kind, pos, widget.mapToGlobal(pos), button, buttons, modifiers)
    QApplication.sendEvent(widget, event)


def hover(widget: QWidget, pos: QPointF) -> None:
    send_mouse(widget, QEvent.Type.MouseMove, pos)


def drag(widget: QWidget, points: list[QPointF], button=Qt.MouseButton.LeftButton,
         modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    """Press at the first point, move through the others with the button held, release at the last."""
    send_mouse(widget, QEvent.Type.MouseButtonPress, points[0], button, button, modifiers)
    for point in points[1:]:
        send_mouse(widget, QEvent.Type.MouseMove, point, Qt.MouseButton.NoButton, button, modifiers)
    send_mouse(widget, QEvent.Type.MouseButtonRelease, points[-1], button, Qt.MouseButton.NoButton, modifiers)


def click(widget: QWidget, pos: QPointF, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    drag(widget, [pos], modifiers=modifiers)


def wait_for(predicate, timeout_s: float, what: str) -> None:
    """Runs the event loop until predicate() holds; raises TimeoutError naming `what` otherwise."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout_s:.0f} s")
        QApplication.processEvents()
        time.sleep(0.005)


def settle() -> None:
    for _ in range(3):
        QApplication.processEvents()


def typed_digit(text: str, side: int = 200) -> QImage:
    """A digit typeset in bold, dark on white: a stand-in for a photo of a handwritten one."""
    image = QImage(side, side, QImage.Format.Format_RGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    font = QFont("DejaVu Sans", 1)
    font.setPixelSize(int(side * 0.75))
    font.setBold(True)
    painter.setFont(font)
    painter.setPen(QColor("black"))
    painter.drawText(image.rect(), Qt.AlignmentFlag.AlignCenter, text)
    painter.end()
    return image


def handwritten_three(points_per_arc: int = 16) -> list[tuple[float, float]]:
    """A 3 as one stroke of two arcs, in fractions of the draw pad (y down)."""
    def arc(cx, cy, rx, ry, start, end):
        return [(cx + rx * math.cos(t), cy + ry * math.sin(t))
                for t in (math.radians(start + (end - start) * i / points_per_arc) for i in range(points_per_arc + 1))]
    return arc(0.5, 0.33, 0.17, 0.15, -160, 90) + arc(0.5, 0.65, 0.19, 0.17, -90, 160)[1:]


def pad_point(window: MainWindow, fx: float, fy: float) -> QPointF:
    """A point of the draw pad given as fractions of its canvas."""
    rect = window.draw_panel.pad.canvas_rect()
    return QPointF(rect.left() + fx * rect.width(), rect.top() + fy * rect.height())


def take_screenshots(window: MainWindow, out_dir: Path) -> list[Path]:
    """Shows the window, visits each view, and writes map.png, grid.png, interpolation.png, draw.png,
    uncertainty.png, neighbours.png, landscape.png, compare.png, plus manifold.png (the grid itself) and
    interpolation.gif. Returns the paths written."""
    state = window.state
    if state.engine is None:
        raise ValueError("no model could be opened, so there is nothing to photograph")
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def shoot(name: str) -> None:
        settle()
        path = out_dir / name
        if not window.grab().save(str(path)):
            raise OSError(f"{path}: could not write the screenshot")
        written.append(path)

    def keep(what: str, name: str) -> None:
        if not state.save(what, out_dir / name):
            raise OSError(f"{out_dir / name}: could not save the {what}")
        written.append(out_dir / name)

    window.resize(*WINDOW_SIZE)
    window.show()
    QTest.qWaitForWindowExposed(window, 5000)
    settle()

    # Map and preview: two typed digits encoded, the cursor hovering over the map.
    for digit in ("0", "7"):
        window.encode(qimage_to_pil(typed_digit(digit)), f"typed {digit}")
    the_map = window.map
    hover(the_map, QPointF(the_map.width() * 0.58, the_map.height() * 0.42))
    shoot("map.png")

    # Grid over the visible region; a click on a tile moves the cursor there.
    state.set_grid_options(n=GRID_SIZE, source="view")
    window.grid_panel.sync_options()
    window.tools.setCurrentWidget(window.grid_panel)
    state.request_grid()
    wait_for(lambda: not state.grid_busy, GRID_TIMEOUT_S, f"the {GRID_SIZE}×{GRID_SIZE} grid")
    settle()
    view = window.grid_panel.view
    click(view, view.tile_rect(GRID_SIZE * 6 + 13).center())
    shoot("grid.png")
    keep("grid", "manifold.png")

    # Interpolation between the two encoded images, paused on a middle frame.
    window.tools.setCurrentWidget(window.interpolation_panel)
    first, second = state.encodings[-2:]
    state.set_endpoint("a", first.z)
    state.set_endpoint("b", second.z)
    state.set_frame(len(state.interpolation.frames) // 2)
    shoot("interpolation.png")
    keep("interpolation", "interpolation.gif")

    # The draw pad with a 3 drawn in one stroke; its point follows on the map.
    window.tools.setCurrentWidget(window.draw_panel)
    settle()
    drag(window.draw_panel.pad, [pad_point(window, x, y) for x, y in handwritten_three()])
    shoot("draw.png")

    # Uncertainty: the drawn 3's posterior as 1 and 2 sigma ellipses, zoomed in on them, and its samples.
    state.set_uncertainty(True)
    window.tools.setCurrentWidget(window.uncertainty_panel)
    cx, cy, rx, ry = state.ellipses()[-1]
    the_map.show_extent(((cx - 4 * rx, cx + 4 * rx), (cy - 4 * ry, cy + 4 * ry)))
    state.set_cursor(state.drawing.z)
    shoot("uncertainty.png")
    the_map.reset_view()

    # Real neighbours of a point between classes, the aggregate posterior's landscape behind the map.
    window.tools.setCurrentWidget(window.neighbours_panel)
    hover(the_map, QPointF(the_map.width() * 0.47, the_map.height() * 0.55))
    shoot("neighbours.png")
    window.tools.setCurrentWidget(window.landscape_panel)
    state.set_layer("aggregate")
    state.set_points("error")
    wait_for(lambda: state.layer_result is not None, GRID_TIMEOUT_S, "the aggregate posterior layer")
    shoot("landscape.png")

    # Two models under one cursor: both decodes, their difference, both atlases, both models' figures.
    state.set_points("class")
    state.set_layer("none")
    if not state.load_compare(COMPARE_MODEL):
        raise ValueError(f"the model {COMPARE_MODEL} to compare with did not open")
    window.tools.setCurrentWidget(window.compare_panel)
    hover(the_map, QPointF(the_map.width() * 0.4, the_map.height() * 0.45))
    shoot("compare.png")
    return written
