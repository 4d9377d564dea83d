"""The Train dock in a real napari viewer: a real EP-SAM job in the background, Stop, settings."""

from __future__ import annotations

import time

import pytest

from napari_weaksam.jobs import MethodChoice
from napari_weaksam.project import LabelState, Project
from napari_weaksam.sample import make_sample_project
from napari_weaksam.settings import get_setting
from napari_weaksam.widgets.session import session_for
from napari_weaksam.widgets.tagging import TaggingWidget
from napari_weaksam.widgets.training import SETTING_KEY, TrainingWidget

pytestmark = pytest.mark.gui

FAST = MethodChoice.of("epsam", cam_source="adl", epochs=6, rounds=0, decoder_epochs=1)


@pytest.fixture
def docks(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    tagging = TaggingWidget(viewer)
    training = TrainingWidget(viewer)
    qtbot.addWidget(tagging)
    qtbot.addWidget(training)
    root = make_sample_project(tmp_path / "sample")
    tagging.open_project(root)
    yield viewer, tagging, training, root
    if training.job is not None:
        training.job.stop()
        training.job.join(60)
    tagging.close_project()


def test_the_docks_share_one_project(docks):
    viewer, tagging, training, _root = docks
    assert training.project is tagging.project is session_for(viewer).project
    assert training.start_button.isEnabled() and not training.stop_button.isEnabled()


@pytest.mark.slow
def test_a_run_in_the_background_stores_rounds_and_shows_progress(docks, qtbot, sample_copy):
    viewer, tagging, training, _root = docks
    root = sample_copy("cached")   # the same sample, embeddings cached
    tagging.open_project(root)
    training._load_choice(FAST)
    changed = []
    session_for(viewer).labels_changed.connect(lambda: changed.append(True))
    training.start()
    job = training.job
    assert training.stop_button.isEnabled() and not training.start_button.isEnabled()
    assert not tagging.open_button.isEnabled()                  # the project stays open
    assert get_setting(SETTING_KEY)["options"]["epsam"]["epochs"] == 6   # remembered
    qtbot.waitUntil(lambda: training.job is None, timeout=600_000)
    assert "Done" in training.status.text(), training.status.text()
    assert tagging.open_button.isEnabled() and tagging.new_button.isEnabled()
    assert changed
    assert set(training.loss_plot.series) == {"classifier", "preliminary"}
    assert job.stages.unplanned <= {"preliminary: IDS filter"}   # the stages it planned
    assert job.stages.position() == (7, 7)
    assert training.rounds.list.count() == 1
    assert "preliminary" in training.rounds.list.item(0).text()
    with Project.open(root, read_only=True) as project:
        assert [r.status for r in project.rounds.rounds()] == ["done"]
        assert project.labels.state_counts()["proposed"] == len(project.catalog.items())


@pytest.mark.slow
def test_stop_ends_the_job_promptly_and_leaves_the_project_consistent(docks, qtbot,
                                                                       sample_copy):
    _viewer, tagging, training, _root = docks
    root = sample_copy("cached")   # the same sample, embeddings cached
    tagging.open_project(root)
    training._load_choice(FAST)
    training.start()
    qtbot.waitUntil(lambda: training.job is not None and training.job.state.last is not None
                    and training.job.state.last.stage.startswith("preliminary"),
                    timeout=600_000)
    asked = time.monotonic()
    training.stop()
    qtbot.waitUntil(lambda: training.job is None, timeout=60_000)
    assert time.monotonic() - asked < 30
    assert "Stopped" in training.status.text()
    with Project.open(root, read_only=True) as project:
        rounds = project.rounds.rounds()
        assert [r.status for r in rounds] in ([], ["cancelled"])
        assert project.db.scalar("PRAGMA integrity_check") == "ok"
    assert training.start_button.isEnabled()


def test_choices_come_back_from_the_settings(make_napari_viewer, qtbot):
    from napari_weaksam.settings import set_setting

    set_setting(SETTING_KEY, {"method": "weakmedsam",
                              "options": {"weakmedsam": {"epochs": 7}, "epsam": {"rounds": 2}}})
    widget = TrainingWidget(make_napari_viewer())
    qtbot.addWidget(widget)
    choice = widget.choice()
    assert choice.method == "weakmedsam" and choice.flags() == {"epochs": 7}
    assert choice.options["epsam"] == {"rounds": 2}     # each method keeps its own choices
    assert widget.fields().field("epochs").value == 7
    assert not widget.fields("epsam").native.isVisible()   # rounds belong to EP-SAM
    assert not widget.start_button.isEnabled()     # no project yet
    assert "Tag tab" in widget.status.text()


def test_untouched_fields_keep_the_methods_defaults(make_napari_viewer, qtbot):
    from napari_weaksam.methods.registry import get_method
    from napari_weaksam.settings import set_setting

    # an older dock's choices: what no longer exists is left out, not refused
    set_setting(SETTING_KEY, {"method": "weakmedsam", "classifier_epochs": 0,
                              "options": {"gone": {"x": 1}, "weakmedsam": "not a dict"}})
    widget = TrainingWidget(make_napari_viewer())
    qtbot.addWidget(widget)
    assert widget.choice().options == {}
    assert widget.choice().settings() == get_method("weakmedsam").settings()
    assert widget.fields().field("epochs").value == get_method("weakmedsam").settings().epochs


@pytest.mark.slow
def test_unet_on_round_learns_from_the_selected_rounds_proposals(docks, qtbot, sample_copy):
    import numpy as np

    from napari_weaksam.segnet.run import METHOD

    _viewer, tagging, training, _root = docks
    root = sample_copy("cached")
    with Project.open(root) as project:   # a finished round: every proposal empty but one
        source = project.rounds.start_round("weakmedsam", {"stage": "test"})
        for i, item in enumerate(project.catalog.items()):
            mask = np.zeros((item.height, item.width), np.uint8)
            mask[8:40, 8:40] = i == 0
            project.labels.add_proposal(item.id, mask, method="weakmedsam", round_id=source,
                                        confidence=0.9)
        project.rounds.finish_round(source, "done")
    tagging.open_project(root)
    training.fields(METHOD).set_values({"epochs": 1, "size": 32})
    assert training.rounds.segnet_button.isEnabled()
    training.rounds.list.setCurrentRow(0)
    training.train_network_on_round()
    assert training.job is not None and not training.rounds.segnet_button.isEnabled()
    qtbot.waitUntil(lambda: training.job is None, timeout=600_000)
    assert "Done" in training.status.text(), training.status.text()
    assert training.rounds.list.count() == 2
    with Project.open(root, read_only=True) as project:
        latest = project.rounds.rounds()[-1]
        assert latest.method == METHOD and latest.status == "done"
        assert latest.params["source_round"] == source and latest.params["epochs"] == 1
        first = latest
        item = project.catalog.items()[1]
    # after a U-Net round, Retrain continues its network (on the proposals it learnt from)
    mask = np.zeros((item.height, item.width), np.uint8)
    mask[4:20, 4:20] = 1
    training.project.labels.review(item.id, LabelState.CORRECTED, mask)
    training.session.reviews_changed.emit()
    assert training.retrains() and training.retrain_method() == METHOD
    assert training.start_button.text() == "Retrain with 1 reviewed mask"
    assert not training.fields(METHOD).native.isHidden()   # its fields, not Retrain's head's
    assert training.fields("retrain").native.isHidden()
    training.start()
    qtbot.waitUntil(lambda: training.job is None, timeout=600_000)
    assert "Done" in training.status.text(), training.status.text()
    with Project.open(root, read_only=True) as project:
        latest = project.rounds.rounds()[-1]
        assert latest.method == METHOD and latest.status == "done"
        assert latest.params["warm_start_round"] == first.id
        assert latest.params["source_round"] == source
        assert latest.params["reviewed_items"] == [item.id]
