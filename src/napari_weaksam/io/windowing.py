"""Intensity windowing: CT window presets and robust default contrast limits."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from napari_weaksam.io.image_data import ImageData

#: CT window presets, name -> (level, width) in Hounsfield units.
WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "brain": (40.0, 80.0),
    "subdural": (75.0, 215.0),
    "stroke": (40.0, 40.0),
    "temporal bone": (600.0, 2800.0),
    "soft tissue": (40.0, 400.0),
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "abdomen": (40.0, 350.0),
    "liver": (60.0, 160.0),
    "bone": (400.0, 1800.0),
}

#: Most values :func:`percentile_limits` reads from an array.
MAX_SAMPLES = 4_000_000


def window_to_limits(level: float, width: float) -> tuple[float, float]:
    """Contrast limits ``(low, high)`` of a window centred on ``level``."""
    if width <= 0:
        raise ValueError(f"window width must be positive, got {width}")
    return (float(level) - float(width) / 2, float(level) + float(width) / 2)


def _strides(shape: tuple[int, ...], max_values: int) -> tuple[int, ...]:
    """Per-axis steps so that the strided subset has at most ``max_values`` elements."""
    steps = [1] * len(shape)

    def n_values() -> int:
        return math.prod(math.ceil(n / s) for n, s in zip(shape, steps, strict=True))

    while n_values() > max_values:
        axis = max(range(len(shape)), key=lambda i: math.ceil(shape[i] / steps[i]))
        steps[axis] = steps[axis] * 2
    return tuple(steps)


def sample_values(data: Any, max_values: int = MAX_SAMPLES) -> np.ndarray:
    """A strided subset of ``data`` (numpy or lazy) as a flat float64 array."""
    shape = tuple(int(s) for s in data.shape)
    steps = _strides(shape, max_values)
    if any(s > 1 for s in steps):
        data = data[tuple(slice(None, None, s) for s in steps)]
    return np.asarray(data, dtype=np.float64).ravel()


def percentile_limits(data: Any, low: float = 0.5, high: float = 99.5) -> tuple[float, float]:
    """Robust contrast limits from percentiles of (a sample of) ``data``.

    Non-finite values are ignored; a constant image ``v`` gives ``(v, v + 1)``.
    """
    values = sample_values(data)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (0.0, 1.0)
    lo, hi = (float(v) for v in np.percentile(values, [low, high]))
    if hi <= lo:
        lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return (lo, lo + 1.0)
    return (lo, hi)


def default_contrast_limits(image: ImageData) -> tuple[float, float] | None:
    """Initial contrast limits for ``image``; None lets the viewer decide (8-bit RGB)."""
    if image.is_rgb and image.dtype == np.uint8:
        return None
    if image.modality == "CT":
        return window_to_limits(*WINDOW_PRESETS["soft tissue"])
    data = image.levels[-1] if image.levels else image.data
    return percentile_limits(data)
