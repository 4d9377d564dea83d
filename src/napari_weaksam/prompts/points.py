"""Point prompts drawn from a mask: EP-SAM's PEPM (activation-weighted) and uniform sampling.

Points are (x, y) in the item's own pixel coordinates, like every prompt given to
:class:`~napari_weaksam.backbones.sam.SamBackbone`, which maps them into its model frame (the
original EP-SAM forgot that step and put every prompt in the top-left quadrant).
"""

from __future__ import annotations

import numpy as np


def activation_points(activation: np.ndarray, mask: np.ndarray, n: int,
                      rng: np.random.Generator) -> np.ndarray:
    """PEPM: ``n`` distinct pixels of ``mask`` drawn with probability ∝ ``activation``.

    Fewer points come back when the mask has fewer pixels with non-zero activation (the
    original fell back to the point (0, 0)); none when it has none.
    """
    _check(activation, mask)
    weights = np.where(mask, np.clip(activation, 0.0, None), 0.0).ravel()
    return _draw(weights, n, activation.shape[1], rng)


def uniform_points(mask: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct pixels drawn uniformly from ``mask`` (training prompts)."""
    return _draw(mask.ravel().astype(np.float64), n, mask.shape[1], rng)


def _draw(weights: np.ndarray, n: int, width: int, rng: np.random.Generator) -> np.ndarray:
    candidates = np.flatnonzero(weights > 0)
    if n <= 0 or candidates.size == 0:
        return np.zeros((0, 2), dtype=np.float32)
    p = weights[candidates] / weights[candidates].sum()
    chosen = rng.choice(candidates, size=min(n, candidates.size), replace=False, p=p)
    return np.stack([chosen % width, chosen // width], axis=1).astype(np.float32)


def _check(activation: np.ndarray, mask: np.ndarray) -> None:
    if activation.shape != mask.shape or activation.ndim != 2:
        raise ValueError(f"activation {activation.shape} and mask {mask.shape} must be the same "
                         "2D shape")
