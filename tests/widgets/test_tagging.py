"""The Tagging dock in a real napari viewer (under Xvfb), driven by keys."""

from __future__ import annotations

import pytest
from qtpy.QtCore import Qt

from napari_weaksam.project import Project
from napari_weaksam.sample import make_sample_project
from napari_weaksam.widgets.tagging import TaggingWidget

pytestmark = pytest.mark.gui


@pytest.fixture
def sample_root(tmp_path):
    return make_sample_project(tmp_path / "sample")


@pytest.fixture
def dock(make_napari_viewer, qtbot, sample_root):
    viewer = make_napari_viewer()
    widget = TaggingWidget(viewer)
    qtbot.addWidget(widget)
    widget.open_project(sample_root)
    yield widget
    widget.close_project()


def saved_tags(root, name):
    with Project.open(root, read_only=True) as project:
        item = next(i for i in project.catalog.items() if i.name == name)
        names = {c.id: c.name for c in project.catalog.classes()}
        return item.tagged, {names[c] for c in project.catalog.tags(item.id)}


def test_opens_sample_on_first_item_with_its_image(dock):
    first = dock.nav.current
    assert first is not None and first.name.startswith("adenocarcinoma_")
    assert dock.view.layer is not None and dock.view.layer.rgb
    assert dock.view.layer.data.shape == (224, 224, 3)
    assert "tumour" in dock.class_list.item(0).text()


def test_digit_key_toggles_class_and_saves_at_once(dock, qtbot, sample_root):
    name = dock.nav.current.name  # tagged tumour in the sample
    qtbot.keyClick(dock, Qt.Key.Key_1)
    assert saved_tags(sample_root, name) == (True, set())
    qtbot.keyClick(dock, Qt.Key.Key_1)
    assert saved_tags(sample_root, name) == (True, {"tumour"})
    assert dock.tag_boxes[dock.nav.classes[0].id].isChecked()


def test_zero_marks_no_finding_and_advances(dock, qtbot, sample_root):
    name = dock.nav.current.name
    qtbot.keyClick(dock, Qt.Key.Key_0)
    assert saved_tags(sample_root, name) == (True, set())
    assert dock.nav.current.name != name
    assert "no finding" in dock.class_list.item(1).text()


def test_navigation_keys_move_and_show_volume_slices(dock, qtbot):
    names = [i.name for i in dock.nav.items]
    qtbot.keyClick(dock, Qt.Key.Key_N)
    qtbot.keyClick(dock, Qt.Key.Key_Right)
    assert dock.nav.current.name == names[2]
    qtbot.keyClick(dock, Qt.Key.Key_P)
    assert dock.nav.current.name == names[1]
    brain = next(i for i in dock.nav.items if i.name == "brain1 z012")
    dock.go_to(brain.id)
    assert dock.view.layer.data.shape[0] == 25  # the whole volume is shown
    assert dock.view.displayed_plane() == brain.display_index
    assert dock.view.layer.scale[0] == pytest.approx(6.5, abs=0.01)


def test_volume_slices_stay_right_with_a_layer_of_another_scale(dock):
    brain = next(i for i in dock.nav.items if i.name == "brain1 z012")
    dock.go_to(brain.id)
    dock.viewer.add_shapes(name="boxes")  # unit scale: napari's slider step becomes 1 mm
    other = next(i for i in dock.nav.items if i.name == "brain1 z020")
    dock.go_to(other.id)
    assert dock.view.displayed_plane() == other.display_index
    world_z = dock.view.layer.data_to_world([other.display_index, 0, 0])[0]
    assert dock.viewer.dims.point[0] == pytest.approx(world_z)


def test_scrolling_the_volume_moves_to_that_slice(dock):
    brain = next(i for i in dock.nav.items if i.name == "brain1 z012")
    dock.go_to(brain.id)
    world_z = dock.view.layer.data_to_world([brain.display_index + 3, 0, 0])[0]
    dock.viewer.dims.set_point(0, world_z)
    assert dock.nav.current.display_index == brain.display_index + 3
    assert dock.nav.current.source_id == brain.source_id


def test_u_goes_to_next_untagged(dock, qtbot, sample_root):
    with Project.open(sample_root, read_only=True) as project:
        untagged_name = project.catalog.items()[5].name
    item = dock.nav.items[5]
    dock.project.catalog.clear_tags(item.id)
    dock.nav.load(dock.project)
    qtbot.keyClick(dock, Qt.Key.Key_U)
    assert dock.nav.current.name == untagged_name
    assert "Not tagged" in dock.state_label.text()


def test_filter_and_new_class_with_counts(dock, qtbot):
    dock.add_class("necrosis")
    assert [c.name for c in dock.nav.classes] == ["tumour", "necrosis"]
    qtbot.keyClick(dock, Qt.Key.Key_2)
    dock.filter_combo.setCurrentIndex(dock.filter_combo.findData(
        f"class:{dock.nav.classes[1].id}"))
    assert dock.nav.visible_count == 1
    assert "necrosis — 1 images" in dock.class_list.item(1).text()
    dock.rename_class(dock.nav.classes[1].id, "haemorrhage")
    assert dock.nav.classes[1].name == "haemorrhage"


def test_keys_on_the_canvas_reach_the_dock(dock, qtbot, sample_root):
    canvas = dock.viewer.window._qt_viewer.canvas.native
    first = dock.nav.current.name
    qtbot.keyClick(canvas, Qt.Key.Key_N)
    assert dock.nav.current.name != first
    second = dock.nav.current.name
    qtbot.keyClick(canvas, Qt.Key.Key_0)
    assert saved_tags(sample_root, second) == (True, set())
    qtbot.keyClick(canvas, Qt.Key.Key_P)
    qtbot.keyClick(canvas, Qt.Key.Key_P)
    assert dock.nav.current.name == first


def test_project_locked_by_another_process_opens_read_only(make_napari_viewer, qtbot,
                                                            sample_root):
    import subprocess
    import sys

    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from napari_weaksam.project import Project; "
         f"p = Project.open({str(sample_root)!r}); print('ready', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        widget = TaggingWidget(make_napari_viewer())
        qtbot.addWidget(widget)
        widget.open_project(sample_root)
        assert widget.project is not None and widget.project.read_only
        assert "read-only" in widget.project_label.text()
        before = saved_tags(sample_root, widget.nav.current.name)
        qtbot.keyClick(widget, Qt.Key.Key_1)  # refused, nothing changes
        assert saved_tags(sample_root, widget.nav.current.name) == before
        widget.close_project()
    finally:
        holder.kill()
        holder.wait()


def test_napari_sample_opens_the_sample_project_in_the_dock(make_napari_viewer, monkeypatch,
                                                            tmp_path, qtbot):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    viewer = make_napari_viewer()
    viewer.open_sample("napari-weaksam", "sample_project")
    qtbot.waitUntil(lambda: "WeakSAM (napari-weaksam)" in viewer.window.dock_widgets)
    widget = viewer.window.dock_widgets["WeakSAM (napari-weaksam)"].tagging
    assert widget.project is not None
    assert len(viewer.layers) == 1  # the sample's layer was adopted, not duplicated
    assert widget.project.root.is_relative_to(tmp_path / "cache")
    assert widget.nav.total == 33 and widget.view.layer is not None
    widget.close_project()
