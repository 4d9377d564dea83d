"""TIFF and OME-TIFF reading through tifffile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from napari_weaksam.io.axes import apply_plan, plan_axes
from napari_weaksam.io.image_data import ImageData

#: Files bigger than this are opened lazily even when ``lazy=False``.
LAZY_BYTES = 512 * 1024**2

_METRIC_UNITS = (3, 4, 5)  # RESUNIT: centimeter, millimeter, micrometer


def _ome_spacing(tf: tifffile.TiffFile) -> dict[str, float]:
    """Physical pixel sizes of the first OME image, keyed by axis letter."""
    try:
        image = tifffile.xml2dict(tf.ome_metadata)["OME"]["Image"]
    except (KeyError, TypeError, ValueError):
        return {}
    pixels = (image[0] if isinstance(image, list) else image).get("Pixels", {})
    out = {}
    for axis in "XYZ":
        value = pixels.get(f"PhysicalSize{axis}")
        if value is not None and float(value) > 0:
            out[axis] = float(value)
    return out


def _tag_spacing(tf: tifffile.TiffFile) -> dict[str, float]:
    """Pixel sizes from the resolution tags (and ImageJ ``spacing`` for Z)."""
    page = tf.pages.first
    out: dict[str, float] = {}
    imagej = tf.imagej_metadata or {}
    if imagej or int(page.resolutionunit) in _METRIC_UNITS:
        x_res, y_res = page.resolution
        if x_res > 0 and y_res > 0:
            out.update(X=1.0 / x_res, Y=1.0 / y_res)
    if float(imagej.get("spacing", 0) or 0) > 0:
        out["Z"] = float(imagej["spacing"])
    return out


_MICRONS_PER_UNIT = {3: 1e4, 4: 1e3, 5: 1.0}  # RESUNIT -> µm
_MICRONS_PER_OME_UNIT = {"µm": 1.0, "um": 1.0, "nm": 1e-3, "mm": 1e3, "cm": 1e4}


def _microns_per_pixel(tf: tifffile.TiffFile) -> float | None:
    """Level-0 pixel width in µm, when the OME metadata or metric resolution tags give it."""
    if tf.is_ome:
        try:
            image = tifffile.xml2dict(tf.ome_metadata)["OME"]["Image"]
            pixels = (image[0] if isinstance(image, list) else image)["Pixels"]
            size = float(pixels["PhysicalSizeX"])
            unit = _MICRONS_PER_OME_UNIT.get(str(pixels.get("PhysicalSizeXUnit", "µm")))
            return size * unit if size > 0 and unit else None
        except (KeyError, TypeError, ValueError):
            return None
    page = tf.pages.first
    unit = _MICRONS_PER_UNIT.get(int(page.resolutionunit))
    x_res = page.resolution[0]
    return unit / x_res if unit and x_res > 0 else None


def _spacing(tf: tifffile.TiffFile) -> dict[str, float]:
    spacing = _ome_spacing(tf) if tf.is_ome else {}
    return spacing or _tag_spacing(tf)


def _lazy_level(path: Path, level: int) -> Any:
    """Open one pyramid level as a read-only zarr array without loading it."""
    import zarr

    store = tifffile.imread(path, aszarr=True, level=level)
    return zarr.open(store, mode="r")


def read_tiff(path: Path, *, lazy: bool = False) -> ImageData:
    """Read a TIFF/OME-TIFF; pyramids become ``levels``, big files stay lazy."""
    lazy = lazy or path.stat().st_size > LAZY_BYTES
    with tifffile.TiffFile(path) as tf:
        series = tf.series[0]
        plan = plan_axes(series.axes, tuple(series.shape), path)
        per_axis = _spacing(tf)
        microns = _microns_per_pixel(tf)
        n_levels = len(series.levels)
        if lazy:
            raw = [_lazy_level(path, i) for i in range(n_levels)]
        else:
            raw = [np.asarray(level.asarray()) for level in series.levels]
    levels = [apply_plan(arr, plan) for arr in raw]
    return ImageData(
        path=path,
        data=levels[0],
        axes=plan.display_axes,
        spacing=plan.spacing(per_axis),
        format="tiff",
        levels=levels if len(levels) > 1 else None,
        microns_per_pixel=microns,
    )
