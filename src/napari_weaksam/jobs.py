"""Running a method in a background thread, with progress, time left and Stop (no Qt here).

The GUI starts a :class:`BackgroundJob` and polls it from a timer; nothing crosses threads but
plain values in a queue, so the event loop never waits for the job. A job made by
:func:`method_background_job` knows the method's planned stages (:mod:`.training_plan`), so it
can say "stage k of n" and estimate the whole run's time left. A stopped job ends at the next
cancellation point (between items or batches), its round is marked cancelled, its memory freed.
"""

from __future__ import annotations

import gc
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .progress import Cancelled, Progress, ProgressCallback
from .training_plan import LOADING, PlannedStage, StageClock, planned_stages

JobTarget = Callable[[ProgressCallback, threading.Event], Any]


@dataclass
class MethodChoice:
    """What the Train dock asks for (also remembered between sessions): the method, the model,
    the device, and per method the options the person set (flag → value; the others keep the
    method's defaults for the project's ``kind`` of image, see :mod:`.methods.image_kinds`).
    ``methods_by_kind``: the method last chosen for each kind of image."""

    method: str = "epsam"
    model: str = "litemedsam"
    device: str = "auto"
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    kind: str | None = None
    methods_by_kind: dict[str, str] = field(default_factory=dict)
    precision: str = "auto"   # the image encoder's (backbones/precision.py)

    @classmethod
    def of(cls, method: str, **flags: Any) -> MethodChoice:
        """``method`` with options given as keywords (``decoder_epochs`` for
        ``--decoder-epochs``)."""
        values = {name.replace("_", "-"): value for name, value in flags.items()}
        return cls(method=method, options={method: values})

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> MethodChoice:
        """A remembered choice; what no longer fits (a method or an option that is gone, a
        value of another kind) is left out rather than refused."""
        from .methods.registry import method_names

        known = {k: v for k, v in (values or {}).items() if k in cls.__dataclass_fields__}
        choice = cls(**known)
        names = method_names()
        if choice.method not in names:
            choice.method = cls.method
        if not isinstance(choice.options, dict):
            choice.options = {}
        if not isinstance(choice.methods_by_kind, dict):
            choice.methods_by_kind = {}
        choice.methods_by_kind = {kind: name for kind, name in choice.methods_by_kind.items()
                                  if name in names}
        choice.options = {name: dict(flags) for name, flags in choice.options.items()
                          if name in names and isinstance(flags, dict)}
        return choice

    def flags(self) -> dict[str, Any]:
        """The chosen method's options the person set."""
        return dict(self.options.get(self.method, {}))

    def settings(self) -> Any:
        """The chosen method's settings; a value out of its range raises ``ValueError`` (one
        line naming the option and its range)."""
        from .methods.registry import get_method

        return get_method(self.method).settings_for(self.kind, self.flags())

    def backbone(self, project):
        """The chosen model on the chosen device, in the chosen precision (``auto``: decided
        for ``project``, see :mod:`.backbones.precision`)."""
        from .backbones.device import pick_device
        from .backbones.loaders import load_backbone
        from .backbones.precision import set_auto_precision

        backbone = load_backbone(self.model, device=pick_device(self.device))
        set_auto_precision(self.precision, backbone, project)
        return backbone


@dataclass
class JobState:
    running: bool = False
    finished: bool = False
    cancelled: bool = False
    error: BaseException | None = None
    result: Any = None
    last: Progress | None = None
    losses: list[float] = field(default_factory=list)


class BackgroundJob:
    """One job in a daemon thread; :meth:`poll` hands its progress to the caller's thread."""

    def __init__(self, target: JobTarget, name: str = "job",
                 plan: Sequence[PlannedStage] = ()) -> None:
        self.target = target
        self.name = name
        self.cancel_event = threading.Event()
        self.state = JobState()
        self.stages = StageClock(plan)
        self._queue: queue.SimpleQueue[Progress] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"weaksam-{name}", daemon=True)

    def start(self) -> None:
        self.state.running = True
        self._thread.start()

    def stop(self) -> None:
        """Ask the job to stop at its next cancellation point."""
        self.cancel_event.set()

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def poll(self) -> list[Progress]:
        """Progress reports since the last call (in order)."""
        reports = []
        while True:
            try:
                report = self._queue.get_nowait()
            except queue.Empty:
                break
            reports.append(report)
            self.stages.seen(report, time.monotonic())
            self.state.last = report
            if report.loss is not None:
                self.state.losses.append(report.loss)
        return reports

    def seconds_left(self) -> float | None:
        """Estimate for the current stage, from its pace so far."""
        last = self.state.last
        return None if last is None else self.stages.stage_seconds_left(last, time.monotonic())

    def progress_line(self) -> str:
        """"stage k of n · name · done/total · about T left (total)" for the last report."""
        last = self.state.last
        return "" if last is None else self.stages.line(last, time.monotonic())

    def series_name(self, report: Progress) -> str:
        """The loss curve ``report`` belongs to (one per stage and ensemble member)."""
        return self.stages.stage(report).series_name(report)

    def _run(self) -> None:
        try:
            self.state.result = self.target(self._queue.put, self.cancel_event)
        except Cancelled:
            self.state.cancelled = True
        except BaseException as error:  # reported to the person by the GUI
            self.state.error = error
        finally:
            self.state.running = False
            self.state.finished = True
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()


def method_job(project, choice: MethodChoice) -> JobTarget:
    """The job that loads the backbone and runs the chosen method on ``project``.

    The settings are built here, in the caller's thread: a value out of range raises
    ``ValueError`` before any job starts.
    """
    from .methods.registry import get_method

    method = get_method(choice.method)
    settings = choice.settings()

    def run(progress: ProgressCallback, cancel: threading.Event):
        from .methods.context import RunContext

        progress(Progress(LOADING, 0, 1))
        backbone = choice.backbone(project)
        progress(Progress(LOADING, 1, 1))
        return method.run(RunContext(project, backbone, progress, cancel), settings)

    return run


def method_background_job(project, choice: MethodChoice) -> BackgroundJob:
    """The chosen method as a job (not started yet) that knows its planned stages; a value out
    of range raises ``ValueError`` (see :func:`method_job`)."""
    return BackgroundJob(method_job(project, choice), choice.method,
                         planned_stages(choice.settings()))


def predict_background_job(project, choice: MethodChoice, round_id: int | None,
                           paths: Sequence[Path]) -> BackgroundJob:
    """A job (not started yet) that imports ``paths`` and segments them with the models of
    round ``round_id`` (None: the latest finished round that can), no tags, no training; the
    round is chosen here, in the caller's thread, so a bad choice is refused at once."""
    from .methods.prediction import choose_round

    round_ = choose_round(project, round_id)

    def run(progress: ProgressCallback, cancel: threading.Event):
        from .methods.context import RunContext
        from .methods.prediction import import_for_prediction, predict

        items, _report = import_for_prediction(project, list(paths))
        progress(Progress(LOADING, 0, 1))
        backbone = choice.backbone(project)
        progress(Progress(LOADING, 1, 1))
        return predict(RunContext(project, backbone, progress, cancel), round_, items)

    return BackgroundJob(run, "predict")
