"""EP-SAM's IDS filter: keep a SAM pseudo-label only where it stays inside the initial CAM mask."""

from __future__ import annotations

import math

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


def select_targets(masks: list[np.ndarray], scores: list[float], threshold: float,
                   min_share: float = 0.0) -> tuple[list[int], float]:
    """Indices of the pseudo-labels that train the next round, and the IDS bar they passed.

    Non-empty masks with IDS ≥ ``threshold`` are kept. When that is fewer than ``min_share`` of
    all masks (large objects: a decoder that learned them answers with masks larger than the
    initial CAM masks, so IDS stays below 0.9 everywhere), the highest-scoring non-empty masks up
    to that share are kept instead, and the bar returned is the lowest score kept — the caller
    records it, so a lowered bar is never silent.
    """
    passing = [i for i, (m, s) in enumerate(zip(masks, scores, strict=True))
               if m.any() and s >= threshold]
    need = math.ceil(min_share * len(masks))
    if len(passing) >= need:
        return passing, threshold
    ranked = sorted((i for i, m in enumerate(masks) if m.any()), key=lambda i: -scores[i])
    chosen = sorted(ranked[:need])
    return chosen, (min(scores[i] for i in chosen) if chosen else threshold)
