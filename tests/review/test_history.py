"""Undo and redo of review decisions on the real sample project."""

from __future__ import annotations

import numpy as np
import pytest

from napari_weaksam.project import LabelState, Project
from napari_weaksam.review import ReviewQueue
from napari_weaksam.review.history import DecisionHistory, after_text
from napari_weaksam.sample import make_sample_project


@pytest.fixture
def project(tmp_path):
    with Project.open(make_sample_project(tmp_path / "p")) as opened:
        yield opened


def _propose(project, n: int = 3) -> list:
    items = project.catalog.items()[:n]
    for item in items:
        mask = np.zeros((item.height, item.width), np.uint8)
        mask[5:25, 10:50] = 1
        project.labels.add_proposal(item.id, mask, method="manual", confidence=0.5)
    return items


def _decide(queue, history, action, *args):
    entry = queue.current
    before = history.before(entry.item.id)
    getattr(queue, action)(*args)
    return history.record(entry.item.id, entry.item.name, before)


def test_undo_acts_on_the_decided_item_and_redo_brings_the_correction_back(project):
    items = _propose(project)
    queue = ReviewQueue(project)
    queue.reload(order="position")
    history = DecisionHistory(project)
    _decide(queue, history, "accept")
    painted = np.zeros((items[1].height, items[1].width), np.uint8)
    painted[40:60, 40:60] = 1
    _decide(queue, history, "correct", painted)
    assert queue.current.item.id == items[2].id   # the queue moved on

    undone = history.undo()
    assert undone.item_id == items[1].id            # the corrected item, not the shown one
    assert project.labels.state(items[1].id) is LabelState.PROPOSED
    assert project.labels.state(items[0].id) is LabelState.ACCEPTED
    assert "now to review" in after_text(undone, undone=True)
    redone = history.redo()
    assert redone.item_id == items[1].id
    np.testing.assert_array_equal(project.labels.final_mask(items[1].id), painted)
    history.undo()
    history.undo()
    assert project.labels.state(items[0].id) is LabelState.PROPOSED
    assert not history.can_undo and history.can_redo


def test_a_new_decision_forgets_redo_and_undo_restores_an_earlier_decision(project):
    items = _propose(project, 1)
    queue = ReviewQueue(project)
    queue.reload()
    history = DecisionHistory(project)
    _decide(queue, history, "reject")
    _decide(queue, history, "accept")     # changes its mind on the same item
    history.undo()
    assert project.labels.state(items[0].id) is LabelState.REJECTED
    _decide(queue, history, "accept")
    assert not history.can_redo
