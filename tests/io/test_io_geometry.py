from __future__ import annotations

import itertools

import nibabel as nib
import numpy as np
import pytest

from napari_weaksam.io import NiftiGeometry

ORIENTATIONS = [
    (perm, signs)
    for perm in itertools.permutations(range(3))
    for signs in itertools.product((1.0, -1.0), repeat=3)
]


def _affine(perm, signs, zooms=(0.5, 0.7, 2.0)) -> np.ndarray:
    affine = np.eye(4)
    affine[:3, :3] = 0.0
    for src_axis, world_axis in enumerate(perm):
        affine[world_axis, src_axis] = signs[src_axis] * zooms[src_axis]
    affine[:3, 3] = (5.0, -3.0, 12.0)
    return affine


@pytest.mark.parametrize("perm,signs", ORIENTATIONS)
def test_every_orientation_round_trips(perm, signs):
    shape = (3, 4, 5)
    geometry = NiftiGeometry.from_affine(_affine(perm, signs), shape)
    assert nib.aff2axcodes(geometry.display_affine) == ("S", "P", "L")
    source = np.arange(60, dtype=np.int32).reshape(shape)
    display = geometry.source_to_display(source)
    assert display.shape == geometry.display_shape
    np.testing.assert_array_equal(geometry.display_to_source(display), source)
    # a voxel keeps its world position
    voxel = (1, 2, 3)
    disp_voxel = tuple(int(i) for i in np.argwhere(display == source[voxel])[0])
    np.testing.assert_allclose(
        geometry.affine @ (*voxel, 1), geometry.display_affine @ (*disp_voxel, 1)
    )
    # slice index mapping agrees with the arrays
    k_axis = geometry.source_slice_axis
    for k in range(shape[k_axis]):
        plane = np.take(source, k, axis=k_axis)
        z = geometry.source_slice_to_display(k)
        assert set(np.unique(display[z])) == set(np.unique(plane))
        assert geometry.display_slice_to_source(z) == k


def test_for_display_is_identity_in_display_space():
    geometry = NiftiGeometry.for_display((3, 4, 5), (2.0, 0.5, 0.25))
    assert geometry.display_shape == (3, 4, 5)
    assert geometry.source_shape == (5, 4, 3)
    data = np.arange(60).reshape(3, 4, 5)
    np.testing.assert_array_equal(
        geometry.source_to_display(geometry.display_to_source(data)), data
    )
    np.testing.assert_allclose(np.abs(np.diag(geometry.affine))[:3], (0.25, 0.5, 2.0))


def test_for_display_2d():
    geometry = NiftiGeometry.for_display((4, 5), (0.5, 0.25))
    assert geometry.display_shape == (1, 4, 5)
    assert geometry.display_to_source(np.zeros((4, 5))).shape == (5, 4, 1)


def test_display_to_source_rejects_wrong_size():
    geometry = NiftiGeometry.from_affine(np.eye(4), (3, 4, 5))
    with pytest.raises(ValueError, match="does not match"):
        geometry.display_to_source(np.zeros((2, 2)))


def test_metadata_is_json_friendly():
    import json

    geometry = NiftiGeometry.from_affine(_affine((2, 0, 1), (-1.0, 1.0, -1.0)), (3, 4, 5))
    meta = json.loads(json.dumps(geometry.to_metadata()))
    again = NiftiGeometry.from_metadata(meta)
    np.testing.assert_allclose(again.affine, geometry.affine)
    np.testing.assert_array_equal(again.to_display, geometry.to_display)
    del meta["to_display"]
    np.testing.assert_array_equal(NiftiGeometry.from_metadata(meta).to_display, geometry.to_display)
