"""Pixel labels of a project: model proposals and the person's reviews, kept apart.

A proposal is what a method produced; it is never edited. A review is a person's decision about an
item: ``accepted`` (the proposal is right), ``corrected`` (the person's own mask replaces it) or
``rejected``. Only reviewed labels are final, and a new round of proposals never touches them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from .arrays import ArrayStore
from .db import Database, to_json, utc_now
from .errors import ProjectError

PROPOSAL_PREFIX = "masks/proposals"
CORRECTION_PREFIX = "masks/corrections"
# Proposals that count: those of rounds that finished ("done") and those made outside a round.
# A round that is running, was stopped or died keeps its partial proposals as history only.
CURRENT = "(round_id IS NULL OR round_id IN (SELECT id FROM rounds WHERE status = 'done'))"


class LabelState(str, Enum):
    """Where an item stands in review."""

    NONE = "none"            # no proposal yet
    PROPOSED = "proposed"    # a proposal waits for review
    ACCEPTED = "accepted"
    CORRECTED = "corrected"
    REJECTED = "rejected"


REVIEW_STATES = (LabelState.ACCEPTED, LabelState.CORRECTED, LabelState.REJECTED)


@dataclass(frozen=True)
class ReviewRecord:
    """A person's decision on an item, as stored: enough to put it back exactly (undo/redo)."""

    state: LabelState
    proposal_id: int | None
    mask: np.ndarray | None = None   # the corrected mask (``corrected`` only)


@dataclass(frozen=True)
class Proposal:
    id: int
    item_id: int
    method: str
    round_id: int | None
    checkpoint_id: int | None
    params: dict[str, Any]
    confidence: float | None
    array_key: str
    created_at: str


class LabelStore:
    """Proposals and reviews; masks are label images (0 background, class label values)."""

    def __init__(self, db: Database, arrays: ArrayStore) -> None:
        self.db = db
        self.arrays = arrays

    def add_proposal(self, item_id: int, mask: np.ndarray, *, method: str,
                     round_id: int | None = None, checkpoint_id: int | None = None,
                     params: dict[str, Any] | None = None,
                     confidence: float | None = None) -> Proposal:
        """Store a new proposal for an item; earlier proposals stay as history."""
        self._check_mask(item_id, mask)
        key = self.arrays.write(PROPOSAL_PREFIX, mask, attrs={"item_id": item_id})
        with self.db.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO proposals (item_id, round_id, checkpoint_id, method, params,"
                " confidence, array_key, created_at) VALUES (?,?,?,?,?,?,?,?)",
                (item_id, round_id, checkpoint_id, method, to_json(params or {}),
                 None if confidence is None else float(confidence), key, utc_now()),
            )
        return self.proposal(int(cur.lastrowid))

    def proposal(self, proposal_id: int) -> Proposal:
        row = self.db.row("SELECT * FROM proposals WHERE id = ?", (proposal_id,))
        if row is None:
            raise ProjectError(f"no proposal with id {proposal_id}")
        return _proposal_from_row(row)

    def latest_proposal(self, item_id: int) -> Proposal | None:
        """The item's current proposal: the newest of a finished round (see :data:`CURRENT`)."""
        row = self.db.row(
            f"SELECT * FROM proposals WHERE item_id = ? AND {CURRENT} ORDER BY id DESC LIMIT 1",
            (item_id,),
        )
        return None if row is None else _proposal_from_row(row)

    def proposal_mask(self, proposal: Proposal) -> np.ndarray:
        return self.arrays.read(proposal.array_key)

    def review(self, item_id: int, state: LabelState | str, mask: np.ndarray | None = None, *,
               proposal_id: int | None = None) -> None:
        """Record the person's decision; ``corrected`` needs the corrected mask.

        ``proposal_id`` is the proposal the person looked at: the decision is refused when it is
        no longer the item's current one (a round finished in between), instead of recording a
        decision about a mask nobody saw.
        """
        state = LabelState(state)
        if state not in REVIEW_STATES:
            raise ProjectError(f"{state.value!r} is not a review decision")
        if (state is LabelState.CORRECTED) != (mask is not None):
            raise ProjectError("a mask is given with 'corrected', and only then")
        proposal = self.latest_proposal(item_id)
        if state is LabelState.ACCEPTED and proposal is None:
            raise ProjectError(f"item {item_id} has no proposal to accept")
        if proposal_id is not None and (proposal is None or proposal.id != proposal_id):
            raise ProjectError(
                f"item {item_id}: the proposal shown (#{proposal_id}) is no longer the current "
                "one; a newer round finished. Look at the item again, then decide."
            )
        self._write_review(item_id, ReviewRecord(state, proposal.id if proposal else None, mask))

    def review_record(self, item_id: int) -> ReviewRecord | None:
        """The item's decision as stored (None: not reviewed)."""
        row = self.db.row("SELECT * FROM reviews WHERE item_id = ?", (item_id,))
        if row is None:
            return None
        mask = self.arrays.read(row["array_key"]) if row["array_key"] else None
        return ReviewRecord(LabelState(row["state"]), row["proposal_id"], mask)

    def put_review(self, item_id: int, record: ReviewRecord | None) -> None:
        """Store ``record`` as the item's decision exactly as it was (None: not reviewed).

        This is how a decision is undone or redone: unlike :meth:`review` it may point at a
        proposal that is no longer the item's newest, the one the person decided on then.
        """
        if record is None:
            self.clear_review(item_id)
            return
        if record.proposal_id is not None:
            owner = self.db.scalar("SELECT item_id FROM proposals WHERE id = ?",
                                   (record.proposal_id,))
            if owner != item_id:
                raise ProjectError(f"item {item_id}: proposal #{record.proposal_id} is not its own")
        if (record.state is LabelState.CORRECTED) != (record.mask is not None):
            raise ProjectError("a mask is given with 'corrected', and only then")
        self._write_review(item_id, record)

    def _write_review(self, item_id: int, record: ReviewRecord) -> None:
        """Store ``record`` (its corrected mask as a new array) and drop the replaced mask."""
        key = None
        if record.mask is not None:
            self._check_mask(item_id, record.mask)
            key = self.arrays.write(CORRECTION_PREFIX, record.mask, attrs={"item_id": item_id})
        old_key = self.db.scalar("SELECT array_key FROM reviews WHERE item_id = ?", (item_id,))
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO reviews (item_id, state, proposal_id, array_key,"
                " updated_at) VALUES (?,?,?,?,?)",
                (item_id, LabelState(record.state).value, record.proposal_id, key, utc_now()),
            )
        if old_key and old_key != key:
            self.arrays.delete(old_key)

    def reviewed_proposals(self) -> dict[int, int]:
        """``item id → proposal id`` the person decided on, for every reviewed item."""
        return {int(r[0]): int(r[1]) for r in self.db.rows(
            "SELECT item_id, proposal_id FROM reviews WHERE proposal_id IS NOT NULL")}

    def clear_review(self, item_id: int) -> None:
        """Undo a decision: the item goes back to waiting for review."""
        old_key = self.db.scalar("SELECT array_key FROM reviews WHERE item_id = ?", (item_id,))
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM reviews WHERE item_id = ?", (item_id,))
        if old_key:
            self.arrays.delete(old_key)

    def state(self, item_id: int) -> LabelState:
        reviewed = self.db.scalar("SELECT state FROM reviews WHERE item_id = ?", (item_id,))
        if reviewed:
            return LabelState(reviewed)
        has = self.db.scalar(f"SELECT 1 FROM proposals WHERE item_id = ? AND {CURRENT} LIMIT 1",
                             (item_id,))
        return LabelState.PROPOSED if has else LabelState.NONE

    def states(self) -> dict[int, LabelState]:
        """The state of every item that has a proposal or a review."""
        result = {
            r[0]: LabelState.PROPOSED
            for r in self.db.rows(f"SELECT DISTINCT item_id FROM proposals WHERE {CURRENT}")
        }
        for item_id, state in self.db.rows("SELECT item_id, state FROM reviews"):
            result[item_id] = LabelState(state)
        return result

    def final_mask(self, item_id: int) -> np.ndarray | None:
        """The label a person stands behind: the correction or the accepted proposal."""
        row = self.db.row("SELECT * FROM reviews WHERE item_id = ?", (item_id,))
        if row is None or row["state"] == LabelState.REJECTED.value:
            return None
        if row["state"] == LabelState.CORRECTED.value:
            return self.arrays.read(row["array_key"])
        return self.proposal_mask(self.proposal(row["proposal_id"]))

    def reviewed_masks(self) -> dict[int, tuple[LabelState, np.ndarray]]:
        """Every mask a person stands behind (accepted or corrected), by item id."""
        rows = self.db.rows("SELECT item_id, state FROM reviews WHERE state IN (?, ?)",
                            (LabelState.ACCEPTED.value, LabelState.CORRECTED.value))
        found = {}
        for item_id, state in rows:
            mask = self.final_mask(item_id)
            if mask is not None:
                found[item_id] = (LabelState(state), mask)
        return found

    def referenced_keys(self) -> set[str]:
        keys = {r[0] for r in self.db.rows("SELECT array_key FROM proposals")}
        keys |= {r[0] for r in self.db.rows("SELECT array_key FROM reviews") if r[0]}
        return keys

    def state_counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in LabelState if s is not LabelState.NONE}
        for state in self.states().values():
            counts[state.value] += 1
        return counts

    def _check_mask(self, item_id: int, mask: np.ndarray) -> None:
        row = self.db.row("SELECT name, height, width FROM items WHERE id = ?", (item_id,))
        if row is None:
            raise ProjectError(f"no item with id {item_id}")
        if mask.shape != (row["height"], row["width"]):
            raise ProjectError(
                f"{row['name']}: mask shape {mask.shape} does not match the item "
                f"({row['height']}, {row['width']})"
            )
        if not np.issubdtype(mask.dtype, np.integer) and mask.dtype != bool:
            raise ProjectError(f"{row['name']}: a mask must hold integer labels, not {mask.dtype}")


def _proposal_from_row(row) -> Proposal:
    return Proposal(
        id=row["id"], item_id=row["item_id"], method=row["method"], round_id=row["round_id"],
        checkpoint_id=row["checkpoint_id"], params=json.loads(row["params"]),
        confidence=row["confidence"], array_key=row["array_key"], created_at=row["created_at"],
    )
