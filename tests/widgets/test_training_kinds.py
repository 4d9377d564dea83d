"""The Train dock follows the project's kind of image (real napari viewer under Xvfb): the method
measured best for it, that kind's option values in what Start runs, a line saying so, the method
a person picked for a kind remembered, and a field the person set kept when the defaults move."""

from __future__ import annotations

import pytest

from napari_weaksam.jobs import MethodChoice
from napari_weaksam.methods.registry import get_method
from napari_weaksam.project import Project
from napari_weaksam.project.importer import import_images
from napari_weaksam.sample import make_sample_project, sample_dir
from napari_weaksam.widgets.option_fields import OptionFields
from napari_weaksam.widgets.session import session_for
from napari_weaksam.widgets.training import TrainingWidget


def stained_project(root) -> Project:
    """The sample's eight H&E patches alone."""
    project = Project.create(root)
    import_images(project, sorted((sample_dir() / "images").glob("*.png")), copy=True)
    return project

pytestmark = pytest.mark.gui


def pick(training: TrainingWidget, method: str) -> None:
    """Choose ``method`` as a person does (the combo's ``activated``)."""
    combo = training.method_combo
    combo.setCurrentIndex(combo.findData(method))
    combo.activated.emit(combo.currentIndex())


def test_a_radiology_project_gets_weakmedsam_and_epsam_with_weakmedsams_cams(docks, tmp_path):
    viewer, _tagging, training = docks
    session_for(viewer).set_project(Project.open(make_sample_project(tmp_path / "sample")))
    assert training.method_combo.currentData() == "weakmedsam"
    box = training.method_box
    assert box.title() == "Method · mostly radiology images (MR/CT), 25 of 33"
    assert box.toolTip().endswith("which most are: the method measured best for them.")
    pick(training, "epsam")
    assert training.fields().field("cam-source").value == "weakmedsam"   # shown, changeable
    assert training.choice().settings().cam_source == "weakmedsam"
    assert "classifiers × " in training.plan_label.text()           # WeakMedSAM's, not ADL's
    assert "cam-source weakmedsam (ADL's CAM covers the whole brain" in box.toolTip()  # why
    assert "(set here, or weaksam run --cam-source)" in box.toolTip()
    training.fields().field("cam-source").value = "adl"             # the person's choice wins
    assert training.choice().settings().cam_source == "adl"
    assert training.plan_label.text().startswith("ADL classifier: ")
    assert "ADL's CAM" not in box.toolTip()


def test_a_stained_project_gets_epsam_and_the_person_s_pick_per_kind_is_kept(docks, tmp_path):
    viewer, _tagging, training = docks
    session = session_for(viewer)
    mr_root = make_sample_project(tmp_path / "sample")
    stained_project(tmp_path / "stained").close()
    session.set_project(Project.open(tmp_path / "stained"))
    assert training.method_combo.currentData() == "epsam"
    assert training.method_box.title() == "Method · stained tissue (H&E)"
    assert training.choice().settings().cam_source == "adl"
    assert training.plan_label.text().startswith("ADL classifier: ")
    training.method_combo.setCurrentIndex(training.method_combo.findData("weakmedsam"))
    assert training.fields().field("cam-input").value == "embedding"
    assert training.choice().settings().cam_input == "embedding"
    session.set_project(Project.open(mr_root))
    assert training.method_combo.currentData() == "weakmedsam"   # the program moved it: not kept
    pick(training, "sammix")
    assert training.method_about.text().endswith(
        "On radiology images (MR/CT): from the tags alone it is below WeakMedSAM.")
    assert training.fields().field("trunk").value == "local"      # the kind's classifier
    assert training.plan_label.text().startswith("Tag classifier (local CNN): ")
    session.set_project(Project.open(tmp_path / "stained"))
    assert training.method_combo.currentData() == "epsam"
    session.set_project(Project.open(mr_root))
    assert training.method_combo.currentData() == "sammix"
    remembered = MethodChoice.from_dict(vars(training.choice()))
    assert remembered.methods_by_kind == {"radiology": "sammix"}


def test_an_import_sets_the_kind_of_a_new_project(docks, tmp_path, qtbot):
    viewer, tagging, training = docks
    session_for(viewer).set_project(Project.create(tmp_path / "new"))
    assert training.kind is None
    assert training.method_about.text() == get_method(training.method_combo.currentData()).summary
    tagging.import_paths(sorted((sample_dir() / "images").glob("*.png")))
    qtbot.waitUntil(lambda: session_for(viewer).busy is None and training.kind is not None,
                    timeout=60_000)
    assert training.kind_name == "stained"
    assert training.method_combo.currentData() == "epsam"


def test_a_field_the_person_set_stays_when_the_kinds_defaults_move(qtbot):
    options = get_method("epsam").options()
    fields = OptionFields(options, ("epochs", "rounds"))
    fields.set_defaults({"rounds": 5})               # a kind's value for a field shown
    assert fields.field("rounds").value == 5 and fields.values() == {}
    fields.field("epochs").value = 9                 # the person's
    fields.set_defaults({})
    assert fields.field("rounds").value == options["rounds"][0].default
    assert fields.values() == {"epochs": 9}
    fields.set_values({"rounds": 2})                 # a remembered choice
    fields.set_defaults({"rounds": 5})
    assert fields.field("rounds").value == 2 and fields.values() == {"rounds": 2}
