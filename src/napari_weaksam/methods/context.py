"""What a method run is given: the project, the model, where progress goes and when to stop."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..progress import Progress, ProgressCallback, check_cancel

if TYPE_CHECKING:
    from ..backbones.sam import SamBackbone
    from ..project import Project


def _ignore(_report: Progress) -> None:
    return None


@dataclass
class RunContext:
    """One run of a method: every stage reports and checks for Stop through it."""

    project: Project
    backbone: SamBackbone
    progress: ProgressCallback = _ignore
    cancel: threading.Event | None = None

    def report(self, stage: str, done: int, total: int, message: str = "",
               loss: float | None = None) -> None:
        self.progress(Progress(stage, done, total, message, loss))

    def check_cancel(self) -> None:
        """Raise :class:`~..progress.Cancelled` when Stop was asked for."""
        check_cancel(self.cancel)
