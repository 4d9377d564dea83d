"""Mapping a source axis string (tifffile/OME style) onto the display axes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_weaksam.io.errors import ImageReadError


@dataclass(frozen=True)
class AxisPlan:
    """Drop the singleton source axes ``drop`` then put the rest in ``order``."""

    source_axes: str
    drop: tuple[int, ...]
    order: tuple[int, ...]
    display_axes: str

    @property
    def is_identity(self) -> bool:
        """True when the source array is already in display order."""
        return not self.drop and self.order == tuple(range(len(self.order)))

    def spacing(self, per_axis: dict[str, float]) -> tuple[float, ...]:
        """Spacing of the non-channel display axes from a ``{"Z"|"Y"|"X": size}`` dict."""
        return tuple(float(per_axis.get(a, 1.0)) for a in self.display_axes if a != "C")

    def source_spacing(self, per_source_axis: list[float]) -> tuple[float, ...]:
        """Spacing of the non-channel display axes from one value per source axis."""
        return tuple(
            float(per_source_axis[i])
            for i, a in zip(self.order, self.display_axes, strict=True)
            if a != "C"
        )


def _split_hint(shape: tuple[int, ...], what: str, hint: str) -> str:
    return f"{what} (shape {tuple(shape)}) is not supported: {hint}"


def plan_axes(axes: str, shape: tuple[int, ...], path: str | Path) -> AxisPlan:
    """Decide how source ``axes`` (e.g. ``"TZYX"``, ``"YXS"``) become display axes.

    ``S`` (samples) of size 3/4 becomes RGB (``YXC``), ``C`` or other ``S`` becomes ``CYX``,
    and a single remaining non-singleton axis of any other letter becomes ``Z``.
    """
    name = Path(path).name
    axes = axes.upper()
    if len(axes) != len(shape):
        raise ImageReadError(f"{name}: axes {axes!r} do not match shape {tuple(shape)}.")
    if "Y" not in axes or "X" not in axes:
        axes = axes[:-2].replace("Y", "Q").replace("X", "Q") + "YX"
    y, x = axes.rindex("Y"), axes.rindex("X")
    keep = [i for i, s in enumerate(shape) if s != 1 or i in (y, x)]
    channel = [i for i in keep if axes[i] in "CS"]
    stack = [i for i in keep if i not in (y, x) and axes[i] not in "CS"]
    hint = "split it into 3D volumes (one file per time point or channel)."
    if len(stack) > 1 or len(channel) > 1:
        raise ImageReadError(f"{name}: " + _split_hint(shape, "4D data", hint))
    if stack and channel:
        raise ImageReadError(
            f"{name}: "
            + _split_hint(shape, "multi-channel 3D data", "split it into one volume per channel.")
        )
    if stack:
        order, display = (stack[0], y, x), "ZYX"
    elif channel and axes[channel[0]] == "S" and shape[channel[0]] in (3, 4):
        order, display = (y, x, channel[0]), "YXC"
    elif channel:
        order, display = (channel[0], y, x), "CYX"
    else:
        order, display = (y, x), "YX"
    drop = tuple(i for i in range(len(axes)) if i not in order)
    return AxisPlan(axes, drop, order, display)


def apply_plan(data: Any, plan: AxisPlan) -> Any:
    """Squeeze and transpose ``data``; lazy arrays stay lazy (through dask)."""
    if plan.is_identity:
        return data
    kept = [i for i in range(len(plan.source_axes)) if i not in plan.drop]
    perm = tuple(kept.index(i) for i in plan.order)
    if isinstance(data, np.ndarray):
        return np.transpose(np.squeeze(data, axis=plan.drop), perm)
    import dask.array as da

    lazy = data if isinstance(data, da.Array) else da.from_array(data, chunks=data.chunks)
    return da.transpose(da.squeeze(lazy, axis=plan.drop), perm)
