"""The explorer's widgets, driven with real (synthetic) mouse and keyboard events, offscreen."""

from __future__ import annotations


import numpy as np
from PyQt6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PyQt6.QtGui import QDragEnterEvent, QDropEvent
from PyQt6.QtWidgets import QApplication, QMessageBox

from latent_atlas import runtime
from latent_atlas.desktop_app.screenshots import click, drag, hover, pad_point, typed_digit


def test_dragging_on_the_map_previews_the_decode_at_that_point(explorer, mnist):
    the_map = explorer.map
    path = [QPointF(the_map.width() * f, the_map.height() * (1 - f)) for f in np.linspace(0.3, 0.7, 9)]
    drag(the_map, path)
    x, y = the_map.to_latent(path[-1])
    np.testing.assert_allclose(explorer.state.cursor, [x, y], rtol=1e-6)
    expected = mnist.decode(np.float32([x, y]))
    np.testing.assert_array_equal(explorer.preview.view.image, expected)
    # What is painted is that image too: the view's pixels are the decode's, scaled up.
    assert explorer.preview.view._qimage.pixel(14, 14) & 0xFF == runtime.to_uint8(expected)[14, 14]
    assert f"{x:+.3f}" in explorer.preview.coordinates.text()
    assert "Decode:" in explorer.decode_label.text() and "ms" in explorer.decode_label.text()


def test_hover_follows_only_when_asked(explorer, qtbot):
    the_map, state = explorer.map, explorer.state
    hover(the_map, QPointF(100, 120))
    np.testing.assert_allclose(state.cursor, the_map.to_latent(QPointF(100, 120)), rtol=1e-6)
    qtbot.keyClick(explorer, Qt.Key.Key_H)  # follow mouse: off
    assert not explorer.actions_by_name["follow"].isChecked()
    before = state.cursor.copy()
    hover(the_map, QPointF(300, 200))
    np.testing.assert_array_equal(state.cursor, before)


def test_pan_and_zoom_change_the_view_not_the_cursor(explorer):
    the_map, state = explorer.map, explorer.state
    cursor, extent = state.cursor.copy(), state.view_extent
    drag(the_map, [QPointF(200, 200), QPointF(260, 230)], button=Qt.MouseButton.RightButton)
    (x0, x1), (y0, y1) = state.view_extent
    assert x0 < extent[0][0] and y0 > extent[1][0]  # dragged right and down: we look further left and up
    the_map.zoom(2.0)
    (zx0, zx1), _ = state.view_extent
    assert abs((zx1 - zx0) - (x1 - x0) / 2) < 1e-6
    np.testing.assert_array_equal(state.cursor, cursor)


def test_drawing_updates_the_encoding_live(explorer, mnist, qtbot):
    explorer.tools.setCurrentWidget(explorer.draw_panel)
    pad, state = explorer.draw_panel.pad, explorer.state
    positions = []
    state.drawing_changed.connect(lambda: state.drawing is None or positions.append(state.drawing.z.copy()))
    drag(pad, [pad_point(explorer, 0.5, y) for y in np.linspace(0.15, 0.85, 8)])
    assert len(positions) >= 8  # every stroke segment re-encoded, not only the finished drawing
    np.testing.assert_allclose(state.drawing.z, mnist.encode(pad.pixels()).mean, atol=1e-5)
    first = state.drawing.z.copy()
    drag(pad, [pad_point(explorer, x, 0.2) for x in np.linspace(0.3, 0.7, 5)])
    np.testing.assert_allclose(state.drawing.z, mnist.encode(pad.pixels()).mean, atol=1e-5)
    assert not np.allclose(state.drawing.z, first)
    (marker,) = [m for m in state.markers() if m.kind == "drawing"]
    np.testing.assert_array_equal(marker.z, state.drawing.z)
    np.testing.assert_array_equal(explorer.draw_panel.reconstruction.image, mnist.decode(state.drawing.z))
    qtbot.mouseClick(explorer.draw_panel.clear_button, Qt.MouseButton.LeftButton)
    assert state.drawing is None and explorer.draw_panel.reconstruction.image is None


def test_interpolation_from_clicks_runs_and_plays(explorer, mnist, qtbot):
    the_map, state = explorer.map, explorer.state
    a_point, b_point = QPointF(150, 500), QPointF(600, 150)
    click(the_map, a_point, Qt.KeyboardModifier.ShiftModifier)
    click(the_map, b_point, Qt.KeyboardModifier.ControlModifier)
    a, b = (np.float32(the_map.to_latent(p)) for p in (a_point, b_point))
    expected = mnist.interpolate(a, b, state.interp_steps)
    np.testing.assert_allclose(state.interpolation.path, expected.z, atol=1e-6)
    np.testing.assert_allclose(state.interpolation.frames, expected.images, atol=1e-6)
    panel = explorer.interpolation_panel
    assert panel.strip.count == state.interp_steps
    panel.method.setCurrentIndex(panel.method.findData("slerp"))
    assert state.interpolation.method == "slerp"
    qtbot.keyClick(explorer, Qt.Key.Key_Space)
    assert panel.timer.isActive() and explorer.tools.currentWidget() is panel
    qtbot.waitUntil(lambda: state.frame_index >= 2, timeout=5000)
    np.testing.assert_array_equal(panel.animation.image, state.interpolation.frames[state.frame_index])
    qtbot.keyClick(explorer, Qt.Key.Key_Space)
    assert not panel.timer.isActive()
    click(panel.strip, panel.strip.tile_rect(3).center())
    assert state.frame_index == 3 and panel.strip.highlighted == 3


def test_a_corrupt_image_shows_an_error_and_the_app_keeps_working(explorer, corrupt_image, mnist):
    assert not explorer.encode(corrupt_image)
    assert explorer.errors[-1].startswith("Could not encode corrupt.png: ")
    assert "corrupt.png" in explorer.statusBar().currentMessage()
    hover(explorer.map, QPointF(222, 333))
    np.testing.assert_array_equal(explorer.preview.view.image, mnist.decode(explorer.state.cursor))


def test_dropping_and_pasting_images_encodes_them(explorer, digit_png, mnist):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(digit_png))])
    held = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    # Dropped on the map: Qt hands the drag to the nearest parent that accepts drops, the window.
    enter = QDragEnterEvent(QPoint(300, 300), *held)
    QApplication.sendEvent(explorer.map, enter)
    assert enter.isAccepted()
    QApplication.sendEvent(explorer.map, QDropEvent(QPointF(300, 300), *held))
    assert [e.name for e in explorer.state.encodings] == ["three.png"], explorer.errors
    assert explorer.tools.currentWidget() is explorer.encode_panel
    np.testing.assert_allclose(explorer.state.cursor, mnist.encode(digit_png).mean, atol=1e-5)

    QApplication.clipboard().setImage(typed_digit("7"))
    explorer.actions_by_name["paste"].trigger()
    assert explorer.state.encodings[-1].name == "clipboard image"
    assert explorer.encode_panel.list.count() == 2
    np.testing.assert_array_equal(explorer.encode_panel.reconstruction.image, explorer.state.encodings[-1].reconstruction)
    explorer.encode_panel.list.setCurrentRow(0)
    np.testing.assert_array_equal(explorer.state.cursor, explorer.state.encodings[0].z)

    explorer.encode_panel.as_a.click()
    explorer.encode_panel.list.setCurrentRow(1)
    explorer.encode_panel.as_b.click()
    np.testing.assert_array_equal(explorer.state.interpolation.path[0], explorer.state.encodings[0].z)
    np.testing.assert_array_equal(explorer.state.interpolation.path[-1], explorer.state.encodings[1].z)

    QApplication.clipboard().setText("no picture here")
    explorer.paste()
    assert "clipboard holds no image" in explorer.errors[-1]


def test_switching_models(explorer, fashion, qtbot):
    combo = explorer.model_combo
    combo.setCurrentIndex(combo.findData("fashion-mnist"))
    combo.activated.emit(combo.currentIndex())
    state = explorer.state
    assert state.engine.model.name == "fashion-mnist" and "Ankle boot" in state.engine.model.class_names
    assert "fashion-mnist" in explorer.model_label.text() and "fashion-mnist" in explorer.windowTitle()
    assert explorer.provider_label.text() == f"Provider: {fashion.provider}"
    np.testing.assert_array_equal(explorer.preview.view.image, fashion.decode(state.cursor))
    hover(explorer.map, QPointF(400, 300))
    np.testing.assert_array_equal(explorer.preview.view.image, fashion.decode(state.cursor))


def test_a_bad_bundle_keeps_the_current_model(explorer, broken_bundle):
    explorer._switch_model(str(broken_bundle))
    assert "not valid JSON" in explorer.errors[-1]
    assert explorer.state.engine.model.name == "mnist"
    assert explorer.model_combo.currentData() == "mnist" and "mnist" in explorer.model_label.text()


def test_a_40_by_40_grid_is_computed_off_the_ui_thread_and_tiles_move_the_cursor(explorer, mnist, qtbot):
    panel, state = explorer.grid_panel, explorer.state
    panel.size.setValue(40)
    qtbot.keyClick(explorer, Qt.Key.Key_G)
    # The key press has returned while the grid is still decoding: the window did not wait for it.
    assert state.grid_busy and "Decoding 40 × 40" in panel.busy.text()
    qtbot.waitUntil(lambda: not state.grid_busy, timeout=30_000)
    assert state.grid.images.shape == (1600, 28, 28) and panel.view.count == 1600
    np.testing.assert_allclose(state.grid.images, mnist.manifold(40, extent=state.grid_box()).images, atol=1e-5)  # sessions with other thread counts sum in another order
    click(panel.view, panel.view.tile_rect(41 * 10).center())
    np.testing.assert_array_equal(state.cursor, state.grid.z[410])
    np.testing.assert_array_equal(explorer.preview.view.image, mnist.decode(state.grid.z[410]))


def test_keyboard_shortcuts(explorer, qtbot):
    state, the_map = explorer.state, explorer.map
    qtbot.keyClick(explorer, Qt.Key.Key_S)
    assert state.sample is not None
    np.testing.assert_array_equal(state.cursor, state.sample)
    before = state.cursor.copy()
    the_map.setFocus()
    qtbot.keyClick(explorer, Qt.Key.Key_Right)
    qtbot.keyClick(explorer, Qt.Key.Key_Up)
    (x0, x1), (y0, y1) = state.view_extent
    np.testing.assert_allclose(state.cursor - before, [0.02 * (x1 - x0), 0.02 * (y1 - y0)], rtol=1e-4)
    qtbot.keyClick(explorer, Qt.Key.Key_A)
    qtbot.keyClick(explorer, Qt.Key.Key_Left)
    qtbot.keyClick(explorer, Qt.Key.Key_B)
    assert state.interpolation is not None
    qtbot.keyClick(explorer, Qt.Key.Key_Plus)
    assert abs((state.view_extent[0][1] - state.view_extent[0][0]) - (x1 - x0) / 1.25) < 1e-6
    qtbot.keyClick(explorer, Qt.Key.Key_F)
    assert state.view_extent[0] == (x0, x1)
    qtbot.keyClick(explorer, Qt.Key.Key_F1)
    (box,) = [b for b in explorer.findChildren(QMessageBox) if b.isVisible()]
    assert "Sample" in box.text() and "Shift+click sets A" in box.text()
    box.close()


def test_higher_dims_show_sliders_and_dim_pickers(open_explorer, bundle_3d, qtbot):
    window = open_explorer(str(bundle_3d))
    preview, state = window.preview, window.state
    assert state.latent_dim == 3 and preview.dims_box.isVisibleTo(window)
    assert list(preview.sliders) == [2]
    slider, label = preview.sliders[2]
    slider.setValue(900)
    lo, hi = state.dim_range(2)
    assert abs(state.cursor[2] - (lo + 0.9 * (hi - lo))) < 1e-5
    assert label.text() == f"z[2] = {state.cursor[2]:+.2f}"
    model = runtime.load(bundle_3d, providers="cpu")
    np.testing.assert_array_equal(preview.view.image, model.decode(state.cursor))
    preview.y_dim.setCurrentIndex(2)
    assert state.dims == (0, 2) and list(preview.sliders) == [1]
    hover(window.map, QPointF(250, 250))
    x, y = window.map.to_latent(QPointF(250, 250))
    assert abs(state.cursor[0] - x) < 1e-5 and abs(state.cursor[2] - y) < 1e-5


def test_layout_and_settings_are_restored_on_restart(open_explorer, bundle_3d, settings_path):
    window = open_explorer("mnist", size=(790, 700))  # within the offscreen screen: 800 x 800
    window.grid_panel.size.setValue(33)
    window.interpolation_panel.method.setCurrentIndex(1)  # slerp
    window.neighbours_panel.count.setValue(5)
    window.uncertainty_panel.show_ellipses.setChecked(True)
    window.landscape_panel.layer.setCurrentIndex(window.landscape_panel.layer.findData("prior"))
    window._switch_model(str(bundle_3d))
    window._switch_model("mnist")
    window.move(QPoint(40, 30))
    window.close()
    assert settings_path.is_file()

    again = open_explorer(None, size=(640, 480))
    # open_explorer resized the new window; the restored geometry is what the ini holds.
    from latent_atlas.desktop_app import settings as stored
    stored.restore_window(again.settings, again)
    assert (again.width(), again.height()) == (790, 700)
    assert again.state.engine.source == "mnist" and again.state.grid_n == 33
    assert again.grid_panel.size.value() == 33 and again.state.interp_method == "slerp"
    assert again.state.neighbour_k == 5 and again.neighbours_panel.count.value() == 5
    assert again.state.uncertainty and again.uncertainty_panel.show_ellipses.isChecked()
    assert again.state.layer == "prior" and again.landscape_panel.layer.currentData() == "prior"
    assert again.state.recent_bundles == [str(bundle_3d.resolve())]
    assert again.model_combo.findData(str(bundle_3d.resolve())) >= 0


def test_an_unlabelled_bundle_shows_an_uncoloured_map_without_a_legend(open_explorer, tmp_path, mnist):
    import json
    import shutil

    from latent_atlas.desktop_app import latent_map, theme

    bundle = tmp_path / "unlabelled"
    shutil.copytree(mnist.bundle.path, bundle)
    manifest = json.loads((bundle / "bundle.json").read_text())
    manifest["dataset"]["class_names"] = []  # a dataset of your own images without labels...
    manifest["dataset"]["layout"] = "resize"  # ...preprocessed with a plain resize
    (bundle / "bundle.json").write_text(json.dumps(manifest))
    window = open_explorer(str(bundle))
    assert window.state.engine.model.class_names == [] and not window.errors
    the_map = window.map
    _, _, colours = the_map._point_pixels(1.0)
    assert (colours == latent_map.UNLABELLED_RGB).all()
    picture = the_map.grab().toImage()
    # Top right, where a legend would be drawn: only the map's background and uncoloured points.
    corner = {picture.pixelColor(x, y).getRgb()[:3] for x in range(picture.width() - 60, picture.width() - 10)
              for y in range(15, 40)}
    class_rgb = {c.getRgb()[:3] for c in theme.CLASS_COLOURS}
    assert not corner & class_rgb
    hover(the_map, QPointF(300, 200))  # decoding still follows the cursor
    np.testing.assert_array_equal(window.preview.view.image, mnist.decode(window.state.cursor))
    # Encoding a picture in the explorer preprocesses it with the bundle's layout, as `encode` does.
    picture = np.zeros((40, 80), np.uint8)
    picture[5:35, 10:30] = 255
    np.testing.assert_array_equal(window.state.engine.model.preprocess(picture), runtime.preprocess(picture, "resize"))


def test_colour_and_non_square_tiles_are_shown_and_picked(qtbot):
    """Issue 49: a colour model's images come as [N, H, W, 3], and need not be square."""
    from latent_atlas.desktop_app.imageview import TiledView, to_qimage

    rgb = np.zeros((4, 6, 3), np.float32)
    rgb[..., 0], rgb[1, 2] = 1.0, (0.0, 0.5, 1.0)
    qimage = to_qimage(rgb)
    assert (qimage.width(), qimage.height()) == (6, 4)
    assert qimage.pixelColor(0, 0).getRgb()[:3] == (255, 0, 0)
    assert qimage.pixelColor(2, 1).getRgb()[:3] == (0, 128, 255)
    view = TiledView(minimum=300)
    qtbot.addWidget(view)
    view.resize(400, 400)
    tiles = np.random.default_rng(0).random((6, 8, 12), np.float32)  # six 8 x 12 tiles, three per row
    view.set_tiles(tiles, 3, padding=1)
    assert view.tile_size == (8, 12)
    for index in range(6):
        assert view.tile_at(view.tile_rect(index).center()) == index
    rect = view.tile_rect(4)
    assert abs(rect.width() / rect.height() - 12 / 8) < 1e-6


def test_the_map_exports_as_png_and_svg_with_its_layer_and_markers(explorer, digit_png, tmp_path, qtbot):
    from PIL import Image
    from PyQt6.QtSvg import QSvgRenderer

    state = explorer.state
    state.set_uncertainty(True)
    explorer.encode(digit_png)
    state.set_layer("prior")
    qtbot.waitUntil(lambda: state.layer_result is not None, timeout=30_000)
    legend = [item[1] for item in explorer.map.legend_items()]
    assert "prior log-density (nats)" in legend and "0" in legend  # the layer's scale and the classes
    assert explorer.export_map(tmp_path / "map.png") and explorer.export_map(tmp_path / "map.svg")
    with Image.open(tmp_path / "map.png") as png:
        assert png.size == (explorer.map.width(), explorer.map.height())
    svg = (tmp_path / "map.svg").read_text()
    assert QSvgRenderer(str(tmp_path / "map.svg")).isValid()
    # Vector points (one per atlas image), the layer as an embedded picture, and the posterior's ellipses.
    assert svg.count("<circle") + svg.count("<ellipse") > len(state.engine.atlas()[0]) and "<image" in svg
    assert not explorer.export_map(tmp_path / "map.jpg")
    assert "expected a file name ending in .png or .svg" in explorer.errors[-1]


def test_the_neighbours_and_compare_panels_follow_the_cursor(explorer, fashion, qtbot):
    state = explorer.state
    explorer.tools.setCurrentWidget(explorer.neighbours_panel)
    hover(explorer.map, QPointF(300, 260))
    panel = explorer.neighbours_panel
    assert panel.view.count == len(state.neighbours.indices) == 8
    assert panel.view.captions[0] == f"{state.neighbours.labels[0]} · {state.neighbours.distances[0]:.2f}"
    click(panel.view, panel.view.tile_rect(0).center())
    np.testing.assert_array_equal(state.cursor, state.engine.atlas()[0][state.neighbours.indices[0]])
    compare = explorer.compare_panel
    explorer.tools.setCurrentWidget(compare)
    compare.choice.setCurrentIndex(compare.choice.findData("fashion-mnist"))
    compare.choice.activated.emit(compare.choice.currentIndex())
    hover(explorer.map, QPointF(200, 200))
    np.testing.assert_array_equal(compare.views["other"].image, fashion.decode(state.cursor))
    assert "fashion-mnist" in compare.metrics.text() and "test −ELBO" in compare.metrics.text()
    compare.atlases.setCurrentIndex(compare.atlases.findData("other"))
    assert state.atlases == "other"


def test_a_colour_model_shows_colour_tiles_and_no_draw_pad(open_explorer, colour_bundle, qtbot, tmp_path):
    """Issue 49: preview, grid, encodings, neighbours and the posterior's samples in colour at the model's
    size; the draw pad is for grey models, and says so in its place."""
    window = open_explorer(str(colour_bundle))
    state = window.state
    model = runtime.load(colour_bundle, providers="cpu")
    _, height, width = state.engine.image_shape
    hover(window.map, QPointF(300, 250))
    np.testing.assert_array_equal(window.preview.view.image, model.decode(state.cursor))
    assert window.preview.view.image.shape == (height, width, 3)
    assert window.preview.view._qimage.format() == window.preview.view._qimage.Format.Format_RGB888
    state.set_grid_options(n=4, source="percentiles")
    with qtbot.waitSignal(state.grid_changed, timeout=30_000):
        state.request_grid()
    assert window.grid_panel.view.tile_size == (height, width) and window.grid_panel.view.image.shape[-1] == 3
    photo = np.zeros((50, 70, 3), np.uint8)
    photo[10:40, 20:50] = (220, 40, 30)
    assert window.encode(photo, "red square") and state.encodings[-1].image.shape == (height, width, 3)
    assert f"colour, {height} × {width}" in window.encode_panel.hint.text()
    state.set_uncertainty(True)
    assert state.posterior_draws[1].shape[1:] == (height, width, 3)
    assert state.neighbours.thumbnails.shape[-1] == 3
    window.tools.setCurrentWidget(window.draw_panel)
    panel = window.draw_panel
    assert not panel.pad.isVisible() and panel.colour_note.isVisible()
    assert "Drawing is for grey models" in panel.colour_note.text()
    assert state.save("preview", tmp_path / "preview.png") and state.save("grid", tmp_path / "grid.png")


def test_a_restored_session_shows_its_view_on_the_map(explorer, tmp_path):
    state, the_map = explorer.state, explorer.map
    the_map.zoom(2.0, QPointF(200, 300))
    drag(the_map, [QPointF(300, 300), QPointF(340, 280)], button=Qt.MouseButton.RightButton)
    saved = state.view_state()
    assert state.save_session(tmp_path / "session.json")
    the_map.reset_view()
    assert state.load_session(tmp_path / "session.json"), explorer.errors
    # The same widget shows the same region: the view comes back exactly.
    np.testing.assert_allclose(np.ravel(state.view_extent), np.ravel(saved.view), atol=1e-6)
    (tmp_path / "bad.json").write_text("{")
    assert {"open_session", "save_session", "export_map", "compare"} <= set(explorer.actions_by_name)
    assert not state.load_session(tmp_path / "bad.json")
    assert explorer.errors[-1].startswith("Could not open the session bad.json")
    np.testing.assert_allclose(np.ravel(state.view_extent), np.ravel(saved.view), atol=1e-6)
