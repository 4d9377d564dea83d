"""Going back to an earlier round's proposals keeps history and every review."""

from __future__ import annotations

import numpy as np
import pytest

from napari_weaksam.project import LabelState, Project, ProjectError
from napari_weaksam.project.restore import restore_round
from napari_weaksam.sample import make_sample_project


def _round(project: Project, items, value: int) -> int:
    round_id = project.rounds.start_round("epsam", {"stage": f"v{value}"})
    for item in items:
        mask = np.full((item.height, item.width), value, np.uint8)
        project.labels.add_proposal(item.id, mask, method="epsam", round_id=round_id,
                                    confidence=0.1 * value)
    project.rounds.finish_round(round_id, "done")
    return round_id


def test_restoring_makes_old_proposals_current_and_keeps_reviews(tmp_path):
    root = make_sample_project(tmp_path / "p")
    with Project.open(root) as project:
        items = project.catalog.items()[:3]
        first = _round(project, items, 1)
        _round(project, items, 2)
        corrected = np.zeros((items[0].height, items[0].width), np.uint8)
        corrected[:4, :4] = 1
        project.labels.review(items[0].id, LabelState.CORRECTED, corrected)
        new = restore_round(project, first)
    with Project.open(root, read_only=True) as project:
        for item in items:
            latest = project.labels.latest_proposal(item.id)
            assert latest.round_id == new and latest.params["restored_round"] == first
            assert (project.labels.proposal_mask(latest) == 1).all()
            assert latest.confidence == pytest.approx(0.1)
        assert project.labels.state(items[0].id) is LabelState.CORRECTED
        assert np.array_equal(project.labels.final_mask(items[0].id), corrected)
        assert len(project.rounds.rounds()) == 3
        assert project.db.scalar("SELECT COUNT(*) FROM proposals") == 9


def test_restoring_a_round_without_proposals_is_refused(tmp_path):
    root = make_sample_project(tmp_path / "p")
    with Project.open(root) as project:
        empty = project.rounds.start_round("epsam")
        with pytest.raises(ProjectError, match="no proposals"):
            restore_round(project, empty)
        with pytest.raises(ProjectError, match="no round 99"):
            restore_round(project, 99)


def test_restored_proposals_obey_the_tags_of_today(tmp_path):
    """A class tagged absent since the round was made gets no pixels in the restored copy."""
    root = make_sample_project(tmp_path / "p")
    with Project.open(root) as project:
        items = project.catalog.items()[:2]
        tumour = project.catalog.classes()[0].id
        first = _round(project, items, 1)
        project.catalog.set_tags(items[0].id, set())         # re-tagged: no finding
        project.catalog.set_tags(items[1].id, {tumour})
        new = restore_round(project, first)
        masks = [project.labels.proposal_mask(project.labels.latest_proposal(i.id))
                 for i in items]
        assert not masks[0].any() and (masks[1] == 1).all()
        restored = next(r for r in project.rounds.rounds() if r.id == new)
        assert restored.metrics["cleared_by_tags"] == 1
