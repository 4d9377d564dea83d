"""The review queue: which proposals a person looks at, in what order, and their decisions.

Every decision is written to the project at once (``project.labels.review`` /
``clear_review``); the queue keeps an in-memory copy of the states so a list can be redrawn
without asking the catalog again. A read-only project raises its own
:class:`~napari_weaksam.project.ReadOnlyProjectError` — nothing is swallowed here.

What is shown for a reviewed item is what the person decided on: an accepted or corrected item's
entry holds the proposal that was accepted or corrected (with its confidence and round), not a
newer round's proposal, which stays history until the decision is undone.

Only the *latest* proposal of an item can be accepted, because ``LabelStore.review`` records the
item's latest proposal as the accepted one. When a round other than the latest is shown, or a
newer proposal arrived after the queue was loaded, :meth:`ReviewQueue.accept` raises a
``ValueError`` instead of silently accepting another mask. Rejections and corrections do not
depend on which proposal is shown.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..project import Item, LabelState, Project
from ..project.labels import CURRENT
from ..project.rounds import Round

ORDERS = ("uncertainty", "position")
STATE_FILTERS = ("all", "to review", "accepted", "corrected", "rejected")

_STATE_NAMES = {
    LabelState.PROPOSED: "to review",
    LabelState.ACCEPTED: "accepted",
    LabelState.CORRECTED: "corrected",
    LabelState.REJECTED: "rejected",
}
_COUNT_KEYS = ("to review", "accepted", "corrected", "rejected")


def state_name(state: LabelState) -> str:
    """How a state reads in the review: ``to review``, ``accepted``, ``corrected``…"""
    return _STATE_NAMES.get(LabelState(state), LabelState(state).value)


@dataclass(frozen=True)
class ReviewEntry:
    """One item with a proposal to review; ``proposal_id`` is the proposal shown, made by
    ``method`` in ``round_id`` (None: outside a round)."""

    item: Item
    state: LabelState
    confidence: float | None
    proposal_id: int
    round_id: int | None = None
    method: str = ""


def latest_proposals(project: Project, round_id: int | None = None,
                     item_ids: list[int] | None = None) -> dict[int, tuple[int, float | None]]:
    """``item id → (proposal id, confidence)`` of each item's latest proposal.

    With ``round_id``, the latest proposal each item got in that round; with ``item_ids``, only
    those items.
    """
    where, params = [], []
    if round_id is not None:
        where.append("round_id = ?")
        params.append(round_id)
    else:
        where.append(CURRENT)
    if item_ids is not None:
        if not item_ids:
            return {}
        where.append(f"item_id IN ({','.join('?' * len(item_ids))})")
        params.extend(item_ids)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows = project.db.rows(
        "SELECT p.item_id, p.id, p.confidence FROM proposals p JOIN"
        f" (SELECT MAX(id) AS last FROM proposals{clause} GROUP BY item_id) l ON p.id = l.last",
        tuple(params),
    )
    return {int(r[0]): (int(r[1]), None if r[2] is None else float(r[2])) for r in rows}


def shown_proposals(project: Project, round_id: int | None = None,
                    item_ids: list[int] | None = None) -> dict[int, int]:
    """``item id → proposal id`` to show: the one a person decided on for reviewed items (when
    no round is chosen), else the item's latest (of ``round_id`` when given)."""
    shown = {item: found[0] for item, found in latest_proposals(project, round_id,
                                                                item_ids).items()}
    if round_id is None:
        wanted = None if item_ids is None else set(item_ids)
        for item_id, proposal_id in project.labels.reviewed_proposals().items():
            if wanted is None or item_id in wanted:
                shown[item_id] = proposal_id
    return shown


def _provenance(project: Project, proposal_ids: list[int]) -> dict[int, tuple]:
    """``proposal id → (round id, method, confidence)``."""
    found: dict[int, tuple] = {}
    for start in range(0, len(proposal_ids), 500):
        chunk = proposal_ids[start:start + 500]
        rows = project.db.rows(
            "SELECT id, round_id, method, confidence FROM proposals"
            f" WHERE id IN ({','.join('?' * len(chunk))})", tuple(chunk))
        found.update({int(r[0]): (r[1], r[2], None if r[3] is None else float(r[3]))
                      for r in rows})
    return found


@dataclass(frozen=True)
class ProposalChange:
    """How a proposal differs from the item's previous current one (pixels of any class)."""

    previous_round: int | None
    added: int
    removed: int

    def describe(self) -> str:
        where = f"round #{self.previous_round}" if self.previous_round is not None else "before"
        if not self.added and not self.removed:
            return f"same mask as {where}"
        return f"vs {where}: +{self.added} px, −{self.removed} px"


def proposal_change(project: Project, item_id: int, proposal_id: int) -> ProposalChange | None:
    """What changed from the item's previous proposal (of a finished round) to this one; None
    when it has no earlier proposal."""
    row = project.db.row(
        f"SELECT id, round_id FROM proposals WHERE item_id = ? AND id < ? AND {CURRENT}"
        " ORDER BY id DESC LIMIT 1", (item_id, proposal_id))
    if row is None:
        return None
    labels = project.labels
    before = labels.proposal_mask(labels.proposal(int(row["id"]))) > 0
    now = labels.proposal_mask(labels.proposal(proposal_id)) > 0
    if before.shape != now.shape:
        return None
    return ProposalChange(row["round_id"], int((now & ~before).sum()), int((before & ~now).sum()))


def review_rounds(project: Project) -> list[Round]:
    """Rounds that finished (done) and produced proposals, oldest first."""
    with_proposals = {
        r[0] for r in project.db.rows(
            "SELECT DISTINCT round_id FROM proposals WHERE round_id IS NOT NULL")
    }
    return [r for r in project.rounds.rounds()
            if r.status == "done" and r.id in with_proposals]


class ReviewQueue:
    """The entries to review, the current one, and the person's decisions."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.entries: list[ReviewEntry] = []
        self.order = ORDERS[0]
        self.state_filter = STATE_FILTERS[0]
        self.round_id: int | None = None
        self._index = -1

    # -- loading -------------------------------------------------------------------------------
    def reload(self, order: str = "uncertainty", state_filter: str = "all",
               round_id: int | None = None) -> None:
        """Read the proposals again; stay on the current item when it is still listed.

        ``order``: ``"uncertainty"`` (least confident first, unknown confidence before any) or
        ``"position"`` (project order: by source, then plane — the item id order of imported
        projects). ``state_filter``: one of :data:`STATE_FILTERS`. ``round_id``: show that round's
        proposals instead of each item's latest one.
        """
        if order not in ORDERS:
            raise ValueError(f"order {order!r}: choose one of {', '.join(ORDERS)}")
        if state_filter not in STATE_FILTERS:
            raise ValueError(f"filter {state_filter!r}: choose one of {', '.join(STATE_FILTERS)}")
        keep = self.current.item.id if self.current is not None else None
        self.order, self.state_filter, self.round_id = order, state_filter, round_id
        shown = shown_proposals(self.project, round_id)
        if round_id is None:  # a reviewed item without any current proposal is not listed
            current = latest_proposals(self.project)
            shown = {k: v for k, v in shown.items() if k in current}
        about = _provenance(self.project, list(shown.values()))
        states = self.project.labels.states()
        items = [i for i in self.project.catalog.items() if i.id in shown]  # project order
        entries = []
        for item in items:
            round_, method, confidence = about[shown[item.id]]
            entries.append(ReviewEntry(item, states.get(item.id, LabelState.PROPOSED),
                                       confidence, shown[item.id], round_, method))
        if state_filter != "all":
            entries = [e for e in entries if state_name(e.state) == state_filter]
        if order == "uncertainty":  # stable sort: ties keep project order
            entries.sort(key=lambda e: (e.confidence is not None, e.confidence or 0.0))
        self.entries = entries
        self._index = 0 if entries else -1
        if keep is not None:
            self.go_to(keep)

    # -- where we are --------------------------------------------------------------------------
    @property
    def current(self) -> ReviewEntry | None:
        return self.entries[self._index] if 0 <= self._index < len(self.entries) else None

    @property
    def index(self) -> int:
        """Position of the current entry (-1 when there is none)."""
        return self._index

    def go_to(self, item_id: int) -> bool:
        """Make the entry of ``item_id`` current; False (and no move) when it is not listed."""
        for i, entry in enumerate(self.entries):
            if entry.item.id == item_id:
                self._index = i
                return True
        return False

    def go_to_index(self, index: int) -> None:
        if 0 <= index < len(self.entries):
            self._index = index

    def next(self) -> bool:
        """Step forward; stays on the last entry (returns False there)."""
        if self._index + 1 < len(self.entries):
            self._index += 1
            return True
        return False

    def previous(self) -> bool:
        """Step back; stays on the first entry (returns False there)."""
        if self._index > 0:
            self._index -= 1
            return True
        return False

    def next_to_review(self) -> bool:
        """Move to the next entry still waiting for review (after the current one, then from the
        start); False and no move when every listed entry is reviewed."""
        n = len(self.entries)
        for step in range(1, n):
            i = (self._index + step) % n
            if self.entries[i].state is LabelState.PROPOSED:
                self._index = i
                return True
        return False

    # -- decisions -----------------------------------------------------------------------------
    def accept(self) -> ReviewEntry | None:
        """The shown proposal is right: record it and move on. Returns the reviewed entry."""
        entry = self.current
        if entry is None:
            return None
        latest = self.project.labels.latest_proposal(entry.item.id)
        if latest is None or latest.id != entry.proposal_id:
            raise ValueError(
                f"{entry.item.name}: only the latest proposal of an item can be accepted, and "
                "this one is older (another round, or a newer proposal arrived). Show the latest "
                "round to accept it, or correct this one (E) to keep its mask."
            )
        return self._decide(entry, LabelState.ACCEPTED, proposal_id=entry.proposal_id)

    def reject(self) -> ReviewEntry | None:
        """The proposal is wrong and not worth correcting: record it and move on."""
        entry = self.current
        return None if entry is None else self._decide(entry, LabelState.REJECTED)

    def correct(self, mask: np.ndarray) -> ReviewEntry | None:
        """Store the person's own label image (the item's height × width) and move on."""
        entry = self.current
        if entry is None:
            return None
        return self._decide(entry, LabelState.CORRECTED, np.asarray(mask))

    def undo_review(self) -> ReviewEntry | None:
        """Forget the decision on the current entry: it waits for review again (no move)."""
        entry = self.current
        if entry is None:
            return None
        self.project.labels.clear_review(entry.item.id)
        return self._set_state(self._index, LabelState.PROPOSED)

    def _decide(self, entry: ReviewEntry, state: LabelState, mask: np.ndarray | None = None, *,
                proposal_id: int | None = None) -> ReviewEntry:
        self.project.labels.review(entry.item.id, state, mask, proposal_id=proposal_id)
        reviewed = self._set_state(self._index, state)
        self.next_to_review()
        return reviewed

    def _set_state(self, index: int, state: LabelState) -> ReviewEntry:
        self.entries[index] = replace(self.entries[index], state=state)
        return self.entries[index]

    def empty_negatives(self) -> list[ReviewEntry]:
        """Listed entries still to review whose item is tagged "no finding" and whose proposal
        is empty: what a person may accept all at once."""
        tags = self.project.catalog.all_tags()
        found = []
        for entry in self.entries:
            if entry.state is not LabelState.PROPOSED or tags.get(entry.item.id, None) != set():
                continue
            mask = self.project.labels.proposal_mask(self.project.labels.proposal(
                entry.proposal_id))
            if not mask.any():
                found.append(entry)
        return found

    def accept_many(self, entries: list[ReviewEntry]) -> int:
        """Accept each of ``entries`` (their shown proposal); the number accepted."""
        for entry in entries:
            self.project.labels.review(entry.item.id, LabelState.ACCEPTED,
                                       proposal_id=entry.proposal_id)
            index = self.entries.index(entry)
            self._set_state(index, LabelState.ACCEPTED)
        return len(entries)

    # -- totals --------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """``to review`` / ``accepted`` / ``corrected`` / ``rejected`` over every item with a
        proposal in the project, whatever the filter or round shown."""
        stored = self.project.labels.state_counts()
        counts = {key: 0 for key in _COUNT_KEYS}
        for value, number in stored.items():
            counts[state_name(LabelState(value))] += number
        return counts
