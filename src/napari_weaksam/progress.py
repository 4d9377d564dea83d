"""Progress reports and cancellation shared by every method (no Qt: the GUI adapts them)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    stage: str       # e.g. "embedding", "training", "pseudo-labels"
    done: int
    total: int
    message: str = ""
    loss: float | None = None


ProgressCallback = Callable[[Progress], None]


class Cancelled(RuntimeError):
    """The run was stopped on request; finished work is kept."""


def check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("stopped on request")
