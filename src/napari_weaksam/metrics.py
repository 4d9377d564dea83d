"""Overlap and surface-distance metrics of binary masks (Dice, IoU, HD95).

Multi-class label images are scored one class at a time: pass ``labels == value``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage


def _pair(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both masks as bool arrays of one shape."""
    pred, truth = np.asarray(pred, dtype=bool), np.asarray(truth, dtype=bool)
    if pred.shape != truth.shape:
        raise ValueError(f"prediction shape {pred.shape} does not match truth {truth.shape}")
    return pred, truth


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice coefficient ``2|P∩T| / (|P| + |T|)``; 1.0 when both are empty."""
    pred, truth = _pair(pred, truth)
    total = int(pred.sum()) + int(truth.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.count_nonzero(pred & truth)) / total


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union ``|P∩T| / |P∪T|``; 1.0 when both are empty."""
    pred, truth = _pair(pred, truth)
    union = int(np.count_nonzero(pred | truth))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(pred & truth)) / union


def boundary(mask: np.ndarray) -> np.ndarray:
    """The mask's pixels that touch the background (or the array edge), 4-/6-connected."""
    mask = np.asarray(mask, dtype=bool)
    structure = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndimage.binary_erosion(mask, structure=structure, border_value=0)


def surface_distances(pred: np.ndarray, truth: np.ndarray,
                      spacing: Sequence[float] = (1.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    """Distances from each boundary pixel of ``pred`` to ``truth``'s boundary, and back.

    Distances are in the units of ``spacing`` (one value per axis). Both masks must be
    non-empty.
    """
    pred, truth = _pair(pred, truth)
    if not pred.any() or not truth.any():
        raise ValueError("surface distances need two non-empty masks")
    sampling = tuple(float(s) for s in spacing)[-pred.ndim:]
    if len(sampling) != pred.ndim:
        raise ValueError(f"spacing {tuple(spacing)} has fewer than {pred.ndim} values")
    pred_edge, truth_edge = boundary(pred), boundary(truth)
    to_truth = ndimage.distance_transform_edt(~truth_edge, sampling=sampling)
    to_pred = ndimage.distance_transform_edt(~pred_edge, sampling=sampling)
    return to_truth[pred_edge], to_pred[truth_edge]


def hd95(pred: np.ndarray, truth: np.ndarray,
         spacing: Sequence[float] = (1.0, 1.0)) -> float:
    """95th-percentile Hausdorff distance; NaN when either mask is empty.

    The larger of the two directed 95th percentiles (as in MedPy and MONAI).
    """
    pred, truth = _pair(pred, truth)
    if not pred.any() or not truth.any():
        return float("nan")
    forward, backward = surface_distances(pred, truth, spacing)
    return float(max(np.percentile(forward, 95), np.percentile(backward, 95)))
