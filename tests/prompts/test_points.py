"""PEPM and uniform point prompts: inside the mask, ∝ activation, item coordinates, seeded."""

from __future__ import annotations

import numpy as np
import pytest

from napari_weaksam.prompts.points import activation_points, uniform_points


def _inside(points: np.ndarray, mask: np.ndarray) -> bool:
    xs, ys = points[:, 0].astype(int), points[:, 1].astype(int)
    return bool(mask[ys, xs].all())


def test_points_are_distinct_pixels_inside_the_mask_as_x_y():
    mask = np.zeros((40, 90), dtype=bool)      # wide item: x runs to 89, y to 39
    mask[30:38, 70:85] = True
    activation = np.ones(mask.shape)
    points = activation_points(activation, mask, 50, np.random.default_rng(0))
    assert points.shape == (50, 2)
    assert _inside(points, mask)
    assert points[:, 0].min() >= 70 and points[:, 1].max() < 38   # x first, then y
    assert len({tuple(p) for p in points}) == 50


def test_points_follow_the_activation():
    mask = np.ones((20, 20), dtype=bool)
    activation = np.zeros((20, 20))
    activation[:, :10] = 0.01
    activation[:, 10:] = 1.0
    points = activation_points(activation, mask, 40, np.random.default_rng(1))
    assert (points[:, 0] >= 10).mean() > 0.9


def test_zero_activation_pixels_are_never_chosen_and_fewer_points_come_back():
    mask = np.ones((10, 10), dtype=bool)
    activation = np.zeros((10, 10))
    activation[2, 3] = activation[7, 8] = 0.5
    points = activation_points(activation, mask, 50, np.random.default_rng(0))
    assert sorted(map(tuple, points.tolist())) == [(3.0, 2.0), (8.0, 7.0)]


def test_an_empty_mask_gives_no_points_not_a_corner_point():
    points = activation_points(np.ones((8, 8)), np.zeros((8, 8), bool), 5,
                               np.random.default_rng(0))
    assert points.shape == (0, 2)


def test_seeded_sampling_repeats():
    mask = np.random.default_rng(3).random((30, 30)) > 0.5
    a = uniform_points(mask, 20, np.random.default_rng(7))
    b = uniform_points(mask, 20, np.random.default_rng(7))
    assert np.array_equal(a, b) and _inside(a, mask)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="same"):
        activation_points(np.ones((4, 4)), np.ones((4, 5), bool), 2, np.random.default_rng(0))
