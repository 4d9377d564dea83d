"""How much a round changed the proposals nobody has reviewed yet: is another Retrain (or more
corrections) still moving them?

For each item the round proposed and a person has not decided on, its proposal is compared with
the item's previous current proposal (of a finished round): the share of pixels whose label
changed, and the confidences before and after. Reviewed items are left out: their label is the
person's, whatever the round proposed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..project import Project
from ..project.labels import CURRENT


@dataclass(frozen=True)
class RoundChange:
    """The unreviewed proposals of one round against their previous ones."""

    round_id: int
    compared: int                 # unreviewed items that had a previous proposal
    new: int                      # unreviewed items proposed for the first time
    changed_pixels: float         # share of the compared items' pixels whose label changed
    confidence_before: float | None
    confidence_after: float | None

    def describe(self) -> str:
        if not self.compared:
            return f"round #{self.round_id}: {self.new} images proposed for the first time"
        text = (f"unreviewed images vs their previous proposals: "
                f"{self.changed_pixels:.1%} of pixels changed")
        if self.confidence_before is not None and self.confidence_after is not None:
            text += (f", mean confidence {self.confidence_before:.2f} → "
                     f"{self.confidence_after:.2f}")
        return text


def round_change(project: Project, round_id: int) -> RoundChange:
    """Compare round ``round_id``'s proposals of unreviewed items with their previous ones."""
    rows = project.db.rows(
        "SELECT p.id, p.item_id, p.confidence FROM proposals p WHERE p.round_id = ?"
        " AND p.item_id NOT IN (SELECT item_id FROM reviews)", (round_id,))
    labels = project.labels
    changed = total = new = compared = 0
    before_conf: list[float] = []
    after_conf: list[float] = []
    for proposal_id, item_id, confidence in rows:
        previous = project.db.row(
            f"SELECT id, confidence FROM proposals WHERE item_id = ? AND id < ? AND {CURRENT}"
            " ORDER BY id DESC LIMIT 1", (item_id, proposal_id))
        if previous is None:
            new += 1
            continue
        before = labels.proposal_mask(labels.proposal(int(previous["id"])))
        after = labels.proposal_mask(labels.proposal(int(proposal_id)))
        if before.shape != after.shape:
            continue
        compared += 1
        changed += int(np.count_nonzero(before != after))
        total += before.size
        if previous["confidence"] is not None and confidence is not None:
            before_conf.append(float(previous["confidence"]))
            after_conf.append(float(confidence))
    return RoundChange(
        round_id, compared, new, changed / total if total else 0.0,
        float(np.mean(before_conf)) if before_conf else None,
        float(np.mean(after_conf)) if after_conf else None)
