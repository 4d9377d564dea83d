"""Dice, IoU and HD95 on hand-made masks with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from napari_weaksam.metrics import boundary, dice, hd95, iou, surface_distances


def square(top: int, left: int, size: int = 20, shape: tuple[int, int] = (64, 64)) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[top:top + size, left:left + size] = True
    return mask


def test_overlap_of_two_squares_is_exact():
    a = square(0, 0, size=10)
    b = square(5, 0, size=10)  # 50 of 100 pixels shared
    assert dice(a, b) == pytest.approx(0.5)
    assert iou(a, b) == pytest.approx(50 / 150)
    assert dice(a, a) == iou(a, a) == 1.0


def test_disjoint_and_empty_masks():
    empty = np.zeros((8, 8), dtype=bool)
    assert dice(empty, empty) == iou(empty, empty) == 1.0
    assert dice(square(0, 0, 4, (8, 8)), empty) == iou(empty, square(0, 0, 4, (8, 8))) == 0.0
    assert dice(square(0, 0, 3, (8, 8)), square(4, 4, 3, (8, 8))) == 0.0


def test_label_values_count_as_foreground():
    labels = np.zeros((6, 6), dtype=np.uint8)
    labels[:3] = 2
    assert dice(labels, labels == 2) == 1.0
    assert dice(labels == 1, labels == 2) == 0.0


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        dice(np.zeros((4, 4)), np.zeros((4, 5)))


@pytest.mark.parametrize(("shift", "axis"), [(3, 0), (5, 1), (1, 0)])
def test_hd95_of_shifted_squares_is_the_shift(shift, axis):
    a = square(10, 10)
    b = np.roll(a, shift, axis=axis)
    assert hd95(a, b) == pytest.approx(shift)
    assert hd95(b, a) == pytest.approx(shift)


def test_hd95_uses_spacing_per_axis():
    a = square(10, 10)
    assert hd95(a, np.roll(a, 3, axis=0), spacing=(2.0, 0.5)) == pytest.approx(6.0)
    assert hd95(a, np.roll(a, 3, axis=1), spacing=(2.0, 0.5)) == pytest.approx(1.5)
    # a volume's spacing (z, y, x): the last two entries apply to a slice
    assert hd95(a, np.roll(a, 4, axis=1), spacing=(9.0, 1.0, 0.25)) == pytest.approx(1.0)


def test_hd95_is_nan_when_a_mask_is_empty_and_zero_when_equal():
    empty = np.zeros((64, 64), dtype=bool)
    assert math.isnan(hd95(square(0, 0), empty))
    assert math.isnan(hd95(empty, square(0, 0)))
    assert math.isnan(hd95(empty, empty))
    assert hd95(square(3, 7), square(3, 7)) == 0.0


def test_hd95_ignores_a_single_outlier_pixel():
    truth = square(10, 10)
    pred = truth.copy()
    pred[60, 60] = True  # one stray pixel ~40 px away; the Hausdorff distance would be large
    assert hd95(pred, truth) == 0.0
    assert max(d.max() for d in surface_distances(pred, truth)) > 40


def test_surface_distance_between_two_points():
    a = np.zeros((10, 10), dtype=bool)
    b = np.zeros((10, 10), dtype=bool)
    a[1, 1] = b[4, 5] = True
    forward, backward = surface_distances(a, b)
    assert forward.tolist() == backward.tolist() == [5.0]
    with pytest.raises(ValueError):
        surface_distances(a, np.zeros_like(b))


def test_boundary_of_a_square_is_its_ring():
    ring = boundary(square(2, 2, size=5, shape=(9, 9)))
    assert ring.sum() == 16
    assert not ring[3:6, 3:6].any()
    assert boundary(np.ones((5, 5), dtype=bool)).sum() == 16  # the array edge is a boundary


def test_hd95_of_masks_touching_the_edge():
    full = np.ones((10, 10), dtype=bool)
    half = full.copy()
    half[:, 5:] = False
    assert hd95(full, full) == 0.0
    assert hd95(full, half) == pytest.approx(5.0)  # column 9 to half's last column, 4


def _brute_hd95(pred: np.ndarray, truth: np.ndarray, spacing: tuple[float, float]) -> float:
    p = np.argwhere(boundary(pred)) * spacing
    t = np.argwhere(boundary(truth)) * spacing
    d = cdist(p, t)
    return max(np.percentile(d.min(axis=1), 95), np.percentile(d.min(axis=0), 95))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hd95_matches_brute_force_on_random_blobs(seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:48, :40]
    blobs = []
    for _ in range(2):
        cy, cx, r = rng.uniform(12, 30), rng.uniform(12, 28), rng.uniform(5, 10)
        blobs.append((yy - cy) ** 2 + (xx - cx) ** 2 < r**2)
    spacing = (1.5, 0.7)
    assert hd95(*blobs, spacing=spacing) == pytest.approx(_brute_hd95(*blobs, spacing))


def test_hd95_in_three_dimensions():
    a = np.zeros((12, 20, 20), dtype=bool)
    a[3:9, 5:15, 5:15] = True
    b = np.roll(a, 2, axis=0)
    assert hd95(a, b, spacing=(3.0, 1.0, 1.0)) == pytest.approx(6.0)
