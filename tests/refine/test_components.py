"""Components of a thresholded map kept by their evidence (their peak on the refined map)."""

from __future__ import annotations

import numpy as np

from napari_weaksam.refine.components import supported_components


def _two_blobs(weak_peak: float) -> tuple[np.ndarray, np.ndarray]:
    """A 64 × 64 map with a strong blob (peak 1) and a weak one (peak ``weak_peak``)."""
    evidence = np.zeros((64, 64))
    evidence[10:20, 10:20] = 0.9
    evidence[14, 14] = 1.0
    evidence[40:52, 40:52] = weak_peak * 0.9
    evidence[45, 45] = weak_peak
    return evidence > 0.5 * weak_peak, evidence


def test_a_blob_much_weaker_than_the_strongest_is_dropped():
    region, evidence = _two_blobs(0.6)
    kept = supported_components(region, evidence, 0.8)
    assert kept[10:20, 10:20].all() and not kept[40:52, 40:52].any()
    assert kept.sum() == 100


def test_a_blob_nearly_as_strong_is_kept_and_share_zero_keeps_every_blob():
    region, evidence = _two_blobs(0.9)
    assert np.array_equal(supported_components(region, evidence, 0.8), region)
    assert np.array_equal(supported_components(region, evidence, 1.0),
                          region & (np.arange(64)[:, None] < 32))   # the strongest only
    weak_region, weak_evidence = _two_blobs(0.3)
    assert np.array_equal(supported_components(weak_region, weak_evidence, 0.0), weak_region)


def test_a_speck_does_not_outweigh_an_object():
    region, evidence = _two_blobs(0.6)
    region[60, 60], evidence[60, 60] = True, 5.0           # one pixel, too small for a box
    kept = supported_components(region, evidence, 0.8)
    assert kept[10:20, 10:20].all()                        # the strongest object still leads
    assert not kept[40:52, 40:52].any()


def test_one_component_or_none_is_left_as_it_is():
    region, evidence = _two_blobs(0.6)
    single = region & (np.arange(64)[:, None] < 32)
    assert supported_components(single, evidence, 1.0) is single
    empty = np.zeros((64, 64), dtype=bool)
    assert not supported_components(empty, evidence, 0.8).any()
