"""The main window: the map in the middle, the preview and the tool tabs docked on the right, menus,
toolbar, keyboard shortcuts, drag and drop, clipboard, file dialogs, status bar, remembered layout.

It wires widgets to the ExplorerState and owns everything that needs a user's answer (dialogs) or
the desktop (clipboard, drops); the state does the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PyQt6.QtCore import QSettings, Qt
from PyQt6.QtGui import QAction, QActionGroup, QImage, QKeySequence
from PyQt6.QtWidgets import (QApplication, QComboBox, QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox,
                             QTabWidget, QToolBar, QWidget)

from . import settings as stored
from .engine import available_providers, bundled_names
from .imageview import qimage_to_pil
from .latent_map import ZOOM_STEP, LatentMap
from .panels import (ComparePanel, DrawPanel, EncodePanel, GridPanel, InterpolationPanel, LandscapePanel,
                     NeighboursPanel, PreviewPanel, UncertaintyPanel, steady_label)
from .state import ExplorerState

SESSION_FILTER = "Latent Atlas session (*.json);;All files (*)"
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp);;All files (*)"
DEFAULT_SIZE = (1440, 900)
ERROR_SECONDS = 12
DEFAULT_MODEL = "mnist"


class MainWindow(QMainWindow):
    def __init__(self, state: ExplorerState, settings: QSettings,
                 report_error: Callable[[str], None] | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.settings = settings
        # Tests pass a plain function here; people get a (non-blocking) message box.
        self.report_error = report_error or self._message_box
        self.errors: list[str] = []
        self.setWindowTitle("Latent Atlas")
        self.resize(*DEFAULT_SIZE)
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)

        self.map = LatentMap(state)
        self.setCentralWidget(self.map)
        self.preview = PreviewPanel(state)
        self.grid_panel = GridPanel(state)
        self.interpolation_panel = InterpolationPanel(state)
        self.encode_panel = EncodePanel(state)
        self.draw_panel = DrawPanel(state)
        self.uncertainty_panel = UncertaintyPanel(state)
        self.neighbours_panel = NeighboursPanel(state)
        self.landscape_panel = LandscapePanel(state)
        self.compare_panel = ComparePanel(state)
        self.tools = QTabWidget()
        self.tools.setUsesScrollButtons(True)
        for panel, title in ((self.grid_panel, "Grid"), (self.interpolation_panel, "Interpolation"),
                             (self.encode_panel, "Encode"), (self.draw_panel, "Draw"),
                             (self.uncertainty_panel, "Uncertainty"), (self.neighbours_panel, "Neighbours"),
                             (self.landscape_panel, "Landscape"), (self.compare_panel, "Compare")):
            self.tools.addTab(panel, title)
        self.preview_dock = self._dock("Preview", self.preview)
        self.tools_dock = self._dock("Tools", self.tools)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.preview_dock)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.tools_dock)
        self.resizeDocks([self.preview_dock, self.tools_dock], [560, 560], Qt.Orientation.Horizontal)
        self.resizeDocks([self.preview_dock, self.tools_dock], [350, 550], Qt.Orientation.Vertical)

        self.model_label, self.provider_label = QLabel(), QLabel()
        self.decode_label = steady_label("Decode: 999.99 ms")
        for label in (self.model_label, self.provider_label, self.decode_label):
            self.statusBar().addPermanentWidget(label)
        self.model_combo, self.provider_combo = QComboBox(), QComboBox()
        self.model_combo.setMinimumContentsLength(14)
        self.model_combo.activated.connect(lambda _: self._switch_model(self.model_combo.currentData()))
        self.provider_combo.activated.connect(lambda _: self._switch_provider(self.provider_combo.currentData()))
        self._build_actions()

        self.grid_panel.save_requested.connect(self.save_with_dialog)
        self.interpolation_panel.save_requested.connect(self.save_with_dialog)
        self.encode_panel.open_requested.connect(self.open_image)
        self.encode_panel.paste_requested.connect(self.paste)
        self.compare_panel.open_requested.connect(self.open_compare)
        state.error.connect(self.show_error)
        state.model_changed.connect(self._show_model)
        state.provider_changed.connect(self._show_model)
        state.cursor_changed.connect(self._show_decode_time)
        self.grid_panel.sync_options()
        self.interpolation_panel.sync_options()
        stored.restore_window(settings, self)
        self._show_model()

    def _dock(self, title: str, widget: QWidget) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title.lower())  # restoreState finds docks by object name
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        return dock

    # -- actions, menus, toolbar ---------------------------------------------------------------------

    def _action(self, text: str, shortcut, slot, tip: str = "", checkable: bool = False) -> QAction:
        action = QAction(text, self)
        shortcuts = shortcut if isinstance(shortcut, list) else [shortcut] if shortcut else []
        action.setShortcuts([QKeySequence(s) for s in shortcuts])
        action.setStatusTip(tip or text)
        action.setCheckable(checkable)
        (action.toggled if checkable else action.triggered).connect(slot)
        self.addAction(action)  # shortcuts work even for actions that are in no visible menu
        return action

    def _build_actions(self) -> None:
        state = self.state
        a = self.actions_by_name = {
            "open_image": self._action("Open image…", QKeySequence.StandardKey.Open, self.open_image,
                                       "Encode an image file"),
            "paste": self._action("Paste image", QKeySequence.StandardKey.Paste, self.paste,
                                  "Encode the image on the clipboard"),
            "save": self._action("Save…", QKeySequence.StandardKey.Save, self.save_current,
                                 "Save what the active tab shows (the preview outside Grid and Interpolation)"),
            "save_preview": self._action("Save preview…", None, lambda: self.save_with_dialog("preview")),
            "save_grid": self._action("Save grid…", None, lambda: self.save_with_dialog("grid")),
            "save_strip": self._action("Save interpolation strip…", None, lambda: self.save_with_dialog("interpolation")),
            "save_gif": self._action("Save animation (GIF)…", None, lambda: self.save_with_dialog("animation")),
            "export_map": self._action("Export map…", "Ctrl+E", self.export_with_dialog,
                                       "Save the map with its layer and markers as PNG or SVG"),
            "open_session": self._action("Open session…", "Ctrl+Shift+L", self.open_session,
                                         "Restore a saved view: model, cursor, view, endpoints, layer"),
            "save_session": self._action("Save session…", "Ctrl+Shift+S", self.save_session,
                                         "Save the view to a file (the browser's link state, as JSON)"),
            "compare": self._action("Compare with bundle…", None, self.open_compare,
                                    "Open a second bundle of the same latent size beside this one"),
            "quit": self._action("Quit", QKeySequence.StandardKey.Quit, self.close),
            "open_bundle": self._action("Open bundle…", "Ctrl+Shift+O", self.open_bundle,
                                        "Open a model bundle directory (made by latent-atlas export)"),
            "sample": self._action("Sample", "S", lambda: state.sample_prior(), "Draw a point from the model's prior"),
            "grid": self._action("Decode grid", "G", self._decode_grid, "Decode an n × n grid"),
            "interpolate": self._action("Interpolate", "I", self._interpolate, "Decode the path from A to B"),
            "set_a": self._action("A ← cursor", "A", lambda: state.set_endpoint("a"), "Set endpoint A to the cursor"),
            "set_b": self._action("B ← cursor", "B", lambda: state.set_endpoint("b"), "Set endpoint B to the cursor"),
            "play": self._action("Play / pause", "Space", self._toggle_play, "Play the interpolation"),
            "follow": self._action("Follow mouse", "H", self._set_follow, "Hovering the map moves the cursor",
                                   checkable=True),
            "fit": self._action("Fit view", ["F", "Home"], self.map.reset_view, "Show the whole test set"),
            "zoom_in": self._action("Zoom in", ["+", "="], lambda: self.map.zoom(ZOOM_STEP)),
            "zoom_out": self._action("Zoom out", "-", lambda: self.map.zoom(1 / ZOOM_STEP)),
            "shortcuts": self._action("Keyboard shortcuts", "F1", self.show_shortcuts),
        }
        a["follow"].setChecked(True)
        for key, (dx, dy) in {"Left": (-1, 0), "Right": (1, 0), "Up": (0, 1), "Down": (0, -1)}.items():
            self._action(f"Nudge {key.lower()}", key, lambda _=False, dx=dx, dy=dy: state.nudge(dx, dy))

        menu = self.menuBar().addMenu("&File")
        for name in ("open_image", "paste", None, "open_session", "save_session", None, "save", "save_preview",
                     "save_grid", "save_strip", "save_gif", "export_map", None, "quit"):
            menu.addSeparator() if name is None else menu.addAction(a[name])
        self.model_menu = self.menuBar().addMenu("&Model")
        self.provider_menu = self.menuBar().addMenu("&Provider")
        menu = self.menuBar().addMenu("&Explore")
        for name in ("sample", "grid", "interpolate", "set_a", "set_b", "play"):
            menu.addAction(a[name])
        menu = self.menuBar().addMenu("&View")
        for name in ("follow", "fit", "zoom_in", "zoom_out"):
            menu.addAction(a[name])
        menu.addSeparator()
        menu.addAction(self.preview_dock.toggleViewAction())
        menu.addAction(self.tools_dock.toggleViewAction())
        self.menuBar().addMenu("&Help").addAction(a["shortcuts"])

        toolbar = QToolBar("Main")
        toolbar.setObjectName("main-toolbar")
        toolbar.setMovable(False)
        toolbar.addWidget(QLabel(" Model "))
        toolbar.addWidget(self.model_combo)
        toolbar.addAction(a["open_bundle"])
        toolbar.addWidget(QLabel("  Provider "))
        toolbar.addWidget(self.provider_combo)
        toolbar.addSeparator()
        for name in ("sample", "grid", "interpolate", "play", None, "open_image", "paste", None, "follow", "fit", "save"):
            toolbar.addSeparator() if name is None else toolbar.addAction(a[name])
        self.addToolBar(toolbar)

    def show_shortcuts(self) -> None:
        rows = "".join(f"<tr><td><b>{', '.join(s.toString(QKeySequence.SequenceFormat.NativeText) for s in action.shortcuts())}"
                       f"</b>&nbsp;&nbsp;</td><td>{action.text().rstrip('…')}</td></tr>"
                       for action in self.actions() if action.shortcuts())
        extra = ("<p>Map: hover or drag to decode, Shift+click sets A, Ctrl+click sets B, "
                 "wheel zooms, right or middle drag pans.</p>")
        box = QMessageBox(QMessageBox.Icon.NoIcon, "Keyboard shortcuts", f"<table>{rows}</table>{extra}",
                          QMessageBox.StandardButton.Close, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    # -- models and providers -------------------------------------------------------------------------

    def _show_model(self) -> None:
        """Menus, toolbar and status bar follow the state's model and provider."""
        state, engine = self.state, self.state.engine
        self.model_combo.clear()
        self.model_menu.clear()
        group = QActionGroup(self.model_menu)
        for choice in state.model_choices():
            shown = choice if choice in bundled_names() else f"{Path(choice).name}  ({choice})"
            self.model_combo.addItem(Path(choice).name, choice)
            self.model_combo.setItemData(self.model_combo.count() - 1, choice, Qt.ItemDataRole.ToolTipRole)
            action = self.model_menu.addAction(shown)
            action.setCheckable(True)
            action.setChecked(engine is not None and choice == engine.source)
            action.triggered.connect(lambda _=False, c=choice: self._switch_model(c))
            group.addAction(action)
        if engine is not None:
            self.model_combo.setCurrentIndex(self.model_combo.findData(engine.source))
        self.model_menu.addSeparator()
        self.model_menu.addAction(self.actions_by_name["open_bundle"])
        self.model_menu.addAction(self.actions_by_name["compare"])

        self.provider_combo.clear()
        self.provider_menu.clear()
        group = QActionGroup(self.provider_menu)
        choices = ["auto", *available_providers()]
        if state.provider not in choices:  # a short name such as "cpu" from the command line
            choices.insert(1, state.provider)
        for provider in choices:
            self.provider_combo.addItem(provider, provider)
            action = self.provider_menu.addAction(provider)
            action.setCheckable(True)
            action.setChecked(provider == state.provider)
            action.triggered.connect(lambda _=False, p=provider: self._switch_provider(p))
            group.addAction(action)
        self.provider_combo.setCurrentIndex(max(0, self.provider_combo.findData(state.provider)))

        self.model_label.setText(f"Model: {engine.model.name} · {engine.model.latent_dim}-D" if engine else "No model")
        self.provider_label.setText(f"Provider: {engine.model.provider}" if engine else "")
        self.setWindowTitle(f"Latent Atlas — {engine.model.name}" if engine else "Latent Atlas")
        self._show_decode_time()

    def _show_decode_time(self) -> None:
        self.decode_label.setText(f"Decode: {self.state.decode_ms:.2f} ms" if self.state.engine else "")

    def _switch_model(self, source: str) -> None:
        if self.state.engine is None or source != self.state.engine.source:
            if not self.state.load_model(source):
                self._show_model()  # put the combo back on the model that stayed

    def _switch_provider(self, provider: str) -> None:
        if provider != self.state.provider and not self.state.set_provider(provider):
            self._show_model()

    def open_initial_model(self, preferred: str | None) -> None:
        """Opens `preferred` (the command line's or the remembered one), else MNIST, else any model that loads."""
        candidates = [preferred] if preferred else []
        candidates += [name for name in [DEFAULT_MODEL, *self.state.model_choices()] if name not in candidates]
        for source in candidates:
            if self.state.load_model(source):
                return

    def open_bundle(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a model bundle directory")
        if path:
            self._switch_model(path)

    def open_compare(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Compare with a model bundle directory")
        if path and self.state.load_compare(path):
            self.tools.setCurrentWidget(self.compare_panel)

    # -- your own images: file, clipboard, drops -------------------------------------------------------

    def encode(self, image, name: str | None = None) -> bool:
        """Encodes and, when it worked, shows the Encode tab."""
        if self.state.encode_image(image, name):
            self.tools.setCurrentWidget(self.encode_panel)
            return True
        return False

    def open_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Encode an image", "", IMAGE_FILTER)
        if path:
            self.encode(path)

    def paste(self) -> None:
        mime = QApplication.clipboard().mimeData()
        if not self._encode_mime(mime, "clipboard image"):
            self.show_error("The clipboard holds no image (copy an image or an image file first).")

    def _encode_mime(self, mime, name: str) -> bool:
        """Encodes the first image in a clipboard or drop payload: a picture, a file URL or a path."""
        if mime is None:
            return False
        if mime.hasImage():
            image = QImage(mime.imageData())
            if not image.isNull():
                self.encode(qimage_to_pil(image), name)
                return True
        paths = [url.toLocalFile() for url in mime.urls() if url.isLocalFile()] if mime.hasUrls() else []
        if not paths and mime.hasText() and Path(mime.text().strip()).is_file():
            paths = [mime.text().strip()]
        if paths:
            self.encode(paths[0])
            return True
        return False

    def dragEnterEvent(self, event) -> None:
        mime = event.mimeData()
        if mime.hasImage() or any(url.isLocalFile() for url in mime.urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        if self._encode_mime(event.mimeData(), "dropped image"):
            event.acceptProposedAction()

    # -- explore ---------------------------------------------------------------------------------------

    def _decode_grid(self) -> None:
        self.tools.setCurrentWidget(self.grid_panel)
        self.state.request_grid()

    def _interpolate(self) -> None:
        self.tools.setCurrentWidget(self.interpolation_panel)
        self.state.interpolate()

    def _toggle_play(self) -> None:
        self.tools.setCurrentWidget(self.interpolation_panel)
        self.interpolation_panel.toggle_play()

    def _set_follow(self, on: bool) -> None:
        self.map.follow_hover = on

    # -- saving ----------------------------------------------------------------------------------------

    def save_current(self) -> None:
        tab = self.tools.currentWidget()
        self.save_with_dialog({self.grid_panel: "grid", self.interpolation_panel: "animation"}.get(tab, "preview"))

    def save_with_dialog(self, what: str) -> None:
        if what == "animation":
            filters, default = "GIF animation (*.gif);;PNG strip (*.png)", "interpolation.gif"
        else:
            filters, default = "PNG image (*.png)", f"{what}.png"
        path, _ = QFileDialog.getSaveFileName(self, f"Save the {what}", default, filters)
        if path:
            self.save_to("interpolation" if what == "animation" else what, path)

    def export_with_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the map", "map.svg", "SVG (*.svg);;PNG image (*.png)")
        if path:
            self.export_map(path)

    def export_map(self, path: str | Path) -> bool:
        try:
            self.map.export(path)
        except (ValueError, OSError) as exc:
            self.show_error(f"Could not export the map to {path}: {exc}")
            return False
        self.statusBar().showMessage(f"Saved {path}", 5000)
        return True

    def save_session(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the session", "session.json", SESSION_FILTER)
        if path and self.state.save_session(path):
            self.statusBar().showMessage(f"Saved {path}", 5000)

    def open_session(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a session", "", SESSION_FILTER)
        if path:
            self.state.load_session(path)

    def save_to(self, what: str, path: str | Path) -> bool:
        if self.state.save(what, path):
            self.statusBar().showMessage(f"Saved {path}", 5000)
            return True
        return False

    # -- errors and closing ----------------------------------------------------------------------------

    def show_error(self, message: str) -> None:
        self.errors.append(message)
        self.statusBar().showMessage(f"⚠ {message}", ERROR_SECONDS * 1000)
        self.report_error(message)

    def _message_box(self, message: str) -> None:
        # open(), not exec(): the window stays live behind the message.
        box = QMessageBox(QMessageBox.Icon.Warning, "Latent Atlas", message, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def closeEvent(self, event) -> None:
        stored.save_window(self.settings, self)
        stored.save_state(self.settings, self.state)
        self.state.shutdown(5000)
        super().closeEvent(event)
