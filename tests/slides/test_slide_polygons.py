"""Stitched labels as polygons: exact pixel edges, one polygon per region across chunk bands."""

from __future__ import annotations

import numpy as np
import shapely
import zarr

from napari_weaksam.slides.polygons import class_polygons, mask_polygons


def test_polygon_follows_pixel_edges():
    mask = np.zeros((6, 7), bool)
    mask[1:4, 2:5] = True
    mask[3, 5] = True
    polygon = mask_polygons(mask, row0=10, col0=100)
    assert polygon.area == mask.sum()
    assert polygon.bounds == (102, 11, 106, 14)


def test_a_region_over_two_bands_is_one_polygon_with_its_hole(tmp_path):
    labels = np.zeros((1300, 700), np.uint8)
    labels[100:1200, 100:150] = 1          # two bars down across the chunk bands …
    labels[100:1200, 400:450] = 1
    labels[1150:1200, 100:450] = 1         # … joined at the bottom, in the third band
    labels[100:150, 100:450] = 1           # and at the top: a ring with a hole
    labels[600:620, 600:620] = 2           # a second class, on its own
    store = zarr.create_array(str(tmp_path / "l.zarr"), shape=labels.shape, dtype=np.uint8,
                              chunks=(512, 512))
    store[...] = labels
    found = list(class_polygons(store, [1, 2]))
    ones = [p for v, p in found if v == 1]
    twos = [p for v, p in found if v == 2]
    assert len(ones) == 1 and len(twos) == 1
    ring = ones[0]
    assert ring.area == (labels == 1).sum() and len(ring.interiors) == 1
    assert shapely.equals(twos[0], shapely.box(600, 600, 620, 620))


def test_random_regions_keep_their_area_and_count(tmp_path):
    from scipy import ndimage

    rng = np.random.default_rng(0)
    blobs = ndimage.gaussian_filter(rng.random((1300, 1100)), 6) > 0.52
    labels = blobs.astype(np.uint8)
    store = zarr.create_array(str(tmp_path / "l.zarr"), shape=labels.shape, dtype=np.uint8,
                              chunks=(512, 512))
    store[...] = labels
    polygons = [p for _v, p in class_polygons(store, [1])]
    assert sum(p.area for p in polygons) == labels.sum()
    assert len(polygons) == ndimage.label(labels)[1]
