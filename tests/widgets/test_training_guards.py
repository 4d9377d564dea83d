"""What the docks refuse while a job runs on the shared project, on a read-only project, and for
an option out of range (real napari viewer under Xvfb, real method jobs)."""

from __future__ import annotations

import pytest

from napari_weaksam.cam.adl_training import AdlTraining
from napari_weaksam.jobs import MethodChoice
from napari_weaksam.methods.weakmedsam import WeakMedSamSettings
from napari_weaksam.option_ranges import option_range
from napari_weaksam.project import Project
from napari_weaksam.retrain import DecoderTraining, RetrainSettings
from napari_weaksam.sample import make_sample_project, sample_dir
from napari_weaksam.settings import get_setting
from napari_weaksam.widgets.session import ProjectBusyError, session_for
from napari_weaksam.widgets.tagging import TaggingWidget
from napari_weaksam.widgets.training import READ_ONLY, SETTING_KEY, TrainingWidget

pytestmark = pytest.mark.gui

FAST = MethodChoice.of("epsam", cam_source="adl", epochs=6, rounds=0, decoder_epochs=1)
JOB_END_MS = 120_000


def project_buttons_wait(tagging: TaggingWidget, reason: str) -> bool:
    return all(not b.isEnabled() and b.toolTip() == reason
               for b in (tagging.new_button, tagging.open_button))


def project_buttons_free(tagging: TaggingWidget) -> bool:
    return (tagging.new_button.isEnabled() and tagging.open_button.isEnabled()
            and tagging.open_button.toolTip() == "Open a project folder")


def test_nothing_closes_or_replaces_the_project_while_a_run_is_in_progress(docks, qtbot,
                                                                           tmp_path):
    viewer, tagging, training = docks
    session = session_for(viewer)
    tagging.open_project(make_sample_project(tmp_path / "sample"))
    other = make_sample_project(tmp_path / "other")
    project = tagging.project
    training._load_choice(FAST)
    training.start()
    reason = session.busy
    assert reason is not None and reason.startswith("An EP-SAM run is in progress")
    assert project_buttons_wait(tagging, reason)
    second = TrainingWidget(viewer)       # any dock of the viewer follows the session
    qtbot.addWidget(second)
    assert not second.start_button.isEnabled() and second.start_button.toolTip() == reason
    assert not second.rounds.restore_button.isEnabled()
    tagging.open_project(other)            # refused: the run keeps its project (and lock)
    tagging.close_project()
    with pytest.raises(ProjectBusyError):
        session.set_project(None)
    assert session.project is project is tagging.project is training.project
    assert project.catalog.items()         # still open
    training.stop()
    qtbot.waitUntil(lambda: training.job is None, timeout=JOB_END_MS)
    assert "Stopped" in training.status.text()
    assert session.busy is None and project_buttons_free(tagging)
    assert second.start_button.isEnabled()
    assert second.start_button.toolTip() == "Run the method on every item of the project"


def test_the_project_is_free_again_when_a_run_fails(docks, qtbot, tmp_path):
    viewer, tagging, training = docks
    tagging.set_project(Project.create(tmp_path / "no classes"))  # EP-SAM needs a class
    training._load_choice(FAST)
    training.start()
    assert project_buttons_wait(tagging, session_for(viewer).busy)
    qtbot.waitUntil(lambda: training.job is None, timeout=JOB_END_MS)
    assert "Failed" in training.status.text() and "no classes" in training.status.text()
    assert session_for(viewer).busy is None and project_buttons_free(tagging)
    assert training.start_button.isEnabled()


def test_an_import_keeps_the_project_open_until_it_ends(docks, qtbot, tmp_path):
    viewer, tagging, training = docks
    tagging.set_project(Project.create(tmp_path / "new"))
    worker = tagging.import_paths([sample_dir() / "images"])
    reason = session_for(viewer).busy
    assert reason is not None and reason.startswith("An image import is in progress")
    assert project_buttons_wait(tagging, reason) and not training.start_button.isEnabled()
    with qtbot.waitSignal(worker.finished, timeout=JOB_END_MS):
        pass
    qtbot.waitUntil(lambda: project_buttons_free(tagging), timeout=5_000)
    assert tagging.nav.total > 0 and training.start_button.isEnabled()


def test_a_read_only_project_offers_nothing_that_writes(docks, tmp_path):
    viewer, tagging, training = docks
    root = make_sample_project(tmp_path / "sample")
    with Project.open(root):               # another writer holds the lock
        tagging.open_project(root)
        assert tagging.project.read_only
        for button in (training.start_button, training.rounds.restore_button):
            assert not button.isEnabled() and button.toolTip() == READ_ONLY
        assert training.status.text() == READ_ONLY
        training.start()
        assert training.job is None and session_for(viewer).busy is None
        session_for(viewer).set_project(None)
    tagging.open_project(root)             # writable now: Start is offered again
    assert training.start_button.isEnabled() and training.status.text() == ""


@pytest.mark.parametrize("method, fields", [
    ("epsam", {"epochs": (AdlTraining, "epochs"), "rounds": (RetrainSettings, "rounds"),
               "decoder-epochs": (DecoderTraining, "epochs")}),
    ("weakmedsam", {"epochs": (WeakMedSamSettings, "epochs")})])
def test_spin_boxes_allow_what_the_settings_allow(docks, method, fields):
    _viewer, _tagging, training = docks
    training._load_choice(MethodChoice(method=method))
    for flag, (owner, name) in fields.items():
        bounds = option_range(owner, name)
        spin = training.fields().field(flag)
        assert (spin.min, spin.max) == (bounds.low, bounds.high), flag
        assert spin.value == getattr(owner(), name)     # the method's default is shown


def test_an_option_out_of_range_is_shown_as_the_settings_say_and_starts_nothing(docks,
                                                                              tmp_path):
    viewer, tagging, training = docks
    root = make_sample_project(tmp_path / "sample")
    tagging.open_project(root)
    training._load_choice(MethodChoice(method="epsam"))
    rounds = training.fields("epsam").field("rounds")
    rounds.max = 10_000                    # a box wider than the setting allows
    rounds.value = 500
    with pytest.raises(ValueError) as expected:
        RetrainSettings(rounds=500)
    training.start()
    assert training.status.text() == str(expected.value)
    assert training.job is None and session_for(viewer).busy is None
    assert training.start_button.isEnabled()
    assert get_setting(SETTING_KEY) is None          # a refused choice is not remembered
    assert tagging.project.rounds.rounds() == []
