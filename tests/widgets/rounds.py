"""A finished round made by hand, for the dock tests that need proposals."""

from __future__ import annotations

import numpy as np

from napari_weaksam.project import Project


def propose_round(project: Project, masks: dict[int, np.ndarray],
                  confidence: float = 0.5) -> int:
    """One finished round (method ``manual``) with the given proposals (item id → mask)."""
    round_id = project.rounds.start_round("manual")
    for item_id, mask in masks.items():
        project.labels.add_proposal(item_id, mask, method="manual", round_id=round_id,
                                    confidence=confidence)
    project.rounds.finish_round(round_id, "done")
    return round_id
