"""Proposals and reviews: states, final masks, mask validation."""

from __future__ import annotations

import numpy as np
import pytest
from project_helpers import add_fake_items

from napari_weaksam.project import LabelState, ProjectError


def _mask(value: int, shape=(256, 256)) -> np.ndarray:
    mask = np.zeros(shape, dtype=np.uint8)
    mask[10:50, 20 + value:80] = value
    return mask


@pytest.fixture
def item(project):
    return add_fake_items(project, 1)[0]


def test_state_is_none_then_proposed(project, item):
    assert project.labels.state(item) is LabelState.NONE
    assert project.labels.latest_proposal(item) is None
    proposal = project.labels.add_proposal(item, _mask(1), method="cam", confidence=0.5,
                                           params={"threshold": 0.3})
    assert project.labels.state(item) is LabelState.PROPOSED
    assert (proposal.method, proposal.confidence) == ("cam", 0.5)
    assert proposal.params == {"threshold": 0.3}
    np.testing.assert_array_equal(project.labels.proposal_mask(proposal), _mask(1))
    assert project.labels.final_mask(item) is None  # a proposal alone is not final


def test_accepted_final_mask_is_the_proposal_mask(project, item):
    project.labels.add_proposal(item, _mask(2), method="cam")
    project.labels.review(item, "accepted")
    assert project.labels.state(item) is LabelState.ACCEPTED
    np.testing.assert_array_equal(project.labels.final_mask(item), _mask(2))


def test_corrected_final_mask_is_the_correction(project, item):
    project.labels.add_proposal(item, _mask(1), method="cam")
    project.labels.review(item, LabelState.CORRECTED, mask=_mask(3))
    assert project.labels.state(item) is LabelState.CORRECTED
    np.testing.assert_array_equal(project.labels.final_mask(item), _mask(3))


def test_rejected_has_no_final_mask(project, item):
    project.labels.add_proposal(item, _mask(1), method="cam")
    project.labels.review(item, "rejected")
    assert project.labels.state(item) is LabelState.REJECTED
    assert project.labels.final_mask(item) is None


def test_new_proposal_after_review_keeps_review_and_final_mask(project, item):
    first = project.labels.add_proposal(item, _mask(1), method="cam")
    project.labels.review(item, "accepted")
    second = project.labels.add_proposal(item, _mask(4), method="sam", round_id=None)
    assert project.labels.latest_proposal(item) == second
    assert project.labels.state(item) is LabelState.ACCEPTED
    np.testing.assert_array_equal(project.labels.final_mask(item), _mask(1))
    np.testing.assert_array_equal(project.labels.proposal_mask(first), _mask(1))


def test_new_proposal_after_correction_keeps_the_correction(project, item):
    project.labels.add_proposal(item, _mask(1), method="cam")
    project.labels.review(item, "corrected", mask=_mask(5))
    project.labels.add_proposal(item, _mask(6), method="sam")
    assert project.labels.state(item) is LabelState.CORRECTED
    np.testing.assert_array_equal(project.labels.final_mask(item), _mask(5))


def test_replacing_a_correction_deletes_the_old_array(project, item):
    project.labels.add_proposal(item, _mask(1), method="cam")
    project.labels.review(item, "corrected", mask=_mask(2))
    old = project.labels.referenced_keys()
    project.labels.review(item, "corrected", mask=_mask(3))
    (old_correction,) = {k for k in old if k.startswith("masks/corrections")}
    assert not project.arrays.exists(old_correction)
    np.testing.assert_array_equal(project.labels.final_mask(item), _mask(3))


def test_clear_review_goes_back_to_proposed(project, item):
    project.labels.add_proposal(item, _mask(1), method="cam")
    project.labels.review(item, "corrected", mask=_mask(2))
    project.labels.clear_review(item)
    assert project.labels.state(item) is LabelState.PROPOSED
    assert project.arrays.keys("masks/corrections") == []


def test_states_and_counts_over_several_items(project):
    a, b, c, d, _e = add_fake_items(project, 5)
    for i in (a, b, c, d):
        project.labels.add_proposal(i, _mask(1), method="cam")
    project.labels.review(a, "accepted")
    project.labels.review(b, "corrected", mask=_mask(2))
    project.labels.review(c, "rejected")
    assert project.labels.states() == {
        a: LabelState.ACCEPTED, b: LabelState.CORRECTED, c: LabelState.REJECTED,
        d: LabelState.PROPOSED,
    }
    assert project.labels.state_counts() == {
        "proposed": 1, "accepted": 1, "corrected": 1, "rejected": 1,
    }


def test_accept_without_proposal_is_refused(project, item):
    with pytest.raises(ProjectError, match="no proposal to accept"):
        project.labels.review(item, "accepted")
    assert project.labels.state(item) is LabelState.NONE


@pytest.mark.parametrize("state, mask", [("corrected", None), ("accepted", _mask(1)),
                                         ("rejected", _mask(1))])
def test_mask_goes_with_corrected_only(project, item, state, mask):
    project.labels.add_proposal(item, _mask(1), method="cam")
    with pytest.raises(ProjectError, match="corrected"):
        project.labels.review(item, state, mask=mask)
    assert project.labels.state(item) is LabelState.PROPOSED


@pytest.mark.parametrize("state", ["proposed", "none"])
def test_non_decisions_are_refused_as_reviews(project, item, state):
    with pytest.raises(ProjectError, match="not a review decision"):
        project.labels.review(item, state)


def test_wrong_mask_shape_is_refused_with_both_shapes(project, item):
    with pytest.raises(ProjectError, match=r"fake z000: mask shape \(256, 255\).*\(256, 256\)"):
        project.labels.add_proposal(item, np.zeros((256, 255), np.uint8), method="cam")
    assert project.labels.state(item) is LabelState.NONE
    assert project.arrays.keys("masks/proposals") == []


def test_float_mask_is_refused(project, item):
    with pytest.raises(ProjectError, match="integer labels, not float32"):
        project.labels.add_proposal(item, np.zeros((256, 256), np.float32), method="cam")


def test_float_correction_is_refused(project, item):
    project.labels.add_proposal(item, _mask(1), method="cam")
    with pytest.raises(ProjectError, match="integer labels"):
        project.labels.review(item, "corrected", mask=np.zeros((256, 256), np.float64))
    assert project.labels.state(item) is LabelState.PROPOSED


def test_bool_mask_is_accepted(project, item):
    mask = _mask(1).astype(bool)
    proposal = project.labels.add_proposal(item, mask, method="cam")
    np.testing.assert_array_equal(project.labels.proposal_mask(proposal), mask)


def test_proposal_for_unknown_item_is_refused(project):
    with pytest.raises(ProjectError, match="no item with id 42"):
        project.labels.add_proposal(42, _mask(1), method="cam")
