"""The components of a thresholded map that the map's own evidence supports.

A class activation map thresholded on a slice often marks the lesion and, beside it, weaker
blobs on other bright or textured structures. Each component's evidence is its peak on the
refined map; a component is kept when that peak is at least ``share`` of the strongest
box-sized component's peak (``share=0`` keeps every component, ``1`` the strongest only).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..prompts.boxes import default_min_area, label_components


def supported_components(region: np.ndarray, evidence: np.ndarray, share: float) -> np.ndarray:
    """``region`` (bool) without the components whose peak of ``evidence`` (same shape) is
    below ``share`` × the strongest peak among the components big enough for a box prompt
    (smaller ones never lead: a speck cannot outweigh an object)."""
    if share <= 0 or not region.any():
        return region
    labels, areas = label_components(region)
    if len(areas) < 2:
        return region
    index = np.arange(1, len(areas) + 1)
    peaks = np.asarray(ndimage.maximum(evidence, labels, index))
    sized = areas >= default_min_area(region.shape)
    strongest = peaks[sized].max() if sized.any() else peaks.max()
    kept = index[peaks >= share * strongest]
    return np.isin(labels, kept)
