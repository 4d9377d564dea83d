"""The WeakSAM panel in a real napari window (Xvfb): one current image, the right picture under
every mask, keys that work whatever layer is selected, decisions that can be undone on their own
image, a layout that fits 1366 × 768. Each test is one point of the review walkthrough."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QApplication, QPushButton

from napari_weaksam.project import LabelState, Project
from napari_weaksam.widgets.item_view import IMAGE_LAYER_META
from napari_weaksam.widgets.keymap import BOX_LAYER
from napari_weaksam.widgets.launch import open_workspace
from napari_weaksam.widgets.session import session_for

from .rounds import propose_round

pytestmark = pytest.mark.gui

HE = "adenocarcinoma_GT2001837-1-400-002"
NORMAL = "normal_GT2000000-1-400-001"
SLICE = "brain1 z012"


def square(item, top: int = 40, size: int = 30, value: int = 1) -> np.ndarray:
    mask = np.zeros((item.height, item.width), np.uint8)
    mask[top:top + size, top:top + size] = value
    return mask


def propose_by_name(project, masks: dict[str, np.ndarray], confidence: float = 0.5) -> int:
    """One finished round with the given proposals (item name → mask)."""
    items = {i.name: i.id for i in project.catalog.items()}
    return propose_round(project, {items[name]: m for name, m in masks.items()}, confidence)


@pytest.fixture
def panel(make_napari_viewer, qtbot, sample_copy):
    root = sample_copy()
    with Project.open(root) as project:
        items = {i.name: i for i in project.catalog.items()}
        propose_by_name(project, {name: square(items[name]) for name in (HE, NORMAL, SLICE)})
    viewer = make_napari_viewer()
    widget = open_workspace(viewer, root)
    widget.window_viewer = viewer     # the viewer itself (the panel holds napari's proxy)
    yield widget
    session_for(widget.viewer).set_project(None)


def canvas(panel):
    return panel.window_viewer.window._qt_viewer.canvas.native


def item(panel, name):
    return next(i for i in panel.session.project.catalog.items() if i.name == name)


def image_layers(viewer) -> list:
    return [layer for layer in viewer.layers if IMAGE_LAYER_META in layer.metadata]


def test_1_review_draws_over_the_image_it_reviews(panel):
    """Tag shows an H&E patch; Review moves to a brain slice: one image layer, the slice's, at
    the bottom, under the proposal and "your label"."""
    assert panel.tagging.nav.current.name.startswith("adenocarcinoma")
    panel.show_tab("Review")
    panel.review.go_to(item(panel, SLICE).id)
    images = image_layers(panel.viewer)
    assert len(images) == 1
    assert images[0].metadata[IMAGE_LAYER_META] == item(panel, SLICE).source_id
    names = [layer.name for layer in panel.viewer.layers]
    assert names.index(images[0].name) == 0
    assert names.index("proposal") < names.index("your label")


def test_2_a_tag_key_tags_the_image_on_the_canvas(panel, qtbot):
    """Review moved to the slice: pressing 1 on the canvas tags the slice, not the image Tag had."""
    panel.show_tab("Review")
    slice_item = item(panel, SLICE)
    panel.review.go_to(slice_item.id)
    assert panel.tagging.nav.current.id == slice_item.id
    project = panel.session.project
    before = project.catalog.tags(slice_item.id)
    qtbot.keyClick(canvas(panel), Qt.Key.Key_1)
    assert project.catalog.tags(slice_item.id) == before ^ {project.catalog.classes()[0].id}
    qtbot.keyClick(canvas(panel), Qt.Key.Key_N)   # N moves in the current tab's list (Review)
    assert panel.review.queue.current.item.id != slice_item.id
    assert panel.session.current_item.id == panel.review.queue.current.item.id
    assert panel.tagging.nav.current.id == panel.session.current_item.id


def test_3_an_accepted_image_shows_what_was_accepted_after_a_new_round(panel):
    project = panel.session.project
    he = item(panel, HE)
    panel.show_tab("Review")
    panel.review.go_to(he.id)
    panel.review.accept()
    propose_by_name(project, {HE: square(he, top=120, size=60)}, confidence=0.99)
    panel.session.labels_changed.emit()
    panel.review.go_to(he.id)
    layers = panel.viewer.layers
    np.testing.assert_array_equal(layers["your label"].data, square(he))
    np.testing.assert_array_equal(layers["proposal"].data, square(he))
    assert "50%" in panel.review.state_label.text() and "99%" not in panel.review.state_label.text()
    assert "accepted" in panel.review.state_label.text()


def test_4_the_review_shows_tags_and_flags_a_proposal_on_a_no_finding_image(panel):
    project = panel.session.project
    normal = item(panel, NORMAL)
    project.catalog.set_tags(normal.id, set())
    panel.show_tab("Review")
    panel.review.go_to(normal.id)
    assert "no finding" in panel.review.tags_label.text()
    assert "⚠" in panel.review.tags_label.text()
    he = item(panel, HE)
    project.catalog.set_tags(he.id, {project.catalog.classes()[0].id})
    panel.review.go_to(he.id)
    assert "tumour" in panel.review.tags_label.text() and "⚠" not in panel.review.tags_label.text()


@pytest.mark.parametrize("selected", ["image", "proposal", "your label", BOX_LAYER])
def test_6_the_plugin_keys_work_whatever_plugin_layer_is_selected(panel, qtbot, selected):
    panel.show_tab("Review")
    he = item(panel, HE)
    panel.review.go_to(he.id)
    viewer = panel.viewer
    if selected == BOX_LAYER:
        panel.review.box_tool.start()
    layer = image_layers(viewer)[0] if selected == "image" else viewer.layers[selected]
    viewer.layers.selection.active = layer
    mode = layer.mode
    project = panel.session.project
    before = project.catalog.tags(he.id)
    qtbot.keyClick(canvas(panel), Qt.Key.Key_1)
    assert project.catalog.tags(he.id) == before ^ {project.catalog.classes()[0].id}
    assert layer.mode == mode                     # not napari's layer mode key
    qtbot.keyClick(canvas(panel), Qt.Key.Key_A)
    assert project.labels.state(he.id) is LabelState.ACCEPTED


def test_6_while_editing_the_painted_layer_keeps_napari_keys_but_e_saves(panel, qtbot):
    panel.show_tab("Review")
    he = item(panel, HE)
    panel.review.go_to(he.id)
    qtbot.keyClick(canvas(panel), Qt.Key.Key_E)
    yours = panel.window_viewer.layers["your label"]
    assert panel.review.editing and panel.window_viewer.layers.selection.active is yours
    qtbot.keyClick(canvas(panel), Qt.Key.Key_4)   # napari's key on the painted layer: fill
    assert yours.mode == "fill"
    panel.tagging.next()                          # the canvas stays on the edited image
    assert panel.session.current_item.id == he.id
    qtbot.keyClick(canvas(panel), Qt.Key.Key_E)
    assert not panel.review.editing
    assert panel.session.project.labels.state(he.id) is LabelState.CORRECTED


def test_7_the_panel_fits_1366_by_768_and_opens_once(panel, qtbot):
    window = panel.window_viewer.window._qt_window
    window.showNormal()
    window.resize(1366, 768)
    qtbot.wait(50)
    for name in ("Tag", "Train", "Review", "Review while editing"):
        if name == "Review while editing":
            panel.review.go_to(item(panel, HE).id)
            panel.review.edit()
            panel.review.draw_boxes()
        panel.show_tab(name.split()[0])
        QApplication.processEvents()
        tab = panel.tabs.currentWidget()
        buttons = [b for b in tab.findChildren(QPushButton) if b.isVisibleTo(tab)]
        assert buttons
        assert tab.widget().width() <= tab.viewport().width() + 1, name   # nothing cut off
        for button in buttons:
            assert not button.visibleRegion().isEmpty(), (
                name, button.text(), button.mapTo(tab, button.rect().bottomRight()), tab.size())
            assert button.height() >= button.fontMetrics().height() + 4, (name, button.text())
            assert button.fontMetrics().horizontalAdvance(button.text()) <= button.width(), (
                name, button.text(), button.width())
    panel.review.cancel_edit()
    assert window.height() <= 768
    again = open_workspace(panel.viewer, panel.session.project.root)
    assert again is panel
    docks = [name for name in panel.viewer.window.dock_widgets if "napari-weaksam" in name]
    assert docks == ["WeakSAM (napari-weaksam)"]


def test_8_undo_acts_on_the_decided_image_and_redo_brings_the_correction_back(panel, qtbot):
    panel.show_tab("Review")
    review = panel.review
    he = item(panel, HE)
    review.go_to(he.id)
    review.edit()
    painted = square(he, top=100, size=20, value=1)
    review.layers.set_your_label_plane(painted)
    review.save_edit()
    assert review.queue.current.item.id != he.id            # the dock moved on
    qtbot.keyClick(canvas(panel), Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    project = panel.session.project
    assert project.labels.state(he.id) is LabelState.PROPOSED
    assert review.queue.current.item.id == he.id            # back on the undone image
    assert "Undone" in review.status_label.text()
    qtbot.keyClick(canvas(panel), Qt.Key.Key_Z,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    np.testing.assert_array_equal(project.labels.final_mask(he.id), painted)
    np.testing.assert_array_equal(panel.viewer.layers["your label"].data, painted)


def test_10_windows_fit_the_modality(panel):
    tagging = panel.tagging
    tagging.go_to(item(panel, HE).id)
    assert not tagging.window_combo.isEnabled()               # H&E: colour, no window
    tagging.go_to(item(panel, SLICE).id)
    names = [tagging.window_combo.itemText(i) for i in range(tagging.window_combo.count())]
    assert names == ["auto"]                                 # MR: no CT windows


def test_11_round_shown_new_proposals_announced_and_empty_negatives_accepted(panel, qtbot):
    project = panel.session.project
    normal = item(panel, NORMAL)
    project.catalog.set_tags(normal.id, set())
    panel.show_tab("Review")
    review = panel.review
    review.go_to(normal.id)
    first = review.queue.current.round_id
    assert f"round #{first}" in review.state_label.text()
    newer = propose_by_name(project, {NORMAL: np.zeros((normal.height, normal.width), np.uint8)},
                            confidence=1.0)
    project.labels.add_proposal(item(panel, HE).id, square(item(panel, HE)), method="manual")
    panel.session.labels_changed.emit()
    assert "2 new proposals" in review.status_label.text()
    review.go_to(normal.id)
    assert f"round #{newer}" in review.state_label.text()
    assert f"vs round #{first}: +0 px, −900 px" in review.state_label.text()   # what changed
    qtbot.keyClick(canvas(panel), Qt.Key.Key_A, Qt.KeyboardModifier.ShiftModifier)
    assert project.labels.state(normal.id) is LabelState.ACCEPTED
    assert "Accepted 1 empty" in review.status_label.text()


def test_12_boxes_in_edit_mode_paint_your_label_from_the_cached_embedding(
        panel, qtbot, monkeypatch):
    monkeypatch.setenv("WEAKSAM_INLINE", "1")
    review = panel.review
    review.box_tool.inline = True
    panel.show_tab("Review")
    he = item(panel, HE)
    review.go_to(he.id)
    review.edit()
    review.layers.set_your_label_plane(np.zeros((he.height, he.width), np.uint8))
    qtbot.keyClick(canvas(panel), Qt.Key.Key_B)
    tool = review.box_tool
    assert tool.labels_combo.currentText() == "your label"
    shapes = panel.viewer.layers[BOX_LAYER]
    shapes.add_rectangles(np.array([[60, 60], [60, 160], [160, 160], [160, 60]], float))
    assert tool.cache_hits == 1                                # no encoding: the project's cache
    assert panel.viewer.layers["your label"].data.any()
    review.save_edit()
    assert BOX_LAYER not in panel.viewer.layers
    assert panel.session.project.labels.final_mask(he.id).any()


def test_the_shortcut_sheet_lists_every_key_and_opens_from_the_canvas(panel, qtbot):
    panel.session.keys.press("Shift-/")
    dialog = panel.keys_dialog
    assert dialog.isVisible()
    rows = dict(panel.session.keys.sheet())
    assert {"1", "0", "U", "A", "R", "E", "B", "Esc", "Ctrl+Z", "Ctrl+Shift+Z", "Shift+A",
            "?"} <= set(rows)
    panel.show_tab("Tag")
    assert dict(panel.session.keys.sheet())["N"] == "next image"
    dialog.close()
