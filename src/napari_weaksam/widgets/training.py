"""The Train dock: choose a method, see what it will train, start it, follow it, stop it.

Before Start the dock says what will really train (:func:`~napari_weaksam.training_plan.plan_text`:
ensembles and step floors included); while a job runs, which of its planned stages it is in and
the time left. The job runs in a worker thread (:mod:`napari_weaksam.jobs`); this dock polls it
ten times a second, so the viewer stays responsive. Choices are remembered between sessions. When
a job ends the other docks are told (``labels_changed``) so the review queue shows the new
proposals; reviews already made are never touched by a new round.

A running job is registered with the viewer's session, so no dock closes or replaces the project
under it. Nothing that writes (Start, going back to a round) is offered on a read-only project or
while a job runs, and going back only once a round is selected; the spin boxes allow what the
method's settings allow (their declared ranges), and a value the settings still refuse is shown
as their one-line message, starting nothing.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from napari.utils.notifications import show_error
from qtpy.QtCore import QRect, Qt, QTimer
from qtpy.QtGui import QFontMetrics, QShowEvent
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ..backbones.weights import available_weights
from ..jobs import BackgroundJob, MethodChoice, method_background_job, predict_background_job
from ..methods.image_kinds import ProjectKind, project_kind
from ..methods.registry import Method, get_method, listed_methods, method_for_kind
from ..project import ProjectError
from ..settings import get_setting, set_setting
from ..training_plan import RETRAIN_EMBEDDING, plan_text, project_size
from .loss_plot import LossPlot
from .option_fields import OptionFields
from .qt_helpers import allow, make_button
from .rounds_box import RoundsBox
from .session import follow, session_for

if TYPE_CHECKING:
    import napari

    from ..project import Project
    from ..project.rounds import Round

SETTING_KEY = "train_dock"
NO_PROJECT = "Open a project in the Tag tab to train."
READ_ONLY = ("The project is open read-only (another process writes it): no method can run "
             "and no round can be restored here.")
RETRAIN = "retrain"   # the registered method behind the Retrain button
SEGNET = "segnet"     # … and behind "U-Net on round"
POLL_MS = 100
PLOT_MIN_HEIGHT = 56     # the loss curve's least height (it takes what is left)
LABEL_MIN_WIDTH = 290    # a wrapped label's (see _wrapped_label)
STATUS_LINES = 4         # a longer status is cut (the whole text is its tooltip)
PLAN_LINES = 4           # … and a longer plan
PLAN_TIP = "What Start trains and labels, read from the method's settings and the project"


class TrainingWidget(QWidget):
    """Dock widget that runs a weak-supervision method on the shared project."""

    def __init__(self, napari_viewer: napari.Viewer, project: Project | None = None) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session = session_for(napari_viewer)
        self.job: BackgroundJob | None = None
        self.kind: ProjectKind | None = None   # the project's kind of image
        self._kind_seen: tuple[int, int] | None = None   # (project, items) it was judged for
        self.methods_by_kind: dict[str, str] = {}   # the method last chosen per kind
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)
        self._build()
        self._load_choice(MethodChoice.from_dict(get_setting(SETTING_KEY)))
        follow(self, self.session.project_changed, self._on_project)
        follow(self, self.session.labels_changed, self.rounds.refresh)
        follow(self, self.session.reviews_changed, self._refresh)
        follow(self, self.session.busy_changed, self._on_busy)
        if project is not None:
            self.session.set_project(project)
        self._refresh()
        self.rounds.refresh()

    def _on_project(self, _project) -> None:
        self.say("")
        self.progress_bar.reset()   # no run on this project yet
        self._follow_kind()
        self.rounds.refresh()
        self._refresh()

    def _on_busy(self, _reason: str | None) -> None:
        self._follow_kind()   # an import that just ended may have changed it
        self._refresh()

    def _follow_kind(self) -> None:
        """When the project's kind of image changes: each method's fields start from that
        kind's defaults, and the method is the one last chosen for it (else the one measured
        best for it)."""
        project = self.project
        seen = None if project is None else (id(project), project.catalog.count_items())
        if seen == self._kind_seen and seen is not None:
            return   # same project, same items: judged already (it reads a few images)
        self._kind_seen = seen
        kind = None if project is None else project_kind(project)
        name = None if kind is None else kind.kind
        changed = name != self.kind_name
        self.kind = kind
        if not changed:
            return
        for method, fields in self.option_fields.items():
            fields.set_defaults(get_method(method).defaults_for(name))
        if name is not None:
            method = self.methods_by_kind.get(name) or method_for_kind(name).name
            self.method_combo.setCurrentIndex(max(0, self.method_combo.findData(method)))

    @property
    def kind_name(self) -> str | None:
        return None if self.kind is None else self.kind.kind

    def _on_method_chosen(self) -> None:
        """The person picked a method: remember it for this kind of image."""
        if self.kind is not None:
            self.methods_by_kind[self.kind.kind] = self.method_combo.currentData()

    @property
    def project(self) -> Project | None:
        return self.session.project

    # -- building ------------------------------------------------------------------------------
    def _build(self) -> None:
        self.setMinimumWidth(320)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self._choice_box())
        layout.addWidget(self._run_box())
        # outside the boxes, whose wrapped labels fix their height: the curve gives way to them
        self.loss_plot = LossPlot()
        self.loss_plot.setMinimumHeight(PLOT_MIN_HEIGHT)
        self.loss_plot.setSizePolicy(QSizePolicy.Policy.Expanding,
                                     QSizePolicy.Policy.Expanding)
        layout.addWidget(self.loss_plot, 1)
        self.rounds = RoundsBox(self.session, self.say, self._write_refusal,
                                self.apply_to_new_images, self.train_network_on_round)
        layout.addWidget(self.rounds)

    def _choice_box(self) -> QGroupBox:
        box = self.method_box = QGroupBox("Method")
        layout = QVBoxLayout(box)   # wrapped labels outside the form: it over-counts their height
        self.method_combo = QComboBox()
        for method in listed_methods():
            self.method_combo.addItem(method.title, method.name)
        self.method_combo.currentIndexChanged.connect(lambda _i: self._on_method())
        self.method_combo.activated.connect(lambda _i: self._on_method_chosen())
        self.model_combo = QComboBox()
        self.model_combo.addItems([w.model for w in available_weights()] or ["litemedsam"])
        self.model_combo.setToolTip("Model: the SAM it uses; official SAM weights are found in "
                                    "the weights folder (weaksam config weights_dir PATH)")
        self.device_combo = QComboBox()
        self.device_combo.addItems(["auto", "cpu", "cuda"])
        self.device_combo.setToolTip("Device — auto: the GPU when there is one, else the CPU")
        for combo in (self.method_combo, self.model_combo):   # narrow enough for one row
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(3)
        row = QHBoxLayout()   # one row for the three: the dock's height goes to the plan
        row.addWidget(self.method_combo, 1)
        row.addWidget(self.model_combo, 1)
        row.addWidget(self.device_combo)
        layout.addLayout(row)
        self.method_about = _wrapped_label("color: gray;")
        layout.addWidget(self.method_about)
        self.option_fields: dict[str, OptionFields] = {}   # per method, made when first chosen
        self.options_area = QVBoxLayout()
        self.options_area.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self.options_area)
        self.plan_label = _wrapped_label()
        self.plan_label.setToolTip(PLAN_TIP)
        layout.addWidget(self.plan_label)
        self._show_fields()
        return box

    def fields(self, method: str | None = None) -> OptionFields:
        """The option fields of ``method`` (default: the chosen one), made from its settings
        dataclass the first time it is chosen."""
        name = method or self.method_combo.currentData()
        if name not in self.option_fields:
            chosen = get_method(name)
            fields = OptionFields(chosen.options(), chosen.dock_options)
            fields.set_defaults(chosen.defaults_for(self.kind_name))
            fields.changed.connect(lambda _v: self._on_option())
            self.option_fields[name] = fields
            fields.native.setVisible(False)   # _show_fields shows it (two at once: too tall)
            self.options_area.addWidget(fields.native)
        return self.option_fields[name]

    def _show_fields(self) -> None:
        """Only the fields of what Start runs are shown: the chosen method's, or Retrain's."""
        chosen = self.fields(self.retrain_method() if self.retrains() else None)
        for fields in self.option_fields.values():
            fields.native.setVisible(fields is chosen)

    def _on_option(self) -> None:
        self._show_about(get_method(self.method_combo.currentData()))
        self._show_plan()

    def _on_method(self) -> None:
        self._show_fields()
        self._refresh()

    def _run_box(self) -> QGroupBox:
        box = QGroupBox("Run")
        layout = QVBoxLayout(box)
        row = QHBoxLayout()
        self.start_button = make_button("Start", "Run the method on every item of the project",
                                        self.start)
        self.stop_button = make_button("Stop", "Stop after the current step; finished rounds "
                                       "are kept", self.stop)
        row.addWidget(self.start_button, 1)   # room for "Retrain with N reviewed masks"
        row.addWidget(self.stop_button)
        layout.addLayout(row)
        self.scratch_box = QCheckBox("From scratch")
        self.scratch_box.setToolTip(
            "Run the chosen method again on every image (minutes to tens of minutes) instead "
            "of Retrain, which learns from the reviewed masks on top of the last round (about "
            "a minute)")
        self.scratch_box.toggled.connect(self._refresh)
        layout.addWidget(self.scratch_box)
        self.progress_bar = QProgressBar()
        self.progress_bar.setTextVisible(True)
        layout.addWidget(self.progress_bar)
        self.status = _wrapped_label()
        layout.addWidget(self.status)
        return box

    # -- choices -------------------------------------------------------------------------------
    def choice(self) -> MethodChoice:
        """What the dock asks for: the method, model, device, and each method's options the
        person changed from its defaults."""
        options = {name: fields.values() for name, fields in self.option_fields.items()}
        return MethodChoice(method=self.method_combo.currentData(),
                            model=self.model_combo.currentText(),
                            device=self.device_combo.currentText(),
                            options={name: values for name, values in options.items() if values},
                            kind=self.kind_name, methods_by_kind=dict(self.methods_by_kind))

    def _load_choice(self, choice: MethodChoice) -> None:
        self.method_combo.setCurrentIndex(max(0, self.method_combo.findData(choice.method)))
        if self.model_combo.findText(choice.model) >= 0:
            self.model_combo.setCurrentText(choice.model)
        self.device_combo.setCurrentText(choice.device)
        self.methods_by_kind = dict(choice.methods_by_kind)
        for method in {choice.method, *choice.options, *self.option_fields}:
            self.fields(method).set_values(choice.options.get(method, {}))
        self._show_fields()

    # -- running -------------------------------------------------------------------------------
    def start(self) -> None:
        """Run the chosen method in the background (refused, with the reason, when it cannot)."""
        choice = self.choice()
        run = self.retrain_choice() if self.retrains() else choice
        # ValueError: an option out of range, the settings say which
        job = self._new_job(lambda: method_background_job(self.project, run), (ValueError,))
        if job is not None:
            set_setting(SETTING_KEY, dataclasses.asdict(choice))
            self.follow_job(job)

    def _new_job(self, make_job, refused: tuple[type[Exception], ...]) -> BackgroundJob | None:
        """The job ``make_job()`` makes, or None, with the reason said, when a job is still
        running (or its end not shown yet), the project cannot be written, or making it raised
        one of ``refused``."""
        if self.job is not None:
            return None
        refusal = self._write_refusal()
        if refusal is not None:
            self.say(refusal)
            return None
        try:
            return make_job()
        except refused as error:
            self.say(str(error))
            return None

    def retrains(self) -> bool:
        """Whether Start is *Retrain*: people reviewed masks, a round is finished, and From
        scratch is not ticked."""
        return self._can_retrain() and not self.scratch_box.isChecked()

    def _can_retrain(self) -> bool:
        if self.project is None or self._reviewed() == 0:
            return False
        return any(r.status == "done" for r in self.project.rounds.rounds())

    def _reviewed(self) -> int:
        counts = self.project.labels.state_counts()
        return counts["accepted"] + counts["corrected"]

    def _followed_unet(self) -> Round | None:
        """The U-Net round Retrain follows (the latest round, when it is one), else None."""
        from ..retrain.from_reviews import base_round

        follows = base_round(self.project) if self.project is not None else None
        return follows if follows is not None and follows.method == SEGNET else None

    def retrain_method(self) -> str:
        """What Retrain trains: the U-Net again when the round it follows is a U-Net's (it
        continues that network, about a minute), else Retrain's mask head."""
        return SEGNET if self._followed_unet() is not None else RETRAIN

    def retrain_choice(self) -> MethodChoice:
        """Retrain with the options set here, on the model and device chosen here (the U-Net
        learns from the round its last network learnt from)."""
        choice = self.choice()
        unet = self._followed_unet()
        method = RETRAIN if unet is None else SEGNET
        options = choice.options.get(method, {})
        if unet is not None:
            options = options | {"source-round": unet.params["source_round"]}
        return dataclasses.replace(choice, method=method,
                                   options={method: options} if options else {})

    def follow_job(self, job: BackgroundJob) -> None:
        """Start ``job`` (named by its method) on the project and show its progress here."""
        self.loss_plot.clear()
        self.job = job
        job.start()
        self.session.job_started(_job_name(job.name), lambda: job.state.running)
        self._timer.start()
        self._show_bar(0, 1, "%p%")
        self.say("Starting…")
        self._refresh()

    def say(self, text: str) -> None:
        """Show ``text`` on the status row, cut to a few lines (then whole as its tooltip)."""
        shown = _cut_to_lines(text, self.status.fontMetrics(), LABEL_MIN_WIDTH, STATUS_LINES)
        self.status.setText(shown)
        self.status.setToolTip(text if shown != text else "")

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
            self.say("Stopping after the current step…")

    def _poll(self) -> None:
        job = self.job
        if job is None:
            return
        round_pending = RETRAIN_EMBEDDING not in job.stages.started
        for report in job.poll():
            if report.loss is not None:
                self.loss_plot.add(job.series_name(report), report.loss)
        if round_pending and RETRAIN_EMBEDDING in job.stages.started:
            self.session.labels_changed.emit()   # the round is stored: reviewable already
        self._show_progress(job)
        if job.state.finished:
            self._timer.stop()
            self._finished(job)

    def _show_progress(self, job: BackgroundJob) -> None:
        last = job.state.last
        if last is None or job.state.finished:
            return
        position = job.stages.position()
        stage = f"stage {position[0]}/{position[1]} · " if position else ""
        self._show_bar(last.done, last.total, f"{stage}%p%")
        if not job.cancel_event.is_set():   # "Stopping…" stays until it has
            self.say(job.progress_line())

    def _show_bar(self, done: int, total: int, text: str) -> None:
        self.progress_bar.setMaximum(max(1, total))
        self.progress_bar.setValue(done)
        self.progress_bar.setFormat(text)

    def _finished(self, job: BackgroundJob) -> None:
        state = job.state
        if state.error is not None:
            self._show_bar(0, 1, "failed")
            self.say(f"Failed: {_first_line(state.error)}")
            show_error(f"The {job.name} run failed: {state.error}")
        elif state.cancelled:
            self._show_bar(0, 1, "stopped")
            self.say("Stopped. Finished rounds are kept; the current one is marked cancelled.")
        else:
            self._show_bar(1, 1, "done")
            self.say("Done. New proposals are in the Review tab.")
        self.job = None
        self.session.check_jobs()
        self.session.labels_changed.emit()
        self._refresh()

    # -- rounds --------------------------------------------------------------------------------
    def apply_to_new_images(self, paths: list[Path]) -> None:
        """Segment ``paths`` with a finished round's models in the background (see
        :func:`~napari_weaksam.jobs.predict_background_job`)."""
        round_id = self.rounds.selected_round()
        job = self._new_job(lambda: predict_background_job(
            self.project, self.choice(), round_id, paths), (ProjectError, ValueError))
        if job is not None:
            self.follow_job(job)

    def train_network_on_round(self) -> None:
        """A segmentation network trained on the selected round's proposals (none selected:
        the latest round's), in the background; Segmentation network options set for it
        (``fields("segnet")``) apply."""
        choice = self.choice()
        source = {"source-round": self.rounds.selected_round() or 0}
        options = choice.options.get(SEGNET, {}) | source
        run = dataclasses.replace(choice, method=SEGNET, options={SEGNET: options})
        job = self._new_job(lambda: method_background_job(self.project, run), (ValueError,))
        if job is not None:
            self.follow_job(job)

    def _refresh(self) -> None:
        running = self.job is not None and self.job.state.running
        refusal = self._write_refusal()
        allow(self.start_button, refusal)
        self.rounds.refresh_buttons()
        self.stop_button.setEnabled(running)
        method = get_method(self.method_combo.currentData())
        self._show_about(method)
        for widget in (self.method_combo, self.model_combo, self.device_combo):
            widget.setEnabled(not running)
        for fields in self.option_fields.values():
            fields.enabled = not running
        if refusal in (NO_PROJECT, READ_ONLY):
            self.say(refusal)
        self.scratch_box.setVisible(self._can_retrain())
        self.scratch_box.setEnabled(not running)
        self._show_fields()
        self.start_button.setText(self._start_text(method))
        self._show_plan()

    def _show_plan(self) -> None:
        """What Start will really train and label, from the method's settings and the project."""
        try:
            settings = (self.retrain_choice() if self.retrains() else self.choice()).settings()
        except ValueError as error:   # the settings say which option and its range
            self.plan_label.setText(str(error))
            return
        size = None if self.project is None else project_size(self.project)
        text = plan_text(settings, size)
        shown = _cut_to_lines(text, self.plan_label.fontMetrics(), LABEL_MIN_WIDTH, PLAN_LINES)
        self.plan_label.setText(shown)
        self.plan_label.setToolTip(PLAN_TIP if shown == text else f"{text}\n\n{PLAN_TIP}")

    def showEvent(self, event: QShowEvent) -> None:
        """Tags may have changed while the dock was hidden (another tab): count them again."""
        super().showEvent(event)
        self._show_plan()

    def _show_about(self, method: Method) -> None:
        """The method's summary; the project's kind of image in the box's title (no row of its
        own: the dock's height), with what it changes in the method and why as the tooltip."""
        self.method_box.setTitle("Method" if self.kind is None
                                 else f"Method · {self.kind.short()}")
        if self.kind is None:
            self.method_about.setText(method.summary)
            self.method_box.setToolTip("")
            return
        kind = self.kind.kind
        caveat = method.kind_caveat(kind, why=False)
        self.method_about.setText(method.summary + (f" On {self.kind.title}: {caveat}."
                                                    if caveat else ""))
        why = method.kind_note(kind, self.fields(method.name).values())
        flags = [f"--{flag}" for flag in method.defaults_for(kind)]
        if flags:
            why += f" (set here, or weaksam run {' / '.join(flags)})"
        if not why:
            why = ("the method measured best for them" if kind in method.suits
                   else "nothing changes for them")
        self.method_box.setToolTip(f"{self.kind.describe()}: {why}.")

    def _start_text(self, method: Method) -> str:
        """Start; once people reviewed masks, Retrain (or the method from scratch)."""
        if not self._can_retrain():
            return "Start"
        people = self._reviewed()
        masks = f"{people} reviewed mask{'' if people == 1 else 's'}"
        if not self.scratch_box.isChecked():
            return f"Retrain with {masks}"
        masks = f" with {masks}" if method.learns_from_reviews else ""
        return f"Run {method.title} from scratch{masks}"


def _job_name(method: str) -> str:
    """"An EP-SAM run" (what the session says keeps the project busy)."""
    if method == "predict":
        return "Segmenting new images"
    if method == RETRAIN:
        return "Retraining"
    try:
        title = get_method(method).title
    except ValueError:
        return "A method run"
    return f"{'An' if title[:1] in 'AEIOU' else 'A'} {title} run"


def _row(*parts: QWidget | int) -> QWidget:
    """Widgets side by side (an int: a stretch of that factor)."""
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    for part in parts:
        if isinstance(part, int):
            layout.addStretch(part)
        else:
            layout.addWidget(part)
    return row


def _wrapped_label(style: str = "") -> QLabel:
    """A label on its own row whose text wraps (and takes the height it needs)."""
    label = QLabel("")
    label.setWordWrap(True)
    label.setStyleSheet(style)
    label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
    # the least height a layout grants a wrapped label is its height at its least width: with
    # no least width that is a narrow, tall column, and the dock would claim far more height
    label.setMinimumWidth(LABEL_MIN_WIDTH)
    return label


def _cut_to_lines(text: str, metrics: QFontMetrics, width: int, lines: int) -> str:
    """``text``, or its first words and "…", so that it wraps into ``lines`` lines of ``width``."""
    def fits(candidate: str) -> bool:
        box = metrics.boundingRect(QRect(0, 0, width, 100 * lines * metrics.lineSpacing()),
                                   Qt.TextFlag.TextWordWrap, candidate)
        return box.height() <= lines * metrics.lineSpacing()

    if fits(text):
        return text
    words = text.split(" ")
    while len(words) > 1 and not fits(" ".join(words) + " …"):
        words.pop()
    return " ".join(words) + " …"


def _first_line(error: BaseException) -> str:
    text = str(error)
    return text.splitlines()[0] if text else type(error).__name__
