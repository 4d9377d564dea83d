"""Undo and redo of review decisions (no Qt).

Each decision a person makes in a session is kept as the item's review *before* and *after* it
(:class:`~napari_weaksam.project.labels.ReviewRecord`, a corrected mask included), so undoing a
correction and redoing it brings the painted mask back exactly. Undo and redo always act on the
item the decision was about — not on whichever item is shown now — and write the project at once.
The history lives as long as the session: reopening a project starts an empty one.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..project import LabelState, Project
from ..project.labels import ReviewRecord
from .queue import state_name

MAX_DECISIONS = 200   # corrected masks are kept in memory: a bound keeps a long session small


@dataclass(frozen=True)
class Decision:
    """What a decision changed on one item."""

    item_id: int
    item_name: str
    before: ReviewRecord | None
    after: ReviewRecord | None

    def describe(self) -> str:
        """``"accept brain1 z011"``, ``"correction of …"`` — for buttons and messages."""
        if self.after is None:
            return f"undo of the decision on {self.item_name}"
        verb = {LabelState.ACCEPTED: "accept", LabelState.REJECTED: "reject",
                LabelState.CORRECTED: "correction"}[self.after.state]
        return f"{verb} of {self.item_name}" if verb == "correction" else f"{verb} {self.item_name}"


class DecisionHistory:
    """The session's decisions, newest last, with a redo stack."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._done: list[Decision] = []
        self._undone: list[Decision] = []

    @property
    def can_undo(self) -> bool:
        return bool(self._done)

    @property
    def can_redo(self) -> bool:
        return bool(self._undone)

    def next_undo(self) -> Decision | None:
        return self._done[-1] if self._done else None

    def next_redo(self) -> Decision | None:
        return self._undone[-1] if self._undone else None

    def before(self, item_id: int) -> ReviewRecord | None:
        """The item's review now, to pass to :meth:`record` after the decision is written."""
        return self.project.labels.review_record(item_id)

    def record(self, item_id: int, item_name: str, before: ReviewRecord | None) -> Decision:
        """A decision on ``item_id`` was just written; remember it (redo is forgotten)."""
        decision = Decision(item_id, item_name, before, self.project.labels.review_record(item_id))
        self._done.append(decision)
        del self._done[:-MAX_DECISIONS]
        self._undone.clear()
        return decision

    def undo(self) -> Decision | None:
        """Put the newest decision's item back as it was before it; the decision, or None."""
        if not self._done:
            return None
        decision = self._done[-1]
        self.project.labels.put_review(decision.item_id, decision.before)
        self._undone.append(self._done.pop())
        return decision

    def redo(self) -> Decision | None:
        """Make the newest undone decision again; the decision, or None."""
        if not self._undone:
            return None
        decision = self._undone[-1]
        self.project.labels.put_review(decision.item_id, decision.after)
        self._done.append(self._undone.pop())
        return decision


def after_text(decision: Decision, undone: bool) -> str:
    """What the item reads after an undo (``undone``) or a redo of ``decision``."""
    record = decision.before if undone else decision.after
    state = "to review" if record is None else state_name(record.state)
    return f"{'Undone' if undone else 'Redone'}: {decision.describe()} — now {state}."
