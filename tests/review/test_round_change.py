"""What a round changed in the proposals nobody reviewed: pixels flipped, confidence."""

from __future__ import annotations

import numpy as np
import pytest

from napari_weaksam.project import LabelState, Project
from napari_weaksam.review.round_change import round_change
from napari_weaksam.sample import make_sample_project


@pytest.fixture
def project(tmp_path):
    with Project.open(make_sample_project(tmp_path / "sample")) as opened:
        yield opened


def _round(project, masks: dict[int, tuple[np.ndarray, float]]) -> int:
    round_id = project.rounds.start_round("manual", {"stage": "test"})
    for item_id, (mask, confidence) in masks.items():
        project.labels.add_proposal(item_id, mask, method="manual", round_id=round_id,
                                    confidence=confidence)
    project.rounds.finish_round(round_id, "done")
    return round_id


def test_counts_flipped_pixels_and_confidence_of_unreviewed_items_only(project):
    a, b, c, d = [i for i in project.catalog.items() if not i.is_slice][:4]
    empty = {i.id: np.zeros((i.height, i.width), np.uint8) for i in (a, b, c, d)}
    _round(project, {a.id: (empty[a.id], 0.2), b.id: (empty[b.id], 0.4),
                     c.id: (empty[c.id], 0.5)})
    project.labels.review(c.id, LabelState.ACCEPTED)            # c is the person's now
    changed = empty[a.id].copy()
    changed[:10, :10] = 1                                        # 100 pixels of a flip
    second = _round(project, {a.id: (changed, 0.6), b.id: (empty[b.id], 0.8),
                              c.id: (changed, 0.9), d.id: (empty[d.id], 0.5)})
    result = round_change(project, second)
    assert (result.compared, result.new) == (2, 1)               # a and b; d is new; c reviewed
    assert result.changed_pixels == pytest.approx(100 / (a.height * a.width + b.height * b.width))
    assert result.confidence_before == pytest.approx(0.3)
    assert result.confidence_after == pytest.approx(0.7)
    assert "0.30 → 0.70" in result.describe()


def test_a_first_round_has_nothing_to_compare(project):
    a = project.catalog.items()[0]
    first = _round(project, {a.id: (np.zeros((a.height, a.width), np.uint8), 0.5)})
    result = round_change(project, first)
    assert (result.compared, result.new, result.changed_pixels) == (0, 1, 0.0)
    assert result.describe() == f"round #{first}: 1 images proposed for the first time"
