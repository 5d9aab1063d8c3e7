"""The explorer's look: a dark Fusion palette, the class colours of the scatter, fonts."""

from __future__ import annotations

from PyQt6.QtGui import QColor, QFont, QPalette
from PyQt6.QtWidgets import QApplication

from latent_atlas.runtime import explorer_rules

BACKGROUND = QColor("#1e2127")
PANEL = QColor("#272b33")
BASE = QColor("#16181d")
TEXT = QColor("#e6e9ef")
MUTED = QColor("#9aa3b2")
ACCENT = QColor("#4fa3ff")
MAP_BACKGROUND = QColor("#121418")
MAP_GRID = QColor(255, 255, 255, 22)
CURSOR = QColor("#ffffff")

# The palette both explorers share (runtime/explorer_rules.py owns it).
CLASS_COLOURS = [QColor(c) for c in explorer_rules.CLASS_COLOURS]
UNLABELLED = QColor(explorer_rules.UNLABELLED_COLOUR)

# The focused image's posterior ellipses, and a second model's atlas overlaid on the first.
POSTERIOR = QColor("#ff6bd6")
OTHER_ATLAS = QColor("#f2f2f2")

MARKER_COLOURS = {"encoded": QColor("#ffffff"), "drawing": QColor("#ff6bd6"), "sample": QColor("#7dff8a"),
                  "a": QColor("#ffd166"), "b": QColor("#ffd166")}

STYLESHEET = """
QToolBar { spacing: 6px; padding: 4px; border: none; }
QDockWidget::title { padding: 6px; background: #272b33; font-weight: 600; }
QTabWidget::pane { border: 1px solid #333844; }
QTabBar::tab { padding: 6px 14px; }
QLabel#caption { color: #9aa3b2; }
QLabel#coordinates { font-family: "DejaVu Sans Mono", monospace; font-size: 11pt; }
QStatusBar QLabel { padding: 0 8px; }
"""


def apply(app: QApplication) -> None:
    app.setStyle("Fusion")
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: BACKGROUND, QPalette.ColorRole.WindowText: TEXT,
        QPalette.ColorRole.Base: BASE, QPalette.ColorRole.AlternateBase: PANEL,
        QPalette.ColorRole.ToolTipBase: PANEL, QPalette.ColorRole.ToolTipText: TEXT,
        QPalette.ColorRole.Text: TEXT, QPalette.ColorRole.Button: PANEL,
        QPalette.ColorRole.ButtonText: TEXT, QPalette.ColorRole.Highlight: ACCENT,
        QPalette.ColorRole.HighlightedText: QColor("#0b0d10"), QPalette.ColorRole.Link: ACCENT,
        QPalette.ColorRole.PlaceholderText: MUTED,
    }
    for role, colour in roles.items():
        palette.setColor(role, colour)
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, MUTED.darker(130))
    app.setPalette(palette)
    font = QFont("DejaVu Sans", 10)
    app.setFont(font)
    app.setStyleSheet(STYLESHEET)
