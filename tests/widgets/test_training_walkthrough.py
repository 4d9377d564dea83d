"""The Train dock says what it will do and where it is (real napari viewer under Xvfb): the rounds
list after a reopen, going back only to a selected round, the plan before Start, "stage k of n"
and the whole run's time left, the bar after Stop, one loss curve per ensemble member, and a dock
that fits 340 × 700 px."""

from __future__ import annotations

import gc
import re

import pytest
from napari.utils._proxies import PublicOnlyProxy
from qtpy.QtCore import QPoint, QRect
from qtpy.QtWidgets import QPushButton, QWidget

from napari_weaksam.jobs import BackgroundJob, MethodChoice
from napari_weaksam.method_settings import WeakMedSamSettings
from napari_weaksam.methods.context import RunContext
from napari_weaksam.methods.registry import get_method
from napari_weaksam.methods.weakmedsam import run_weakmedsam
from napari_weaksam.project import Project
from napari_weaksam.sample import make_sample_project
from napari_weaksam.training_plan import floored_epochs, plan_text, planned_stages, project_size
from napari_weaksam.widgets.rounds_box import SELECT_ROUND
from napari_weaksam.widgets.session import session_for
from napari_weaksam.widgets.training import READ_ONLY, TrainingWidget

pytestmark = pytest.mark.gui

JOB_END_MS = 300_000
DOCK_SIZE = (340, 700)
STOPPED = "Stopped. Finished rounds are kept; the current one is marked cancelled."


def project_with_rounds(root, count: int = 2):
    """The sample project with ``count`` finished rounds in its log."""
    make_sample_project(root)
    with Project.open(root) as project:
        for number in range(count):
            round_id = project.rounds.start_round("epsam", {"stage": f"round {number}"})
            project.rounds.finish_round(round_id, "done")
    return root


def dock(viewer, qtbot) -> TrainingWidget:
    widget = TrainingWidget(viewer)
    qtbot.addWidget(widget)
    return widget


def shown(widget: QWidget, qtbot) -> QWidget:
    widget.resize(*DOCK_SIZE)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def place(widget: QWidget, top: QWidget) -> QRect:
    return QRect(widget.mapTo(top, QPoint(0, 0)), widget.size())


# -- 1. rounds ---------------------------------------------------------------------------------
def test_the_rounds_list_is_filled_when_a_project_is_reopened(make_napari_viewer, qtbot,
                                                              tmp_path):
    root = project_with_rounds(tmp_path / "sample")
    viewer = make_napari_viewer()
    training = dock(viewer, qtbot)
    session = session_for(viewer)
    session.set_project(Project.open(root))
    assert training.rounds.list.count() == 2
    session.set_project(None)
    assert training.rounds.list.count() == 0
    session.set_project(Project.open(root))
    assert training.rounds.list.count() == 2
    later = dock(viewer, qtbot)             # a dock made once the project is open
    assert later.project is session.project and later.rounds.list.count() == 2
    session.set_project(None)


def test_a_dock_finds_the_session_whichever_proxy_asked_first(make_napari_viewer, qtbot,
                                                               tmp_path):
    """napari hands each dock its own proxy of the viewer: the first one being collected must
    not make the viewer's later docks start a session of their own, without the project."""
    root = project_with_rounds(tmp_path / "sample")
    viewer = make_napari_viewer()
    session = session_for(PublicOnlyProxy(viewer))
    session.set_project(Project.open(root))
    gc.collect()
    training = dock(PublicOnlyProxy(viewer), qtbot)
    assert training.session is session and training.rounds.list.count() == 2
    session.set_project(None)


def test_going_back_is_offered_only_for_a_selected_round(make_napari_viewer, qtbot, tmp_path):
    root = project_with_rounds(tmp_path / "sample")
    viewer = make_napari_viewer()
    training = dock(viewer, qtbot)
    session_for(viewer).set_project(Project.open(root))
    button = training.rounds.restore_button
    assert not button.isEnabled() and button.toolTip() == SELECT_ROUND
    training.rounds.list.setCurrentRow(1)
    assert button.isEnabled()
    training.rounds.list.clearSelection()
    assert not button.isEnabled()
    session_for(viewer).set_project(None)
    with Project.open(root):                 # another writer: read-only here
        session_for(viewer).set_project(Project.open(root, read_only=True))
        training.rounds.list.setCurrentRow(0)
        assert not button.isEnabled() and button.toolTip() == READ_ONLY
        session_for(viewer).set_project(None)


# -- 2. the plan before Start ------------------------------------------------------------------
def test_the_plan_says_what_will_really_train(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    training = dock(viewer, qtbot)
    session_for(viewer).set_project(Project.open(make_sample_project(tmp_path / "sample")))
    size = project_size(training.project)
    training._load_choice(MethodChoice.of("weakmedsam", epochs=3))
    settings = WeakMedSamSettings(epochs=3)
    epochs = floored_epochs(3, settings.min_steps, settings.batch_size, size.tagged)
    assert epochs > 3                                        # the sample is small: a floor
    text = training.plan_label.text()
    assert text.startswith(f"{settings.ensemble} classifiers × {epochs} epochs")
    assert f"pseudo-labels for {size.items} images" in text
    assert text == plan_text(training.choice().settings(), size)
    training.fields().field("epochs").value = epochs + 10   # every change is shown at once
    assert training.plan_label.text().startswith(f"{settings.ensemble} classifiers × "
                                                 f"{epochs + 10} epochs on")
    training.method_combo.setCurrentIndex(training.method_combo.findData("epsam"))
    training.fields().field("rounds").value = 2
    training.fields().field("decoder-epochs").value = 7
    assert "preliminary + 2 rounds × 7 decoder epochs" in training.plan_label.text()
    # each method keeps its own; EP-SAM on radiology images takes its CAMs from WeakMedSAM's
    # classifier (methods/image_kinds.py), with its own default epochs
    own = floored_epochs(settings.epochs, settings.min_steps, settings.batch_size, size.tagged)
    assert training.plan_label.text().startswith(f"{settings.ensemble} classifiers × {own} ")
    session_for(viewer).set_project(None)
    assert "every image" in training.plan_label.text()


# -- 3, 4. progress through the stages, and Stop ------------------------------------------------
def watch_status(training: TrainingWidget, seen: list[str]):
    """A waitUntil condition that notes every status line until the job has ended."""
    def ended() -> bool:
        if not seen or seen[-1] != training.status.text():
            seen.append(training.status.text())
        return training.job is None
    return ended


@pytest.mark.slow
def test_the_bar_names_the_stage_and_shows_stopped_after_stop(make_napari_viewer, qtbot,
                                                               sample_copy):
    viewer = make_napari_viewer()
    training = dock(viewer, qtbot)
    session_for(viewer).set_project(Project.open(sample_copy()))
    training._load_choice(MethodChoice(method="weakmedsam"))
    training.start()
    stages = len(planned_stages(training.choice().settings()))
    qtbot.waitUntil(lambda: training.status.text().startswith(f"stage 2 of {stages} · "
                                                              "embedding · "), timeout=JOB_END_MS)
    tagged_with_a_class = sum(map(bool, training.project.catalog.all_tags().values()))
    assert re.fullmatch(rf"stage 2 of {stages} · embedding · \d+/{tagged_with_a_class}"
                        r"( · about .+ left( \(total\)| in this stage))?",
                        training.status.text())
    assert training.progress_bar.text().startswith(f"stage 2/{stages} · ")
    training.stop()
    qtbot.waitUntil(lambda: training.job is None, timeout=60_000)
    assert training.status.text().startswith("Stopped")
    bar = training.progress_bar
    assert (bar.value(), bar.text()) == (0, "stopped")
    session_for(viewer).set_project(None)


def test_a_long_message_keeps_its_own_rows_above_the_loss_curve(make_napari_viewer, qtbot):
    training = shown(dock(make_napari_viewer(), qtbot), qtbot)
    long = " ".join([STOPPED] * 6)
    training.say(long)
    qtbot.wait(50)
    label = training.status
    status, plot = place(label, training), place(training.loss_plot, training)
    assert status.height() >= label.heightForWidth(label.width())   # every line it shows
    assert not status.intersects(plot) and status.bottom() < plot.top()
    assert training.height() == DOCK_SIZE[1]                          # and the dock still fits
    assert label.text().endswith(" …") and label.toolTip() == long   # cut; whole as its tip
    training.say(STOPPED)
    assert label.text() == STOPPED and label.toolTip() == ""


# -- 3, 5. a real run: stages, time left, one loss curve per member ------------------------------
@pytest.mark.slow
def test_a_run_shows_its_stages_and_one_loss_curve_per_member(make_napari_viewer, qtbot,
                                                               sample_copy, litemedsam):
    viewer = make_napari_viewer()
    training = dock(viewer, qtbot)
    session_for(viewer).set_project(Project.open(sample_copy()))
    project = training.project
    settings = WeakMedSamSettings(epochs=2, min_steps=0, ensemble=2, save_maps=False)
    job = BackgroundJob(lambda progress, cancel: run_weakmedsam(
        RunContext(project, litemedsam, progress, cancel), settings),
        "weakmedsam", planned_stages(settings)[1:])   # no model to load: it is loaded already
    training.follow_job(job)
    rounds_shown_while_running = []
    training.session.labels_changed.connect(
        lambda: rounds_shown_while_running.append(training.job is not None
                                                  and bool(project.rounds.rounds())))
    seen: list[str] = []
    qtbot.waitUntil(watch_status(training, seen), timeout=JOB_END_MS)
    assert training.status.text().startswith("Done"), training.status.text()
    assert job.stages.unplanned == set()
    assert any(line.startswith("stage 3 of 5 · training · ") for line in seen), seen
    assert any(re.match(r"stage 4 of 5 · pseudo-labels · \d+/33 · about \d+ s left in this "
                        r"stage", line) for line in seen), seen
    # the round is stored before the rest is encoded for Retrain: the Review tab shows it then
    assert "embedding: for Retrain" in job.stages.started
    assert True in rounds_shown_while_running
    assert {name: len(losses) for name, losses in training.loss_plot.series.items()} == {
        "classifier 1": 2, "classifier 2": 2}
    assert len(training.loss_plot.axes.lines) == 2
    session_for(viewer).set_project(None)


# -- 6. short method names, and a dock that fits 340 × 700 -----------------------------------------
def test_the_dock_fits_340_by_700_without_clipping_a_button(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    training = dock(viewer, qtbot)
    session_for(viewer).set_project(Project.open(make_sample_project(tmp_path / "sample")))
    combo = training.method_combo
    assert [combo.itemText(i) for i in range(combo.count())] == ["EP-SAM", "WeakMedSAM",
                                                                  "SAM-Mix"]
    shown(training, qtbot)
    for method in ("weakmedsam", "epsam", "sammix"):
        combo.setCurrentIndex(combo.findData(method))
        assert training.method_about.text().startswith(get_method(method).summary)
        assert training.method_box.title() == "Method · mostly radiology images (MR/CT), 25 of 33"
        assert training.method_about.wordWrap()
        training.status.setText(STOPPED)
        training.start_button.setText("Retrain with 999 reviewed masks")   # its longest text
        qtbot.wait(50)
        assert training.size().width() == DOCK_SIZE[0]
        assert training.size().height() == DOCK_SIZE[1]
        assert combo.width() >= combo.fontMetrics().horizontalAdvance(combo.currentText())
        inside = training.rect()
        for button in training.findChildren(QPushButton):
            assert not button.visibleRegion().isEmpty(), button.text()
            assert inside.contains(place(button, training)), button.text()
            text = button.fontMetrics().horizontalAdvance(button.text())
            assert text < button.width(), button.text()
    session_for(viewer).set_project(None)
