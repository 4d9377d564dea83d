"""Tissue detection on a low-resolution view of a slide (Otsu's threshold, scikit-image).

Stained tissue is coloured and glass is not, so an RGB slide's tissue is where the saturation is
above Otsu's threshold on a thumbnail; a grey slide's tissue is where it is darker than Otsu's
threshold (bright-field). The threshold never goes below :data:`SATURATION_FLOOR`: on a slide with
no tissue, Otsu would split JPEG noise on glass in two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage
from skimage.color import rgb2hsv
from skimage.filters import threshold_otsu
from skimage.morphology import remove_small_holes, remove_small_objects

#: The long side of the view the detector works on (pixels).
THUMBNAIL_SIDE = 1024
#: Glass (white, grey, JPEG noise) stays below this saturation; stained tissue is far above it.
SATURATION_FLOOR = 0.05


@dataclass(frozen=True)
class TissueMask:
    """Tissue (True) on a thumbnail; ``downsample`` level-0 pixels per thumbnail pixel."""

    mask: np.ndarray
    downsample: float

    def fraction(self, x0: float, y0: float, x1: float, y1: float) -> float:
        """Share of tissue in a level-0 rectangle [x0, x1) × [y0, y1)."""
        d = self.downsample
        r0, r1 = int(y0 // d), max(int(y0 // d) + 1, int(np.ceil(y1 / d)))
        c0, c1 = int(x0 // d), max(int(x0 // d) + 1, int(np.ceil(x1 / d)))
        window = self.mask[r0:r1, c0:c1]
        return float(window.mean()) if window.size else 0.0


def thumbnail(levels: list[Any]) -> tuple[np.ndarray, float]:
    """A view of the slide with its long side near :data:`THUMBNAIL_SIDE`, read from the
    smallest level that is still at least that big (strided when it is much bigger), and its
    downsample from level 0."""
    full = levels[0].shape
    chosen = levels[0]
    for level in levels:
        if max(level.shape[:2]) >= THUMBNAIL_SIDE:
            chosen = level
    step = max(1, max(chosen.shape[:2]) // THUMBNAIL_SIDE)
    view = np.asarray(chosen[::step, ::step])
    return view, full[0] / view.shape[0]


def detect_tissue(levels: list[Any]) -> TissueMask:
    """Where the slide holds tissue (see the module docstring)."""
    view, downsample = thumbnail(levels)
    if view.ndim == 3:
        signal = rgb2hsv(view[..., :3])[..., 1]
        floor = SATURATION_FLOOR
    else:
        grey = view.astype(np.float64)
        span = float(grey.max() - grey.min()) or 1.0
        signal = (grey.max() - grey) / span   # darker than the background is tissue
        floor = SATURATION_FLOOR
    signal = ndimage.median_filter(signal, size=5)
    threshold = threshold_otsu(signal) if np.ptp(signal) > 0 else 1.0
    mask = signal > max(threshold, floor)
    mask = ndimage.binary_closing(mask, structure=np.ones((5, 5)))
    speck = max(16, mask.size // 10_000)   # 0.01 % of the view: dust, not tissue
    mask = remove_small_holes(remove_small_objects(mask, max_size=speck), max_size=speck)
    return TissueMask(mask, downsample)
