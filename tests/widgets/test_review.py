"""The Review dock in a real napari viewer (under Xvfb): layers, keys, edits, empty states."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import QEvent, Qt
from qtpy.QtGui import QKeyEvent

from napari_weaksam.io import read_image
from napari_weaksam.project import LabelState, Project
from napari_weaksam.sample import make_sample_project, sample_dir
from napari_weaksam.widgets.review import NO_PROJECT, NO_PROPOSALS, ReviewWidget
from napari_weaksam.widgets.session import session_for

pytestmark = pytest.mark.gui

HE = "adenocarcinoma_GT2001837-1-400-002"
HE2 = "adenocarcinoma_GT2001849-1-400-004"
NORMAL = "normal_GT2000000-1-400-001"
SLICES = ("brain1 z012", "brain1 z014")
CONFIDENCE = {HE: 0.8, HE2: 0.3, NORMAL: 0.95, "brain1 z012": 0.4, "brain1 z014": 0.6}


def truth(item) -> np.ndarray:
    """The sample's ground truth of the item, as a 0/1 label image."""
    if item.is_slice:
        volume = read_image(sample_dir() / "masks" / "brain1.nii.gz").data
        return (np.asarray(volume[item.display_index]) > 0).astype(np.uint8)
    return (read_image(sample_dir() / "masks" / f"{item.name}.png").data > 0).astype(np.uint8)


@pytest.fixture
def sample_root(tmp_path):
    root = make_sample_project(tmp_path / "sample")
    with Project.open(root) as project:
        for item in project.catalog.items():
            if item.name in CONFIDENCE:
                mask = truth(item)
                project.labels.add_proposal(item.id, mask, method="manual",
                                            confidence=CONFIDENCE[item.name])
                cam = np.clip(mask * 0.8 + 0.1, 0, 1).astype(np.float32)
                project.maps.add(item.id, "cam", cam, class_id=1)
        he = next(i for i in project.catalog.items() if i.name == HE)
        project.maps.add(he.id, "affinity", np.full((224, 224), 0.5, np.float32))
    return root


def open_dock(make_napari_viewer, qtbot, root) -> ReviewWidget:
    viewer = make_napari_viewer()
    widget = ReviewWidget(viewer, Project.open(root))
    qtbot.addWidget(widget)
    return widget


@pytest.fixture
def dock(make_napari_viewer, qtbot, sample_root):
    widget = open_dock(make_napari_viewer, qtbot, sample_root)
    yield widget
    session_for(widget.viewer).set_project(None)


def item_named(widget, name):
    return next(e.item for e in widget.queue.entries if e.item.name == name)


def saved(root, name):
    with Project.open(root, read_only=True) as project:
        item = next(i for i in project.catalog.items() if i.name == name)
        return project.labels.state(item.id), project.labels.final_mask(item.id)


def press(widget, key) -> None:
    widget.keyPressEvent(QKeyEvent(QEvent.Type.KeyPress, key, Qt.KeyboardModifier.NoModifier))


def test_lists_least_confident_first_with_counts(dock):
    names = [e.item.name for e in dock.queue.entries]
    assert names == [HE2, "brain1 z012", "brain1 z014", HE, NORMAL]
    assert dock.entry_list.topLevelItemCount() == 5
    first = dock.entry_list.topLevelItem(0)
    assert first.text(2) == HE2 and first.text(1) == "30%" and "to review" in first.text(0)
    assert dock.counts_label.text() == "5 to review · 0 accepted · 0 corrected · 0 rejected"
    assert dock.empty_label.isHidden() and not dock.entry_list.isHidden()
    assert "to review" in dock.state_label.text() and "30%" in dock.state_label.text()


def test_layers_of_a_2d_item(dock):
    he = item_named(dock, HE)
    dock.go_to(he.id)
    layers = dock.viewer.layers
    assert {"proposal", "your label", "CAM · tumour", "affinity"} <= {x.name for x in layers}
    assert layers.index(dock.view.layer) == 0  # the image stays at the bottom
    proposal, cam = layers["proposal"], layers["CAM · tumour"]
    assert proposal.data.shape == (224, 224) and not proposal.editable
    np.testing.assert_array_equal(proposal.data, truth(he))
    assert proposal.contour == 2                       # the proposal is an outline
    yours = layers["your label"]
    assert yours.contour == 0 and yours.opacity == pytest.approx(0.5)   # your label a fill
    assert cam.colormap.name == "weaksam cam" and cam.colormap.map([0.0])[0][3] == 0
    assert tuple(cam.contrast_limits) == (0.0, 1.0) and not cam.visible  # off by default
    assert dock.legend.visible_kinds() == []
    assert not layers["affinity"].visible
    assert not yours.data.any()
    order = [x.name for x in layers]
    assert order.index("CAM · tumour") < order.index("proposal") < order.index("your label")
    dock.layer_boxes["cam"].setChecked(True)
    assert cam.visible and dock.legend.visible_kinds() == ["cam"]   # with its colour bar
    dock.go_to(item_named(dock, HE2).id)  # reused by name, and without an affinity map
    assert layers["CAM · tumour"] is cam and cam.visible
    assert "affinity" not in layers


def test_volume_slices_show_the_whole_volume_with_every_slice_proposal(dock):
    z12, z14 = (item_named(dock, name) for name in SLICES)
    dock.go_to(z12.id)
    layers = dock.viewer.layers
    proposal, cam, yours = layers["proposal"], layers["CAM · tumour"], layers["your label"]
    image = dock.view.layer
    for layer in (proposal, cam, yours):
        assert layer.data.shape == (25, 256, 256)
        np.testing.assert_allclose(layer.scale, image.scale)
    np.testing.assert_array_equal(proposal.data[12], truth(z12))
    np.testing.assert_array_equal(proposal.data[14], truth(z14))
    assert proposal.data[12].any() and proposal.data[14].any()
    assert not proposal.data[[i for i in range(25) if i not in (12, 14)]].any()
    assert cam.data[12].any() and not cam.data[14].any()
    assert dock.view.displayed_plane() == 12
    # scrolling the volume to the other proposed slice moves the review there
    dock.viewer.dims.set_point(0, image.data_to_world([14, 0, 0])[0])
    assert dock.queue.current.item.name == "brain1 z014"
    assert layers["proposal"] is proposal and cam.data[14].any() and not cam.data[12].any()


def test_accept_and_reject_by_keys_are_saved_at_once(dock, qtbot, sample_root):
    first = dock.queue.current.item.name
    qtbot.keyClick(dock, Qt.Key.Key_A)  # a real key press on the dock
    state, mask = saved(sample_root, first)
    assert state is LabelState.ACCEPTED
    np.testing.assert_array_equal(mask, truth(item_named(dock, first)))
    second = dock.queue.current.item.name
    assert second != first
    canvas = dock.viewer.window._qt_viewer.canvas.native
    qtbot.keyClick(canvas, Qt.Key.Key_R)  # a real key press on the canvas
    assert saved(sample_root, second) == (LabelState.REJECTED, None)
    assert dock.counts_label.text() == "3 to review · 1 accepted · 0 corrected · 1 rejected"
    assert "accepted" in dock.entry_list.topLevelItem(0).text(0)
    assert "rejected" in dock.entry_list.topLevelItem(1).text(0)
    press(dock, Qt.Key.Key_P)
    press(dock, Qt.Key.Key_P)
    assert dock.queue.current.item.name == first
    press(dock, Qt.Key.Key_N)
    assert dock.queue.current.item.name == second


def test_edit_paint_and_save_a_correction_on_a_volume_slice(dock, qtbot, sample_root):
    z12 = item_named(dock, "brain1 z012")
    dock.go_to(z12.id)
    press(dock, Qt.Key.Key_E)
    yours = dock.viewer.layers["your label"]
    assert dock.editing and dock.save_button.isEnabled() and not dock.accept_button.isEnabled()
    assert dock.viewer.layers.selection.active is yours and yours.mode == "paint"
    assert yours.selected_label == 1
    np.testing.assert_array_equal(yours.data[12], truth(z12))
    press(dock, Qt.Key.Key_N)  # refused while editing
    assert dock.queue.current.item.id == z12.id
    yours.data[12, 10:30, 10:40] = 1  # what a brush stroke does
    yours.data[12, 100:110, :] = 0
    expected = np.array(yours.data[12])
    canvas = dock.viewer.window._qt_viewer.canvas.native
    qtbot.keyClick(canvas, Qt.Key.Key_E)  # E again saves, also with "your label" selected
    assert not dock.editing and yours.mode == "pan_zoom"
    state, mask = saved(sample_root, "brain1 z012")
    assert state is LabelState.CORRECTED
    np.testing.assert_array_equal(mask, expected)
    assert dock.queue.current.item.id != z12.id  # on to the next one to review
    dock.go_to(z12.id)  # the correction is shown in "your label"
    np.testing.assert_array_equal(dock.viewer.layers["your label"].data[12], expected)


def test_cancelled_edit_saves_nothing_and_new_labels_wait_for_it(dock, sample_root):
    name = dock.queue.current.item.name
    dock.edit_button.click()
    dock.viewer.layers["your label"].data[...] = 1
    extra = next(i for i in dock.project.catalog.items() if i.name == "brain1 z013")
    dock.project.labels.add_proposal(extra.id, truth(extra), method="manual", confidence=0.01)
    dock.session.labels_changed.emit()  # e.g. a round finished while editing
    assert len(dock.queue.entries) == 5 and dock.viewer.layers["your label"].data.all()
    press(dock, Qt.Key.Key_Escape)
    assert not dock.editing and dock.queue.current.item.name == name
    assert len(dock.queue.entries) == 6  # reloaded once the edit is closed
    assert saved(sample_root, name) == (LabelState.PROPOSED, None)
    assert not dock.viewer.layers["your label"].data.any()


def test_reloads_on_labels_changed_and_lists_rounds(dock):
    current = dock.queue.current.item.id
    project = dock.project
    round_id = project.rounds.start_round("manual", {"stage": "preliminary"})
    extra = next(i for i in project.catalog.items() if i.name == "brain1 z013")
    project.labels.add_proposal(extra.id, truth(extra), method="manual", confidence=0.99,
                                round_id=round_id)
    project.rounds.finish_round(round_id, "done")
    dock.session.labels_changed.emit()
    assert len(dock.queue.entries) == 6 and dock.queue.current.item.id == current
    assert dock.last_change.round_id == round_id and dock.last_change.new == 1
    assert "proposed for the first time" in dock.status_label.text()
    assert dock.round_combo.itemText(1) == f"round {round_id} · manual · preliminary"
    dock.round_combo.setCurrentIndex(1)
    assert [e.item.name for e in dock.queue.entries] == ["brain1 z013"]
    np.testing.assert_array_equal(dock.viewer.layers["proposal"].data[13], truth(extra))
    assert not dock.viewer.layers["proposal"].data[12].any()  # only that round's proposals


def test_empty_states(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    widget = ReviewWidget(viewer)
    qtbot.addWidget(widget)
    assert widget.empty_label.text() == NO_PROJECT and widget.entry_list.isHidden()
    assert not widget.accept_button.isEnabled()
    root = make_sample_project(tmp_path / "empty")
    session_for(viewer).set_project(Project.open(root))  # e.g. opened in the Tagging dock
    assert widget.empty_label.text() == NO_PROPOSALS and not widget.empty_label.isHidden()
    assert widget.counts_label.text().startswith("0 to review")
    press(widget, Qt.Key.Key_A)  # nothing to accept: no error
    session_for(viewer).set_project(None)
    assert widget.empty_label.text() == NO_PROJECT


def test_a_read_only_project_shows_why_nothing_is_saved(make_napari_viewer, qtbot, sample_root):
    viewer = make_napari_viewer()
    widget = ReviewWidget(viewer, Project.open(sample_root, read_only=True))
    qtbot.addWidget(widget)
    assert "read-only" in widget.project_label.text() and not widget.accept_button.isEnabled()
    name = widget.queue.current.item.name
    press(widget, Qt.Key.Key_A)
    assert "Not saved" in widget.status_label.text() and "read-only" in widget.status_label.text()
    press(widget, Qt.Key.Key_E)
    assert not widget.editing
    assert saved(sample_root, name) == (LabelState.PROPOSED, None)
    session_for(viewer).set_project(None)


def test_accept_after_a_newer_round_finished_saves_nothing_and_shows_the_newer_proposal(
        dock, sample_root):
    entry = dock.queue.current
    project = dock.project
    newer = np.zeros_like(truth(entry.item))
    newer[:40, :40] = 1
    round_id = project.rounds.start_round("manual", {"stage": "round 1"})
    proposal = project.labels.add_proposal(entry.item.id, newer, method="manual",
                                           round_id=round_id, confidence=0.5)
    project.rounds.finish_round(round_id, "done")  # while the run goes on: no labels_changed
    dock.accept()
    text = dock.status_label.text()
    assert entry.item.name in text and "newest proposal is shown now" in text
    assert "\n" not in text and "Traceback" not in text
    assert saved(sample_root, entry.item.name) == (LabelState.PROPOSED, None)
    current = dock.queue.current  # same item, now with the proposal a person can see
    assert current.item.id == entry.item.id and current.proposal_id == proposal.id
    np.testing.assert_array_equal(dock.viewer.layers["proposal"].data, newer)
    dock.accept()
    state, mask = saved(sample_root, entry.item.name)
    assert state is LabelState.ACCEPTED
    np.testing.assert_array_equal(mask, newer)
