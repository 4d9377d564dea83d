"""Affinity source map, neighbour affinity and transition matrix."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from napari_weaksam.refine import (
    affinity_source_map,
    neighbour_affinity,
    neighbour_offsets,
    transition_matrix,
)


def test_source_map_is_mean_then_min_max():
    probs = np.zeros((2, 3, 3))
    probs[0, 0, 0] = 1.0
    probs[1, 0, 0] = 0.5
    probs[1, 1, 1] = 0.25
    result = affinity_source_map(probs)
    expected = probs.mean(axis=0) / 0.75
    np.testing.assert_allclose(result, expected)
    assert result.min() == 0.0 and result.max() == 1.0


def test_source_map_constant_gives_zeros_and_bad_shape_raises():
    np.testing.assert_array_equal(affinity_source_map(np.full((4, 5, 6), 0.7)), 0.0)
    with pytest.raises(ValueError):
        affinity_source_map(np.zeros((5, 6)))


def test_offset_count_for_radius_five():
    offsets = neighbour_offsets(5)
    assert len(offsets) == 68
    assert len({tuple(o) for o in offsets}) == 68
    assert np.all((offsets**2).sum(axis=1) < 25)


def _brute_force(feature: np.ndarray, radius: int, beta: float) -> np.ndarray:
    feat = feature if feature.ndim == 3 else feature[None]
    _, h, w = feat.shape
    dense = np.zeros((h * w, h * w))
    for y0 in range(h):
        for x0 in range(w):
            for y1 in range(h):
                for x1 in range(w):
                    if (y0 - y1) ** 2 + (x0 - x1) ** 2 < radius**2:
                        gap = np.abs(feat[:, y0, x0] - feat[:, y1, x1]).mean()
                        dense[y0 * w + x0, y1 * w + x1] = np.exp(-gap) ** beta
    return dense


@pytest.mark.parametrize("shape", [(7, 9), (3, 6, 5)])
def test_matches_brute_force_including_borders(shape):
    feature = np.random.default_rng(0).random(shape)
    affinity = neighbour_affinity(feature, radius=3, beta=2.5)
    expected = _brute_force(feature, 3, 2.5)
    np.testing.assert_allclose(affinity.toarray(), expected, rtol=1e-12)
    assert affinity.nnz == np.count_nonzero(expected)


def test_structure_symmetric_unit_diagonal_and_neighbour_counts():
    feature = np.random.default_rng(1).random((20, 20))
    affinity = neighbour_affinity(feature, radius=5, beta=4.0)
    assert isinstance(affinity, sp.csr_matrix)
    assert abs(affinity - affinity.T).max() == 0
    np.testing.assert_array_equal(affinity.diagonal(), 1.0)
    per_row = np.diff(affinity.indptr) - 1  # minus self
    assert per_row.reshape(20, 20)[10, 10] == 68
    # border band keeps its edges: every pixel has neighbours, corners the quarter disk
    assert per_row.min() > 0
    corner = sum(1 for dy, dx in neighbour_offsets(5) if dy >= 0 and dx >= 0)
    assert per_row.reshape(20, 20)[0, 0] == corner == 21
    assert np.all(affinity.data > 0) and np.all(affinity.data <= 1)


def test_beta_sharpens():
    feature = np.random.default_rng(2).random((10, 10))
    soft = neighbour_affinity(feature, radius=3, beta=1.0)
    sharp = neighbour_affinity(feature, radius=3, beta=8.0)
    np.testing.assert_allclose(sharp.toarray(), soft.toarray() ** 8)
    off = ~np.eye(100, dtype=bool) & (soft.toarray() > 0)
    assert np.all(sharp.toarray()[off] < soft.toarray()[off])


def test_identical_pixels_have_unit_affinity():
    affinity = neighbour_affinity(np.full((6, 6), 0.3), radius=2)
    np.testing.assert_array_equal(affinity.data, 1.0)


def test_transition_rows_sum_to_one():
    feature = np.random.default_rng(3).random((2, 15, 12))
    transition = transition_matrix(neighbour_affinity(feature, radius=4, beta=3.0))
    assert isinstance(transition, sp.csr_matrix)
    np.testing.assert_allclose(np.asarray(transition.sum(axis=1)).ravel(), 1.0)
    assert transition.data.min() >= 0


def test_transition_of_isolated_row_and_invalid_input():
    affinity = sp.csr_matrix(np.array([[1.0, 1.0, 0], [1.0, 3.0, 0], [0, 0, 0]]))
    dense = transition_matrix(affinity).toarray()
    np.testing.assert_allclose(dense, [[0.5, 0.5, 0], [0.25, 0.75, 0], [0, 0, 1]])
    with pytest.raises(ValueError):
        transition_matrix(sp.csr_matrix(np.array([[1.0, -1.0], [-1.0, 1.0]])))
    with pytest.raises(ValueError):
        transition_matrix(sp.csr_matrix(np.ones((2, 3))))
