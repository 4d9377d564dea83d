"""EP-SAM's IDS filter: keep a SAM pseudo-label only where it stays inside the initial CAM mask."""

from __future__ import annotations

import numpy as np

DEFAULT_THRESHOLD = 0.9


def ids_score(initial: np.ndarray, sam: np.ndarray) -> float:
    """``|I ∧ S| / (|S| + 1)``: the share of the SAM mask that the initial mask covers."""
    if initial.shape != sam.shape:
        raise ValueError(f"initial mask {initial.shape} and SAM mask {sam.shape} differ in shape")
    sam = sam.astype(bool)
    return float(np.logical_and(initial.astype(bool), sam).sum()) / (float(sam.sum()) + 1.0)


def keeps(initial: np.ndarray, sam: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> bool:
    """Whether the pseudo-label passes (an empty SAM mask never does)."""
    return bool(sam.any()) and ids_score(initial, sam) >= threshold
