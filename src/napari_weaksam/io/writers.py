"""Writing label arrays as TIFF, NIfTI (with the source geometry) or zarr, atomically."""

from __future__ import annotations

import os
import shutil
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from napari_weaksam.io.errors import LabelWriteError
from napari_weaksam.io.geometry import NiftiGeometry

LABEL_SUFFIXES: tuple[str, ...] = (".tif", ".tiff", ".nii", ".nii.gz", ".zarr")

#: Largest zarr chunk edge within one plane.
ZARR_CHUNK = 512


def _label_suffix(path: Path) -> str | None:
    lower = path.name.lower()
    for suffix in sorted(LABEL_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return suffix
    return None


def label_dtype(max_label: int) -> np.dtype:
    """Smallest unsigned integer dtype that holds ``max_label``."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if max_label <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise ValueError(f"label {max_label} does not fit in 32 bits")


def prepare_labels(data: Any, name: str) -> np.ndarray:
    """Check ``data`` is a non-negative integer label array and shrink its dtype."""
    arr = np.asarray(data)
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8)
    if arr.dtype.kind == "f" and arr.size and not np.all(np.mod(arr, 1) == 0):
        raise LabelWriteError(
            f"{name}: labels must be whole numbers but the array holds fractions. "
            "Round or threshold the labels before saving."
        )
    if arr.dtype.kind not in "iuf":
        raise LabelWriteError(f"{name}: labels of type {arr.dtype} cannot be saved as labels.")
    if arr.size == 0:
        raise LabelWriteError(f"{name}: the label array is empty (shape {arr.shape}).")
    if arr.min() < 0:
        raise LabelWriteError(
            f"{name}: labels must not be negative (minimum is {arr.min()}). "
            "Replace negative values with 0 (background) before saving."
        )
    if int(arr.max()) > np.iinfo(np.uint32).max:
        raise LabelWriteError(
            f"{name}: the largest label ({int(arr.max())}) does not fit in 32 bits. "
            "Relabel the objects consecutively (1, 2, 3, ...) before saving."
        )
    return arr.astype(label_dtype(int(arr.max())))


def _replace_atomically(tmp: Path, target: Path) -> None:
    """Move ``tmp`` onto ``target``; an existing directory is moved aside then deleted."""
    if target.is_dir():
        aside = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(target, aside)
        os.replace(tmp, target)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(tmp, target)


def _new_temporary(path: Path, suffix: str) -> Path:
    """A new hidden file (a folder for zarr) beside ``path``, with the mode of any new file or
    folder (0666/0777 less the umask), unlike ``tempfile``'s private 0600/0700."""
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}{suffix}")
    if suffix == ".zarr":
        tmp.mkdir()
    else:
        tmp.touch(exist_ok=False)
    return tmp


def _write_tiff(tmp: Path, data: np.ndarray, spacing: tuple[float, ...] | None) -> None:
    import tifffile

    kwargs: dict[str, Any] = {"compression": "zlib"}
    if spacing is not None and len(spacing) >= 2:
        kwargs["resolution"] = (1.0 / spacing[-1], 1.0 / spacing[-2])
    if data.dtype in (np.uint8, np.uint16):  # the ImageJ format has no 32-bit integers
        metadata: dict[str, Any] = {"axes": "ZYX" if data.ndim == 3 else "YX"}
        if spacing is not None and data.ndim == 3 and len(spacing) == 3:
            metadata["spacing"] = float(spacing[0])
        kwargs.update(imagej=True, metadata=metadata)
    tifffile.imwrite(tmp, data, **kwargs)


def _write_nifti(
    tmp: Path, data: np.ndarray, nifti: NiftiGeometry | None, spacing: tuple[float, ...] | None
) -> None:
    import nibabel as nib

    if nifti is None:
        nifti = NiftiGeometry.for_display(data.shape, spacing)
    source = nifti.display_to_source(data)
    img = nib.Nifti1Image(source, nifti.affine)
    img.set_qform(nifti.affine, code=1)
    img.set_sform(nifti.affine, code=1)
    img.header.set_data_dtype(source.dtype)
    img.header.set_xyzt_units("mm")
    nib.save(img, tmp)


def _write_zarr(tmp: Path, data: np.ndarray, spacing: tuple[float, ...] | None) -> None:
    import zarr

    chunks = tuple(
        min(n, ZARR_CHUNK) if i >= data.ndim - 2 else 1 for i, n in enumerate(data.shape)
    )
    attrs = {"spacing": [float(s) for s in (spacing or (1.0,) * data.ndim)]}
    arr = zarr.create_array(
        store=str(tmp),
        shape=data.shape,
        dtype=data.dtype,
        chunks=chunks,
        zarr_format=3,
        attributes=attrs,
        fill_value=0,
        overwrite=True,
    )
    arr[...] = data


def _check_nifti(path: Path, labels: np.ndarray, nifti: NiftiGeometry | None) -> None:
    """Warn when no geometry is known; reject labels that do not fit the source image."""
    if nifti is None:
        warnings.warn(
            f"{path.name}: no source NIfTI geometry is known; writing a diagonal affine from the "
            "spacing, so the labels may not overlay the original scan in other software.",
            UserWarning,
            stacklevel=3,
        )
    elif labels.size != int(np.prod(nifti.display_shape)):
        raise LabelWriteError(
            f"{path.name}: the labels (shape {labels.shape}) do not match the image they should "
            f"belong to (shape {nifti.display_shape}). Save labels drawn on that image."
        )


_WRITERS: dict[str, Callable[..., None]] = {
    ".tif": lambda tmp, data, nifti, spacing: _write_tiff(tmp, data, spacing),
    ".tiff": lambda tmp, data, nifti, spacing: _write_tiff(tmp, data, spacing),
    ".nii": _write_nifti,
    ".nii.gz": _write_nifti,
    ".zarr": lambda tmp, data, nifti, spacing: _write_zarr(tmp, data, spacing),
}


def write_labels(
    path: str | Path,
    data: np.ndarray,
    *,
    nifti: NiftiGeometry | None = None,
    spacing: tuple[float, ...] | None = None,
) -> Path:
    """Write display-ordered labels to ``path`` (.tif/.tiff/.nii/.nii.gz/.zarr).

    NIfTI output is put back into the source voxel order with the source affine when
    ``nifti`` is given. The file appears atomically; nothing is left behind on failure.
    """
    path = Path(path)
    suffix = _label_suffix(path)
    if suffix is None:
        raise LabelWriteError(
            f"{path.name}: labels cannot be saved with this suffix. "
            f"Use one of: {', '.join(LABEL_SUFFIXES)}."
        )
    labels = prepare_labels(data, path.name)
    if not path.parent.is_dir():
        raise LabelWriteError(f"{path.name}: folder {path.parent} does not exist. Create it first.")
    if suffix.startswith(".nii"):
        _check_nifti(path, labels, nifti)
    tmp = _new_temporary(path, suffix)
    try:
        _WRITERS[suffix](tmp, labels, nifti, spacing)
        _replace_atomically(tmp, path)
    except BaseException as exc:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        if isinstance(exc, LabelWriteError) or not isinstance(exc, Exception):
            raise
        raise LabelWriteError(
            f"{path.name}: could not write the labels ({type(exc).__name__}: {exc}). "
            "Check the folder is writable and has free space."
        ) from exc
    return path
