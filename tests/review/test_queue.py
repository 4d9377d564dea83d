"""The review queue on the real sample project (H&E patches + brain MR slices), no viewer."""

from __future__ import annotations

import numpy as np
import pytest

from napari_weaksam.project import LabelState, Project, ProjectError, ReadOnlyProjectError
from napari_weaksam.review import ReviewQueue, latest_proposals, review_rounds, state_name
from napari_weaksam.sample import make_sample_project


@pytest.fixture
def root(tmp_path):
    return make_sample_project(tmp_path / "p")


@pytest.fixture
def project(root):
    with Project.open(root) as opened:
        yield opened


def box_mask(item, top: int, value: int = 1) -> np.ndarray:
    mask = np.zeros((item.height, item.width), np.uint8)
    mask[top:top + 20, 10:50] = value
    return mask


def propose(project, confidences: dict[str, float | None], round_id=None, top=5) -> dict:
    """Proposals for the named items; returns name → item."""
    items = {i.name: i for i in project.catalog.items()}
    for name, confidence in confidences.items():
        project.labels.add_proposal(items[name].id, box_mask(items[name], top), method="manual",
                                    confidence=confidence, round_id=round_id)
    return {name: items[name] for name in confidences}


HE = ["adenocarcinoma_GT2001837-1-400-002", "adenocarcinoma_GT2001849-1-400-004",
      "normal_GT2000000-1-400-001", "polyp_GT2012173-1-400-003"]
CONFIDENCES = {HE[0]: 0.9, HE[1]: 0.2, "brain1 z010": None, "brain1 z012": 0.5, HE[3]: 0.7}


def names(queue: ReviewQueue) -> list[str]:
    return [e.item.name for e in queue.entries]


def test_orders_least_confident_first_or_by_position(project):
    items = propose(project, CONFIDENCES)
    queue = ReviewQueue(project)
    queue.reload()
    assert names(queue) == ["brain1 z010", HE[1], "brain1 z012", HE[3], HE[0]]
    assert [e.confidence for e in queue.entries] == [None, 0.2, 0.5, 0.7, 0.9]
    assert queue.current.item.name == "brain1 z010" and queue.index == 0
    queue.reload(order="position")
    assert [e.item.id for e in queue.entries] == sorted(i.id for i in items.values())
    assert queue.current.item.name == "brain1 z010"  # the current item is kept
    assert all(e.state is LabelState.PROPOSED for e in queue.entries)
    with pytest.raises(ValueError, match="order"):
        queue.reload(order="random")
    with pytest.raises(ValueError, match="filter"):
        queue.reload(state_filter="done")


def test_next_and_previous_stop_at_the_ends(project):
    propose(project, CONFIDENCES)
    queue = ReviewQueue(project)
    queue.reload()
    assert not queue.previous() and queue.index == 0
    for _ in range(10):
        queue.next()
    assert queue.index == len(queue.entries) - 1 and not queue.next()
    assert queue.go_to(queue.entries[1].item.id) and queue.index == 1
    assert not queue.go_to(10_000) and queue.index == 1


def test_decisions_persist_and_move_to_the_next_to_review(project, root):
    items = propose(project, CONFIDENCES)
    queue = ReviewQueue(project)
    queue.reload(order="position")  # HE[0], HE[1], z010, z012, HE[3]
    accepted = queue.accept()
    assert accepted.item.name == HE[0] and accepted.state is LabelState.ACCEPTED
    assert queue.current.item.name == HE[1]
    queue.reject()
    assert queue.current.item.name == "brain1 z010"
    correction = box_mask(items["brain1 z010"], 100, value=1)
    queue.correct(correction)
    assert queue.current.item.name == "brain1 z012"
    assert [state_name(e.state) for e in queue.entries] == [
        "accepted", "rejected", "corrected", "to review", "to review"]
    assert queue.counts() == {"to review": 2, "accepted": 1, "corrected": 1, "rejected": 1}

    project.close()
    with Project.open(root, read_only=True) as reopened:
        labels = reopened.labels
        ids = {name: item.id for name, item in items.items()}
        assert labels.state(ids[HE[0]]) is LabelState.ACCEPTED
        assert labels.state(ids[HE[1]]) is LabelState.REJECTED
        assert labels.state(ids["brain1 z010"]) is LabelState.CORRECTED
        assert labels.state(ids["brain1 z012"]) is LabelState.PROPOSED
        np.testing.assert_array_equal(labels.final_mask(ids[HE[0]]), box_mask(items[HE[0]], 5))
        np.testing.assert_array_equal(labels.final_mask(ids["brain1 z010"]), correction)
        assert labels.final_mask(ids[HE[1]]) is None


def test_next_to_review_goes_back_to_skipped_entries_and_stays_when_all_done(project):
    propose(project, CONFIDENCES)
    queue = ReviewQueue(project)
    queue.reload(order="position")
    queue.next()  # skip the first entry
    for _ in range(4):
        queue.accept()
    assert queue.current.item.name == HE[0]  # the skipped one, from the start
    queue.reject()
    assert queue.current.item.name == HE[0]  # nothing left to review: stay
    assert queue.counts()["to review"] == 0


def test_filters_list_each_state_and_counts_cover_everything(project):
    propose(project, CONFIDENCES)
    queue = ReviewQueue(project)
    queue.reload(order="position")
    queue.accept()
    queue.reject()
    queue.reload(order="position", state_filter="to review")
    assert names(queue) == ["brain1 z010", "brain1 z012", HE[3]]
    queue.reload(order="position", state_filter="accepted")
    assert names(queue) == [HE[0]]
    queue.reload(state_filter="rejected")
    assert names(queue) == [HE[1]]
    queue.reload(state_filter="corrected")
    assert queue.entries == [] and queue.current is None and queue.index == -1
    assert queue.accept() is None  # nothing to decide on
    assert queue.counts() == {"to review": 3, "accepted": 1, "corrected": 0, "rejected": 1}


def test_undo_puts_the_item_back_to_review(project):
    items = propose(project, CONFIDENCES)
    queue = ReviewQueue(project)
    queue.reload(order="position")
    queue.correct(box_mask(items[HE[0]], 60))
    queue.previous()
    undone = queue.undo_review()
    assert undone.item.name == HE[0] and undone.state is LabelState.PROPOSED
    assert queue.current.item.name == HE[0]  # undo does not move
    assert project.labels.state(items[HE[0]].id) is LabelState.PROPOSED
    assert project.labels.final_mask(items[HE[0]].id) is None


def test_a_new_proposal_after_a_review_does_not_change_it(project):
    items = propose(project, CONFIDENCES)
    queue = ReviewQueue(project)
    queue.reload(order="position")
    queue.accept()
    queue.correct(box_mask(items[HE[1]], 150))
    propose(project, {HE[0]: 0.99, HE[1]: 0.99}, top=80)  # e.g. a later round
    for name, state, top in ((HE[0], LabelState.ACCEPTED, 5), (HE[1], LabelState.CORRECTED, 150)):
        assert project.labels.state(items[name].id) is state
        np.testing.assert_array_equal(project.labels.final_mask(items[name].id),
                                      box_mask(items[name], top))
    queue.reload(order="position")
    assert queue.entries[0].state is LabelState.ACCEPTED
    assert queue.entries[0].confidence == pytest.approx(0.9)  # the accepted one's, not 0.99


def test_only_the_latest_rounds_proposals_can_be_accepted(project):
    first = project.rounds.start_round("manual", {"stage": "preliminary"})
    items = propose(project, {HE[0]: 0.4, HE[1]: 0.6}, round_id=first, top=5)
    project.rounds.finish_round(first, "done")
    second = project.rounds.start_round("manual", {"stage": "round 1"})
    propose(project, {HE[0]: 0.8}, round_id=second, top=120)
    project.rounds.finish_round(second, "done")
    assert [r.id for r in review_rounds(project)] == [first, second]
    assert latest_proposals(project, first)[items[HE[0]].id][1] == pytest.approx(0.4)

    queue = ReviewQueue(project)
    queue.reload(order="position", round_id=first)
    assert names(queue) == [HE[0], HE[1]]
    with pytest.raises(ValueError, match="only the latest proposal"):
        queue.accept()
    assert project.labels.state(items[HE[0]].id) is LabelState.PROPOSED
    queue.next()
    queue.accept()  # HE[1] has nothing newer: fine
    assert project.labels.state(items[HE[1]].id) is LabelState.ACCEPTED
    queue.go_to(items[HE[0]].id)
    queue.correct(box_mask(items[HE[0]], 5))  # a correction keeps round 1's mask
    assert project.labels.state(items[HE[0]].id) is LabelState.CORRECTED

    queue.reload(order="position", round_id=second)
    assert names(queue) == [HE[0]]
    queue.undo_review()
    queue.accept()
    np.testing.assert_array_equal(project.labels.final_mask(items[HE[0]].id),
                                  box_mask(items[HE[0]], 120))


def test_a_wrong_size_correction_is_a_clear_error_and_changes_nothing(project):
    propose(project, CONFIDENCES)
    queue = ReviewQueue(project)
    queue.reload(order="position")
    with pytest.raises(ProjectError, match=r"mask shape \(10, 10\) does not match the item"):
        queue.correct(np.ones((10, 10), np.uint8))
    assert queue.index == 0 and queue.current.state is LabelState.PROPOSED
    assert project.labels.state(queue.current.item.id) is LabelState.PROPOSED


def test_a_read_only_project_raises_its_own_error(root):
    with Project.open(root) as project:
        propose(project, CONFIDENCES)
    with Project.open(root, read_only=True) as project:
        queue = ReviewQueue(project)
        queue.reload()
        with pytest.raises(ReadOnlyProjectError, match="read-only"):
            queue.reject()
        assert queue.current.state is LabelState.PROPOSED


def test_a_reviewed_item_shows_the_proposal_decided_on_not_a_newer_round(project):
    """An accepted item keeps showing the accepted proposal (its mask, confidence and round)
    after a newer round proposed something else; a rejected one too."""
    first = project.rounds.start_round("manual")
    items = propose(project, {HE[0]: 0.9, HE[1]: 0.4}, round_id=first)
    project.rounds.finish_round(first, "done")
    queue = ReviewQueue(project)
    queue.reload(order="position")
    accepted = queue.accept()
    queue.reject()
    second = project.rounds.start_round("manual")
    propose(project, {HE[0]: 0.3, HE[1]: 0.8}, round_id=second, top=40)
    project.rounds.finish_round(second, "done")
    queue.reload(order="position")
    shown = {e.item.name: e for e in queue.entries}
    assert shown[HE[0]].proposal_id == accepted.proposal_id
    assert shown[HE[0]].confidence == pytest.approx(0.9) and shown[HE[0]].round_id == first
    assert shown[HE[1]].round_id == first and shown[HE[1]].method == "manual"
    mask = project.labels.proposal_mask(project.labels.proposal(shown[HE[0]].proposal_id))
    np.testing.assert_array_equal(mask, box_mask(items[HE[0]], 5))
    queue.go_to(items[HE[0]].id)
    queue.undo_review()
    queue.reload(order="position")
    assert {e.item.name: e.round_id for e in queue.entries}[HE[0]] == second


def test_empty_proposals_of_no_finding_items_can_be_accepted_at_once(project):
    items = {i.name: i for i in project.catalog.items()}
    tumour = project.catalog.classes()[0].id
    project.catalog.set_tags(items[HE[2]].id, set())            # no finding, empty proposal
    project.catalog.set_tags(items[HE[3]].id, set())            # no finding, non-empty proposal
    project.catalog.set_tags(items[HE[0]].id, {tumour})         # tumour, empty proposal
    for name in (HE[2], HE[0]):
        empty = np.zeros((items[name].height, items[name].width), np.uint8)
        project.labels.add_proposal(items[name].id, empty, method="manual", confidence=1.0)
    propose(project, {HE[3]: 0.9})
    queue = ReviewQueue(project)
    queue.reload()
    found = queue.empty_negatives()
    assert [e.item.name for e in found] == [HE[2]]
    assert queue.accept_many(found) == 1
    assert project.labels.state(items[HE[2]].id) is LabelState.ACCEPTED
    assert queue.empty_negatives() == []


def test_the_change_from_the_previous_round_is_counted_in_pixels(project):
    from napari_weaksam.review.queue import proposal_change

    first = project.rounds.start_round("manual")
    items = propose(project, {HE[0]: 0.5}, round_id=first, top=5)
    project.rounds.finish_round(first, "done")
    item = items[HE[0]]
    only = project.labels.latest_proposal(item.id)
    assert proposal_change(project, item.id, only.id) is None
    second = project.rounds.start_round("manual")
    propose(project, {HE[0]: 0.5}, round_id=second, top=15)   # 20 rows, shifted by 10
    project.rounds.finish_round(second, "done")
    latest = project.labels.latest_proposal(item.id)
    change = proposal_change(project, item.id, latest.id)
    assert (change.previous_round, change.added, change.removed) == (first, 400, 400)
    assert change.describe() == f"vs round #{first}: +400 px, −400 px"
