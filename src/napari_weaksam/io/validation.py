"""Checks applied to every array a reader returns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from napari_weaksam.io.errors import ImageReadError

_BAD_KINDS = {
    "c": "complex numbers",
    "O": "Python objects",
    "S": "byte strings",
    "U": "text",
    "V": "structured records",
    "M": "dates",
    "m": "time spans",
}


def _name(path: str | Path) -> str:
    return Path(path).name


def _astype(data: Any, dtype: type) -> Any:
    """Cast ``data``; lazy arrays stay lazy (through dask)."""
    if isinstance(data, np.ndarray):
        return data.astype(dtype)
    import dask.array as da

    lazy = data if isinstance(data, da.Array) else da.from_array(data, chunks=data.chunks)
    return lazy.astype(dtype)


def check_dims(shape: tuple[int, ...], path: str | Path, axes: str | None = None) -> None:
    """Reject zero-size dims and data with more than three non-channel dims."""
    name = _name(path)
    if any(int(s) == 0 for s in shape):
        raise ImageReadError(
            f"{name}: the image has an empty dimension (shape {tuple(shape)}). "
            "Re-export it with its pixel data or remove it from the folder."
        )
    if axes is not None:
        n_space = sum(1 for a in axes if a != "C")
    else:
        squeezed = [s for s in shape if s != 1]
        rgb = len(squeezed) >= 3 and squeezed[-1] in (3, 4)
        n_space = len(squeezed) - int(rgb)
    if n_space > 3:
        raise ImageReadError(
            f"{name}: 4D data (shape {tuple(shape)}) is not supported: "
            "split it into 3D volumes (one file per time point or channel)."
        )
    if n_space < 2:
        raise ImageReadError(
            f"{name}: the data is not an image (shape {tuple(shape)}). "
            "Export it as a 2D image or a 3D volume."
        )


def validate_array(data: Any, path: str | Path, axes: str | None = None) -> Any:
    """Check ``data`` read from ``path`` and return it, possibly with a friendlier dtype.

    bool becomes uint8 and float16 becomes float32; NaN/Inf are only looked for in eager
    numpy arrays (lazy data is never loaded here).
    """
    name = _name(path)
    check_dims(tuple(int(s) for s in data.shape), path, axes)
    dtype = np.dtype(data.dtype)
    if dtype.kind in _BAD_KINDS:
        raise ImageReadError(
            f"{name}: pixels of type {dtype} ({_BAD_KINDS[dtype.kind]}) are not supported. "
            "Convert the image to integer or real-valued pixels before importing it."
        )
    if dtype == np.bool_:
        data = _astype(data, np.uint8)
    elif dtype == np.float16:
        data = _astype(data, np.float32)
    if isinstance(data, np.ndarray):
        check_finite(data, path)
    return data


def check_finite(data: Any, path: str | Path) -> None:
    """Refuse float pixels with NaN/Inf, reading lazy data one plane of its first axis at a
    time (so a large volume is never held in memory whole)."""
    if np.dtype(data.dtype).kind != "f":
        return
    planes = [data] if isinstance(data, np.ndarray) or data.ndim < 3 else data
    n_bad = sum(int(np.size(plane) - np.count_nonzero(np.isfinite(np.asarray(plane))))
                for plane in planes)
    if n_bad:
        raise ImageReadError(
            f"{_name(path)}: the image contains {n_bad} NaN/Inf values. "
            "Replace them (e.g. with 0 or the background value) before importing it."
        )
