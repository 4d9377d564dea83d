"""Boxes from masks: one per component, SAM's inclusive corners, margin, clipping, specks dropped,
and the training jitter."""

from __future__ import annotations

import numpy as np
import pytest

from napari_weaksam.prompts.boxes import (
    box_region,
    default_min_area,
    jitter_boxes,
    mask_boxes,
    widen,
)


def _two_blobs() -> np.ndarray:
    mask = np.zeros((100, 200), dtype=bool)        # wide item: x to 199, y to 99
    mask[10:30, 20:60] = True                      # 40 wide, 20 high
    mask[50:90, 120:140] = True                    # 20 wide, 40 high
    return mask


def test_two_blobs_give_two_tight_boxes_with_inclusive_corners():
    boxes = mask_boxes(_two_blobs(), margin=0, min_margin=0)
    assert boxes.dtype == np.float32 and boxes.shape == (2, 4)
    # x0, y0, x1, y1 with x1, y1 the last column and row (segment-anything's mask-to-box)
    assert boxes.tolist() == [[20, 10, 59, 29], [120, 50, 139, 89]]


def test_margin_is_a_share_of_each_side_with_a_floor_in_pixels():
    boxes = mask_boxes(_two_blobs(), margin=0.1, min_margin=3)
    # first blob: 40 × 20 → 4 px on x, 3 px (the floor, not 2) on y
    assert boxes[0].tolist() == pytest.approx([16, 7, 63, 32])
    # second: 20 × 40 → 3 px (floor) on x, 4 px on y
    assert boxes[1].tolist() == pytest.approx([117, 46, 142, 93])


def test_boxes_are_clipped_to_the_item():
    mask = np.zeros((50, 80), dtype=bool)
    mask[0:10, 70:80] = True                       # touches the top and right edges
    (box,) = mask_boxes(mask, margin=0.5, min_margin=5)
    assert box.tolist() == [65, 0, 79, 14]


def test_specks_are_dropped_and_diagonal_pixels_join():
    mask = _two_blobs()
    mask[95, 5] = True                             # a one-pixel speck
    mask[0, 198] = mask[1, 199] = True             # two pixels touching at a corner: one object
    assert len(mask_boxes(mask, min_area=2)) == 3
    assert len(mask_boxes(mask, min_area=3)) == 2
    assert len(mask_boxes(mask)) == 2              # default: share of the item, at least 4 px
    assert default_min_area((100, 200)) == 10 and default_min_area((10, 10)) == 4
    assert mask_boxes(np.zeros((8, 8), bool)).shape == (0, 4)


def test_a_map_is_thresholded():
    cam = np.zeros((40, 40), dtype=np.float32)
    cam[5:15, 5:15] = 0.9
    cam[25:35, 25:35] = 0.3
    assert len(mask_boxes(cam, threshold=0.5)) == 1
    assert len(mask_boxes(cam, threshold=0.2)) == 2


def test_jitter_moves_each_side_by_at_most_its_share_and_repeats_with_the_seed():
    shape = (100, 200)
    boxes = np.array([[50, 30, 89, 49], [120, 50, 139, 89]], dtype=np.float32)
    a = jitter_boxes(boxes, shape, 0.1, np.random.default_rng(3))
    b = jitter_boxes(boxes, shape, 0.1, np.random.default_rng(3))
    assert np.array_equal(a, b) and not np.array_equal(a, boxes)
    sides = np.array([[40, 20, 40, 20], [20, 40, 20, 40]], dtype=np.float32)
    assert (np.abs(a - boxes) <= 0.1 * sides + 1e-4).all()
    many = jitter_boxes(np.repeat(boxes[:1], 500, axis=0), shape, 0.1, np.random.default_rng(0))
    assert (many[:, 2] > 89).any() and (many[:, 2] < 89).any()     # out and in
    assert jitter_boxes(boxes, shape, 0.0, np.random.default_rng(0)).tolist() == boxes.tolist()


def test_jitter_keeps_boxes_inside_the_item_and_ordered():
    shape = (20, 30)
    boxes = np.array([[0, 0, 29, 19], [10, 10, 10, 10]], dtype=np.float32)
    moved = jitter_boxes(np.repeat(boxes, 200, axis=0), shape, 0.5, np.random.default_rng(1))
    assert (moved[:, [0, 2]] >= 0).all() and (moved[:, [0, 2]] <= 29).all()
    assert (moved[:, [1, 3]] >= 0).all() and (moved[:, [1, 3]] <= 19).all()
    assert (moved[:, 0] <= moved[:, 2]).all() and (moved[:, 1] <= moved[:, 3]).all()


def test_widen_and_box_region():
    box = widen(np.array([[10, 10, 19, 19]], np.float32), (30, 30), 0.0, 2.0)[0]
    assert box.tolist() == [8, 8, 21, 21]
    mask = _two_blobs()
    inside = box_region(mask, np.array([15, 5, 70, 95], np.float32))
    assert inside.sum() == 40 * 20 and not inside[50:90, 120:140].any()
