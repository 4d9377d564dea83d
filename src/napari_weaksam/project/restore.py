"""Going back to an earlier round: its proposals become the latest again, history is kept.

Nothing is deleted: a new round (method ``restore``) is recorded whose proposals are copies of the
chosen round's, pointing at the same checkpoint, so the review queue and exports see them as the
current proposals. Reviews are never touched (a person's decision outlives any round). The copies
obey today's tags: a class a person tagged absent since that round has its pixels cleared, as a
method would (the count is in the new round's metrics).
"""

from __future__ import annotations

import numpy as np

from .errors import ProjectError
from .project import Project

RESTORE_METHOD = "restore"


def restore_round(project: Project, round_id: int) -> int:
    """Make ``round_id``'s proposals current again; returns the new round's id."""
    project.db.ensure_writable()
    known = {r.id: r for r in project.rounds.rounds()}
    if round_id not in known:
        raise ProjectError(f"there is no round {round_id}")
    chosen = known[round_id]
    rows = project.db.rows("SELECT * FROM proposals WHERE round_id = ? ORDER BY id", (round_id,))
    if not rows:
        raise ProjectError(f"round {round_id} has no proposals to go back to")
    new_round = project.rounds.start_round(
        RESTORE_METHOD, {"restored_round": round_id, "method": chosen.method,
                         "stage": f"back to #{round_id}"})
    cleared = 0
    try:
        for row in rows:
            proposal = project.labels.proposal(row["id"])
            mask = project.labels.proposal_mask(proposal)
            absent = np.isin(mask, sorted(project.catalog.absent_values(proposal.item_id)))
            if absent.any():
                mask = np.where(absent, 0, mask).astype(mask.dtype)
                cleared += 1
            project.labels.add_proposal(
                proposal.item_id, mask, method=proposal.method,
                round_id=new_round, checkpoint_id=proposal.checkpoint_id,
                params=proposal.params | {"restored_round": round_id},
                confidence=proposal.confidence)
    except BaseException as error:
        project.rounds.abandon_round(new_round, error)
        raise
    project.rounds.finish_round(new_round, "done", checkpoint_id=chosen.checkpoint_id,
                                metrics={"restored_round": round_id, "proposals": len(rows),
                                         "cleared_by_tags": cleared})
    return new_round
