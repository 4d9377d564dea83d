"""Prompts spread uniformly over the whole image, for building the affinity source map.

Coordinates are in pixels of the image the prompts are given for, with the origin at the
top-left corner of the top-left pixel: x runs along columns (0..width), y along rows
(0..height), and pixel (row r, column c) covers [c, c+1) x [r, r+1). This is the convention
of SAM's point and box prompts (before its own resizing to the model input).

The grid splits the image into ``grid x grid`` equal cells; prompt ``(i, j)`` (row ``i``,
column ``j``) sits at the cell centre ``x = (j + 0.5) * width / grid``,
``y = (i + 0.5) * height / grid``. Prompts are ordered row-major.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _check_size(height: int, width: int, grid: int) -> None:
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    if grid < 1:
        raise ValueError(f"grid must be at least 1, got {grid}")


def grid_points(height: int, width: int, grid: int = 4) -> np.ndarray:
    """Centres of a uniform ``grid x grid`` tiling of the image, as an (N, 2) array of x, y.

    N = grid**2, row-major (y varies slowest); dtype float64.
    """
    _check_size(height, width, grid)
    centres = (np.arange(grid) + 0.5) / grid
    ys, xs = np.meshgrid(centres * height, centres * width, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def grid_boxes(
    height: int,
    width: int,
    grid: int = 4,
    scales: float | Sequence[float] = (0.25, 0.5),
) -> np.ndarray:
    """Square boxes centred on the grid points, as an (N, 4) array of x0, y0, x1, y1.

    Each box has side ``scale * min(height, width)`` and is centred on a point of
    :func:`grid_points`; it is then clipped to ``[0, width] x [0, height]``, so boxes at the
    image edge are smaller and their centres move inwards. There are ``grid**2`` boxes per
    scale, all boxes of the first scale first, each scale row-major; dtype float64.
    """
    scale_list = np.atleast_1d(np.asarray(scales, dtype=np.float64))
    if scale_list.size == 0 or np.any(scale_list <= 0):
        raise ValueError(f"scales must be positive, got {scales!r}")
    centres = grid_points(height, width, grid)
    half = (scale_list * min(height, width) / 2.0)[:, None, None]
    lower = np.clip(centres[None] - half, 0.0, [width, height])
    upper = np.clip(centres[None] + half, 0.0, [width, height])
    return np.concatenate([lower, upper], axis=2).reshape(-1, 4)
