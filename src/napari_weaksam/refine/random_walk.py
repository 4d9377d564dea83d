"""Random-walk propagation of a class activation map (CAM), and its thresholding."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from skimage.transform import resize

from napari_weaksam.refine.affinity import neighbour_affinity, transition_matrix


def random_walk(
    cam: np.ndarray, transition: sp.spmatrix | sp.sparray, steps: int = 4
) -> np.ndarray:
    """Apply ``c <- T c`` ``steps`` times to a CAM of shape (h, w); returns float64 (h, w).

    ``transition`` is (h*w, h*w) over row-major pixels and row-stochastic with non-negative
    entries (see :func:`transition_matrix`), so each step takes convex combinations: values
    stay within [min(cam), max(cam)] and no renormalisation is needed. The CAM is clipped to
    [0, 1] first.
    """
    if steps < 0:
        raise ValueError(f"steps must be non-negative, got {steps}")
    c = np.clip(np.asarray(cam, dtype=np.float64), 0.0, 1.0)
    if c.ndim != 2 or transition.shape != (c.size, c.size):
        raise ValueError(
            f"cam of shape {c.shape} does not match transition of shape {transition.shape}"
        )
    state = c.ravel()
    for _ in range(steps):
        state = transition @ state
    return np.clip(state.reshape(c.shape), 0.0, 1.0)


def resize_map(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Bilinear resize to ``shape`` (all axes), anti-aliased (Gaussian pre-filter) when any axis
    shrinks."""
    shrinking = any(new < old for new, old in zip(shape, image.shape, strict=True))
    return resize(image, shape, order=1, mode="edge", anti_aliasing=shrinking, preserve_range=True)


def _normalise(refined: np.ndarray) -> np.ndarray:
    """Min-max scale to [0, 1] when the map has a positive maximum and is not constant."""
    low, high = refined.min(), refined.max()
    if high <= 0 or high <= low:
        return refined
    return (refined - low) / (high - low)


def refine_cam(
    cam_full: np.ndarray,
    source_map: np.ndarray,
    *,
    grid_size: int = 64,
    radius: int = 5,
    beta: float = 4.0,
    steps: int = 4,
) -> np.ndarray:
    """Refine a CAM (H, W) in [0, 1] by a random walk over the affinity of ``source_map``.

    ``source_map`` is (H, W) or (C, H, W), at the CAM's size or already at
    ``grid_size x grid_size``. Both are resized to the grid (bilinear, anti-aliased when
    shrinking; the aspect ratio is not kept), the walk runs on that grid, and the result is
    resized back (see :func:`walk_cam`). Returns float64 (H, W).
    """
    cam = np.asarray(cam_full, dtype=np.float64)
    source = np.asarray(source_map, dtype=np.float64)
    grid = (grid_size, grid_size)
    if cam.ndim != 2 or source.ndim not in (2, 3) or source.shape[-2:] not in (cam.shape, grid):
        raise ValueError(
            f"source map of shape {source.shape} does not match CAM of shape {cam.shape}"
        )
    if grid_size < 1:
        raise ValueError(f"grid_size must be at least 1, got {grid_size}")
    small_source = resize_map(source, source.shape[:-2] + grid)
    transition = transition_matrix(neighbour_affinity(small_source, radius=radius, beta=beta))
    return walk_cam(cam, transition, grid_size=grid_size, steps=steps)


def walk_cam(
    cam_full: np.ndarray, transition: sp.spmatrix | sp.sparray, *, grid_size: int = 64,
    steps: int = 4,
) -> np.ndarray:
    """Resize a CAM (H, W) to the ``grid_size`` grid of ``transition``, walk ``steps`` steps,
    resize back bilinearly and clip to [0, 1]. The result is then min-max normalised per image,
    but only if its maximum is positive and it is not constant (an all-zero CAM stays zero)."""
    cam = np.asarray(cam_full, dtype=np.float64)
    small_cam = resize_map(np.clip(cam, 0.0, 1.0), (grid_size, grid_size))
    walked = random_walk(small_cam, transition, steps=steps)
    return _normalise(np.clip(resize_map(walked, cam.shape), 0.0, 1.0))


def threshold_map(
    refined: np.ndarray,
    presence_probability: float,
    threshold: float = 0.5,
    gate: float = 0.5,
) -> np.ndarray:
    """Boolean mask ``refined > threshold``, or all False when ``presence_probability < gate``.

    The gate keeps images the classifier thinks lack the class from getting any foreground.
    """
    refined = np.asarray(refined)
    if presence_probability < gate:
        return np.zeros(refined.shape, dtype=bool)
    return refined > threshold
