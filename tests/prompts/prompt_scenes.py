"""Synthetic scenes for prompt tests: textured bright squares on a dark, noisy, non-square item."""

from __future__ import annotations

import numpy as np


def squares_scene(height: int, width: int, squares: list[tuple[int, int, int]],
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A float32 (H, W) image and its object mask: one square per (row, column, side)."""
    rng = np.random.default_rng(seed)
    image = (20 + 10 * rng.random((height, width))).astype(np.float32)
    objects = np.zeros((height, width), dtype=bool)
    for row, column, side in squares:
        objects[row:row + side, column:column + side] = True
    image[objects] = 150 + 60 * rng.random(int(objects.sum()))
    return image, objects
