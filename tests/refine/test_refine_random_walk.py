"""Random-walk propagation of a CAM over source-map affinities."""

from __future__ import annotations

import numpy as np
import pytest

from napari_weaksam.refine import (
    neighbour_affinity,
    random_walk,
    refine_cam,
    threshold_map,
    transition_matrix,
)


def _disk_scene(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A disk (source map 1 inside, 0 outside) and a CAM covering only its left half."""
    yy, xx = np.mgrid[:size, :size]
    centre, radius = size / 2, size * 5 / 16
    disk = (yy - centre) ** 2 + (xx - centre) ** 2 < radius**2
    cam = (disk & (xx < centre)).astype(float)
    uncovered = disk & (xx >= centre)
    return disk, cam, uncovered


def _walk(source: np.ndarray, cam: np.ndarray, steps: int) -> np.ndarray:
    transition = transition_matrix(neighbour_affinity(source, radius=5, beta=4.0))
    return random_walk(cam, transition, steps=steps)


def test_values_stay_in_unit_interval():
    rng = np.random.default_rng(0)
    cam = rng.random((24, 24))
    result = _walk(rng.random((24, 24)), cam, steps=8)
    assert result.shape == cam.shape
    assert result.min() >= cam.min() and result.max() <= cam.max()


def test_constant_map_is_preserved():
    source = np.random.default_rng(1).random((16, 20))
    np.testing.assert_allclose(_walk(source, np.full((16, 20), 0.6), steps=5), 0.6)


def test_zero_steps_is_identity():
    cam = np.random.default_rng(2).random((8, 8))
    np.testing.assert_array_equal(_walk(np.zeros((8, 8)), cam, steps=0), cam)


def test_spreads_within_region_but_not_across_boundary():
    disk, cam, uncovered = _disk_scene(32)
    result = _walk(disk.astype(float), cam, steps=10)
    assert cam[uncovered].mean() == 0
    assert result[uncovered].mean() > 0.25
    assert result[~disk].mean() < 0.02
    assert result[~disk].max() < 0.05


def test_flat_source_map_just_blurs():
    disk, cam, uncovered = _disk_scene(32)
    guided = _walk(disk.astype(float), cam, steps=10)
    blurred = _walk(np.zeros((32, 32)), cam, steps=10)
    assert blurred[~disk].mean() > 0.1
    assert blurred[~disk].mean() > 5 * guided[~disk].mean()
    assert guided[uncovered].mean() > blurred[uncovered].mean()


def test_shape_mismatch_raises():
    transition = transition_matrix(neighbour_affinity(np.zeros((4, 4)), radius=2))
    with pytest.raises(ValueError):
        random_walk(np.zeros((4, 5)), transition)
    with pytest.raises(ValueError):
        random_walk(np.zeros((4, 4)), transition, steps=-1)


@pytest.mark.parametrize("shape", [(128, 128), (90, 150)])
def test_refine_cam_keeps_shape_and_range(shape):
    rng = np.random.default_rng(3)
    result = refine_cam(rng.random(shape), rng.random(shape), grid_size=32)
    assert result.shape == shape
    assert result.min() == 0.0 and result.max() == 1.0


def test_refine_cam_fills_region_at_full_resolution():
    disk, cam, uncovered = _disk_scene(128)
    result = refine_cam(cam, disk.astype(float), grid_size=32, steps=10)
    assert result[uncovered].mean() > 0.3
    assert result[~disk].mean() < 0.05
    mask = threshold_map(result, presence_probability=0.9, threshold=0.2)
    assert mask[uncovered].mean() > 0.5
    assert mask[~disk].mean() < 0.05


def test_refine_cam_of_zero_cam_is_zero_and_accepts_channels():
    source = np.random.default_rng(4).random((3, 40, 50))
    result = refine_cam(np.zeros((40, 50)), source, grid_size=16)
    assert result.shape == (40, 50)
    np.testing.assert_array_equal(result, 0.0)
    with pytest.raises(ValueError):
        refine_cam(np.zeros((40, 50)), np.zeros((40, 51)))


def test_threshold_map_gate():
    refined = np.array([[0.2, 0.6], [0.9, 0.5]])
    np.testing.assert_array_equal(
        threshold_map(refined, presence_probability=0.8), [[False, True], [True, False]]
    )
    gated = threshold_map(refined, presence_probability=0.3)
    assert gated.dtype == bool and gated.shape == (2, 2) and not gated.any()
    assert threshold_map(refined, 0.3, threshold=0.1, gate=0.2).sum() == 4
