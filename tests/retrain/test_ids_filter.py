"""IDS = |I ∧ S| / (|S| + 1), measured against the initial mask."""

from __future__ import annotations

import numpy as np
import pytest

from napari_weaksam.retrain.ids_filter import ids_score, keeps, select_targets


def test_ids_counts_the_share_of_the_sam_mask_inside_the_initial_mask():
    initial = np.zeros((10, 10), bool)
    initial[:, :5] = True
    sam = np.zeros((10, 10), bool)
    sam[:3, :] = True                      # 30 pixels, 15 inside
    assert ids_score(initial, sam) == pytest.approx(15 / 31)
    assert not keeps(initial, sam, 0.9)


def test_a_mask_inside_the_initial_mask_is_kept():
    initial = np.ones((10, 10), bool)
    sam = np.zeros((10, 10), bool)
    sam[2:8, 2:8] = True
    assert ids_score(initial, sam) == pytest.approx(36 / 37)
    assert keeps(initial, sam, 0.9)


def test_an_empty_sam_mask_is_never_kept():
    assert ids_score(np.ones((4, 4), bool), np.zeros((4, 4), bool)) == 0.0
    assert not keeps(np.ones((4, 4), bool), np.zeros((4, 4), bool), 0.0)


def test_shapes_must_match():
    with pytest.raises(ValueError, match="shape"):
        ids_score(np.ones((4, 4), bool), np.ones((4, 3), bool))


def _masks(scores):
    return [np.ones((2, 2), bool) for _ in scores]


def test_targets_are_the_masks_passing_the_threshold():
    scores = [0.95, 0.5, 0.91, 0.2]
    masks = _masks(scores)
    masks[0] = np.zeros((2, 2), bool)             # empty: never a target
    assert select_targets(masks, scores, 0.9, 0.0) == ([2], 0.9)


def test_too_few_passing_keeps_the_best_share_and_says_which_bar():
    scores = [0.7, 0.5, 0.8, 0.2, 0.6, 0.65, 0.1, 0.3, 0.4, 0.75]
    kept, bar = select_targets(_masks(scores), scores, 0.9, 0.2)
    assert kept == [2, 9] and bar == pytest.approx(0.75)
    kept, bar = select_targets(_masks(scores), scores, 0.9, 0.0)
    assert kept == [] and bar == 0.9
