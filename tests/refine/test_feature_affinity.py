"""Affinities from a feature map (SAM's embedding) and the degree map shown to people."""

from __future__ import annotations

import numpy as np

from napari_weaksam.refine import (
    affinity_degree,
    feature_source_map,
    neighbour_affinity,
    refine_cam,
    resize_map,
    transition_matrix,
    walk_cam,
)


def test_feature_source_has_length_root_c_and_keeps_zero_vectors():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(16, 5, 6)) * rng.random((1, 5, 6)) * 10
    features[:, 0, 0] = 0
    source = feature_source_map(features)
    lengths = np.linalg.norm(source, axis=0)
    np.testing.assert_allclose(lengths.ravel()[1:], 4.0)
    assert lengths[0, 0] == 0
    # only the direction of each vector matters
    np.testing.assert_allclose(feature_source_map(features * 3.0), source)


def test_two_textures_give_two_regions_the_walk_does_not_cross():
    """Left and right halves have different feature directions; a CAM on the left stays there."""
    rng = np.random.default_rng(1)
    left, right = rng.normal(size=8), rng.normal(size=8)
    features = np.empty((8, 32, 32))
    features[:, :, :16] = left[:, None, None]
    features[:, :, 16:] = right[:, None, None]
    features += rng.normal(scale=0.05, size=features.shape)
    source = feature_source_map(features)
    cam = np.zeros((32, 32))
    cam[8:24, 4:14] = 1.0
    refined = refine_cam(cam, source, grid_size=32, radius=5, beta=10.0, steps=8)
    assert refined[:, :16].mean() > 5 * refined[:, 17:].mean()
    degree = affinity_degree(neighbour_affinity(source, radius=5, beta=10.0), (32, 32))
    assert degree.max() == 1.0 and degree.min() >= 0.0
    assert degree[:, 14:18].mean() < degree[:, 4:10].mean()   # the boundary is weak


def test_walk_cam_matches_refine_cam():
    rng = np.random.default_rng(2)
    cam, source = rng.random((40, 50)), rng.random((40, 50))
    expected = refine_cam(cam, source, grid_size=16, radius=3, beta=4.0, steps=3)
    small = resize_map(source, (16, 16))
    transition = transition_matrix(neighbour_affinity(small, radius=3, beta=4.0))
    np.testing.assert_allclose(walk_cam(cam, transition, grid_size=16, steps=3), expected)
    # a source already on the grid is used as it is
    np.testing.assert_allclose(refine_cam(cam, small, grid_size=16, radius=3, beta=4.0, steps=3),
                               expected)
