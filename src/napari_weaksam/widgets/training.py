"""The Train dock: choose a method, start it in the background, follow it, stop it.

The job runs in a worker thread (:mod:`napari_weaksam.jobs`); this dock polls it ten times a
second, so the viewer stays responsive. Choices are remembered between sessions. When a job ends
the other docks are told (``labels_changed``) so the review queue shows the new proposals; reviews
already made are never touched by a new round.

A running job is registered with the viewer's session, so no dock closes or replaces the project
under it. Nothing that writes (Start, going back to a round) is offered on a read-only project or
while a job runs; the spin boxes allow what the method's settings allow (their declared ranges),
and a value the settings still refuse is shown as their one-line message, starting nothing.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING

from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..backbones.weights import available_weights
from ..jobs import BackgroundJob, MethodChoice, method_job
from ..project import ProjectError
from ..project.restore import restore_round
from ..settings import get_setting, set_setting
from .loss_plot import LossPlot
from .qt_helpers import allow, make_button
from .session import follow, session_for

if TYPE_CHECKING:
    import napari

    from ..option_ranges import OptionRange
    from ..project import Project

SETTING_KEY = "train_dock"
METHOD_LABELS = {
    "epsam": "EP-SAM — point prompts, retrains on your corrections",
    "weakmedsam": "WeakMedSAM — CAM + prompt affinity + random walk",
}
JOB_NAMES = {"epsam": "An EP-SAM run", "weakmedsam": "A WeakMedSAM run"}
NO_PROJECT = "Open a project in the Tagging dock to train."
READ_ONLY = ("The project is open read-only (another process writes it): no method can run "
             "and no round can be restored here.")
SPIN_LIMITS = (-(2**31), 2**31 - 1)
POLL_MS = 100


class TrainingWidget(QWidget):
    """Dock widget that runs a weak-supervision method on the shared project."""

    def __init__(self, napari_viewer: napari.Viewer, project: Project | None = None) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session = session_for(napari_viewer)
        self.job: BackgroundJob | None = None
        self.truth_dir: Path | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)
        self._build()
        self._load_choice(MethodChoice.from_dict(get_setting(SETTING_KEY)))
        follow(self, self.session.project_changed, self._on_project)
        follow(self, self.session.labels_changed, self._refresh_rounds)
        follow(self, self.session.reviews_changed, self._refresh)
        follow(self, self.session.busy_changed, self._on_busy)
        if project is not None:
            self.session.set_project(project)
        self._refresh()
        self._refresh_rounds()

    def _on_project(self, _project) -> None:
        self.status.setText("")
        self._refresh()
        self._refresh_rounds()

    def _on_busy(self, _reason: str | None) -> None:
        self._refresh()

    @property
    def project(self) -> Project | None:
        return self.session.project

    # -- building ------------------------------------------------------------------------------
    def _build(self) -> None:
        self.setMinimumWidth(320)
        layout = QVBoxLayout(self)
        layout.addWidget(self._choice_box())
        layout.addWidget(self._run_box())
        layout.addWidget(self._rounds_box())
        layout.addStretch(1)

    def _choice_box(self) -> QGroupBox:
        box = QGroupBox("Method")
        form = QFormLayout(box)
        self.method_combo = QComboBox()
        for key, label in METHOD_LABELS.items():
            self.method_combo.addItem(label, key)
        self.method_combo.currentIndexChanged.connect(lambda _i: self._on_method())
        form.addRow(self.method_combo)
        self.model_combo = QComboBox()
        self.model_combo.addItems([w.model for w in available_weights()] or ["litemedsam"])
        self.model_combo.setToolTip("SAM model; official SAM weights are found in the weights "
                                    "folder (weaksam config weights_dir PATH)")
        form.addRow("Model", self.model_combo)
        self.device_combo = QComboBox()
        self.device_combo.addItems(["auto", "cpu", "cuda"])
        self.device_combo.setToolTip("auto: the GPU when there is one, else the CPU")
        form.addRow("Device", self.device_combo)
        self.classifier_epochs = _spin(0, 200, "Epochs of the classifier trained on the tags "
                                       "(EP-SAM's ADL: 15, WeakMedSAM's: 40)")
        self.classifier_epochs.setSpecialValueText("method's default")
        form.addRow("Classifier epochs", self.classifier_epochs)
        self.rounds = _spin(0, 10, "EP-SAM: decoder retraining rounds after the preliminary one")
        form.addRow("Rounds", self.rounds)
        self.decoder_epochs = _spin(1, 100, "EP-SAM: decoder epochs per round")
        form.addRow("Decoder epochs", self.decoder_epochs)
        self._apply_ranges()
        return box

    def _on_method(self) -> None:
        self._apply_ranges()
        self._refresh()

    def _apply_ranges(self) -> None:
        """Each spin box allows what the option it sets allows for the chosen method."""
        method = self.method_combo.currentData()
        for spin, name in ((self.classifier_epochs, "classifier_epochs"),
                           (self.rounds, "rounds"), (self.decoder_epochs, "decoder_epochs")):
            low, high = _whole_range(MethodChoice.option_range(name, method),
                                     spin.minimum(), spin.maximum())
            if name == "classifier_epochs":
                low = 0  # 0: the method's own default (the special value)
            spin.setRange(low, high)

    def _run_box(self) -> QGroupBox:
        box = QGroupBox("Run")
        layout = QVBoxLayout(box)
        row = QHBoxLayout()
        self.start_button = make_button("Start", "Run the method on every item of the project",
                                        self.start)
        self.stop_button = make_button("Stop", "Stop after the current step; finished rounds "
                                       "are kept", self.stop)
        row.addWidget(self.start_button)
        row.addWidget(self.stop_button)
        layout.addLayout(row)
        self.progress_bar = QProgressBar()
        self.progress_bar.setTextVisible(True)
        layout.addWidget(self.progress_bar)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.loss_plot = LossPlot()
        layout.addWidget(self.loss_plot)
        return box

    def _rounds_box(self) -> QGroupBox:
        box = QGroupBox("Rounds")
        layout = QVBoxLayout(box)
        self.rounds_list = QListWidget()
        self.rounds_list.setMaximumHeight(140)
        layout.addWidget(self.rounds_list)
        self.restore_button = make_button(
            "Go back to the selected round",
            "Its proposals become the current ones again (nothing is deleted; reviews stay)",
            self.restore_selected)
        layout.addWidget(self.restore_button)
        row = QHBoxLayout()
        self.truth_label = QLabel("Ground truth: none")
        self.truth_label.setStyleSheet("color: gray;")
        row.addWidget(self.truth_label, 1)
        row.addWidget(make_button("Masks…", "A folder of reference masks named like the images: "
                                  "Dice per round is shown (they are never used for training)",
                                  self._ask_truth))
        layout.addLayout(row)
        return box

    # -- choices -------------------------------------------------------------------------------
    def choice(self) -> MethodChoice:
        return MethodChoice(
            method=self.method_combo.currentData(), model=self.model_combo.currentText(),
            device=self.device_combo.currentText(),
            classifier_epochs=self.classifier_epochs.value(), rounds=self.rounds.value(),
            decoder_epochs=self.decoder_epochs.value(),
        )

    def _load_choice(self, choice: MethodChoice) -> None:
        self.method_combo.setCurrentIndex(max(0, self.method_combo.findData(choice.method)))
        if self.model_combo.findText(choice.model) >= 0:
            self.model_combo.setCurrentText(choice.model)
        self.device_combo.setCurrentText(choice.device)
        self.classifier_epochs.setValue(choice.classifier_epochs)
        self.rounds.setValue(choice.rounds)
        self.decoder_epochs.setValue(choice.decoder_epochs)

    # -- running -------------------------------------------------------------------------------
    def start(self) -> None:
        """Run the chosen method in the background (refused, with the reason, when it cannot)."""
        if self.job is not None:  # still running, or its end not shown yet
            return
        refusal = self._write_refusal()
        if refusal is not None:
            self.status.setText(refusal)
            return
        choice = self.choice()
        try:
            target = method_job(self.project, choice)
        except ValueError as error:  # an option out of range: the settings say which
            self.status.setText(str(error))
            return
        set_setting(SETTING_KEY, dataclasses.asdict(choice))
        self.loss_plot.clear()
        job = self.job = BackgroundJob(target, choice.method)
        job.start()
        self.session.job_started(JOB_NAMES[choice.method], lambda: job.state.running)
        self._timer.start()
        self.status.setText("Starting…")
        self._refresh()

    def _write_refusal(self) -> str | None:
        """Why nothing that writes the project can start now (None: it can)."""
        if self.project is None:
            return NO_PROJECT
        if self.project.read_only:
            return READ_ONLY
        return self.session.busy

    def stop(self) -> None:
        if self.job is not None and self.job.state.running:
            self.job.stop()
            self.status.setText("Stopping after the current step…")

    def _poll(self) -> None:
        job = self.job
        if job is None:
            return
        for report in job.poll():
            if report.loss is not None:
                self.loss_plot.add(report.stage, report.loss)
        self._show_progress(job)
        if job.state.finished:
            self._timer.stop()
            self._finished(job)

    def _show_progress(self, job: BackgroundJob) -> None:
        last = job.state.last
        if last is None:
            return
        self.progress_bar.setMaximum(max(1, last.total))
        self.progress_bar.setValue(last.done)
        left = job.seconds_left()
        eta = f" · about {_duration(left)} left" if left is not None and left > 2 else ""
        self.status.setText(f"{last.stage}: {last.done}/{last.total}{eta}")

    def _finished(self, job: BackgroundJob) -> None:
        state = job.state
        if state.error is not None:
            self.status.setText(f"Failed: {state.error}")
            show_error(f"The {job.name} run failed: {state.error}")
        elif state.cancelled:
            self.status.setText("Stopped. Finished rounds are kept; the current one is marked "
                                "cancelled.")
        else:
            self.progress_bar.setMaximum(1)
            self.progress_bar.setValue(1)
            self.status.setText("Done. New proposals are in the Review dock.")
        self.job = None
        self.session.check_jobs()
        self.session.labels_changed.emit()
        self._refresh()

    # -- rounds --------------------------------------------------------------------------------
    def _ask_truth(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of reference masks")
        if folder:
            self.set_truth_dir(Path(folder))

    def set_truth_dir(self, folder: Path | None) -> None:
        self.truth_dir = folder
        self.truth_label.setText(f"Ground truth: {folder.name}" if folder else
                                 "Ground truth: none")
        self._refresh_rounds()

    def _refresh_rounds(self) -> None:
        self.rounds_list.clear()
        if self.project is None:
            return
        dice = self._dice_per_round()
        for round_ in reversed(self.project.rounds.rounds()):
            stage = round_.params.get("stage")
            text = f"#{round_.id} · {round_.method}" + (f" · {stage}" if stage else "")
            text += f" · {round_.status}"
            if round_.id in dice:
                text += f" · Dice {dice[round_.id]:.2f}"
            entry = QListWidgetItem(text)
            entry.setData(Qt.ItemDataRole.UserRole, round_.id)
            self.rounds_list.addItem(entry)

    def restore_selected(self) -> None:
        refusal = self._write_refusal()
        if refusal is not None:
            self.status.setText(refusal)
            return
        entry = self.rounds_list.currentItem()
        if entry is None:
            show_info("Select a round in the list first.")
            return
        try:
            new = restore_round(self.project, entry.data(Qt.ItemDataRole.UserRole))
        except ProjectError as error:
            show_error(str(error))
            return
        self.status.setText(f"Proposals of round #{entry.data(Qt.ItemDataRole.UserRole)} are "
                            f"current again (round #{new}).")
        self.session.labels_changed.emit()

    def _dice_per_round(self) -> dict[int, float]:
        if self.truth_dir is None or self.project is None:
            return {}
        from ..evaluation import evaluate_rounds

        try:
            reports = evaluate_rounds(self.project, self.truth_dir)
        except (OSError, ValueError) as error:
            show_error(f"Ground truth: {error}")
            return {}
        return {r.id: report.summary()["dice_mean"] for r, report in reports}

    def _refresh(self) -> None:
        running = self.job is not None and self.job.state.running
        refusal = self._write_refusal()
        allow(self.start_button, refusal)
        allow(self.restore_button, refusal)
        self.stop_button.setEnabled(running)
        epsam = self.method_combo.currentData() == "epsam"
        self.rounds.setEnabled(epsam and not running)
        self.decoder_epochs.setEnabled(epsam and not running)
        for widget in (self.method_combo, self.model_combo, self.device_combo,
                       self.classifier_epochs):
            widget.setEnabled(not running)
        if refusal in (NO_PROJECT, READ_ONLY):
            self.status.setText(refusal)
        self.start_button.setText(self._start_text(epsam))

    def _start_text(self, epsam: bool) -> str:
        """EP-SAM learns from people's masks: say so on the button once there are some."""
        if self.project is None or not epsam:
            return "Start"
        counts = self.project.labels.state_counts()
        people = counts["accepted"] + counts["corrected"]
        return f"Retrain with {people} reviewed masks" if people else "Start"


def _spin(low: int, high: int, tip: str) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setToolTip(tip)
    return spin


def _whole_range(bounds: OptionRange | None, low: int, high: int) -> tuple[int, int]:
    """The whole numbers ``bounds`` allows; ``low`` / ``high`` where it sets no bound."""
    if bounds is None or bounds.choices:
        return low, high
    if bounds.low is not None:
        low = math.floor(bounds.low) + 1 if bounds.low_open else math.ceil(bounds.low)
    if bounds.high is not None:
        high = math.ceil(bounds.high) - 1 if bounds.high_open else math.floor(bounds.high)
    return max(low, SPIN_LIMITS[0]), min(high, SPIN_LIMITS[1])


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"
