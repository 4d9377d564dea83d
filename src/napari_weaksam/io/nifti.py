"""NIfTI reading through nibabel, reoriented to the display orientation."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np

from napari_weaksam.io.errors import ImageReadError
from napari_weaksam.io.geometry import NiftiGeometry
from napari_weaksam.io.image_data import ImageData


def _spatial_data(img: nib.Nifti1Image, path: Path) -> np.ndarray:
    """The voxel array as three spatial dims (singleton 4th+ dims squeezed)."""
    shape = tuple(int(s) for s in img.shape)
    if len(shape) > 3 and any(s != 1 for s in shape[3:]):
        raise ImageReadError(
            f"{path.name}: 4D data (shape {shape}) is not supported: "
            "split it into 3D volumes (one file per time point)."
        )
    if len(shape) < 2:
        raise ImageReadError(f"{path.name}: the data is not an image (shape {shape}).")
    data = np.asanyarray(img.dataobj)
    if isinstance(data, np.memmap):
        data = np.array(data)
    return data.reshape((shape + (1, 1))[:3])


def _check_gzip(path: Path) -> None:
    """Stream through a gzip file so that truncation or CRC errors surface."""
    with gzip.open(path, "rb") as fh:
        while fh.read(16 * 1024**2):
            pass


def _load(path: Path) -> nib.Nifti1Image:
    """``nib.load`` with the real cause when nibabel only says it cannot tell the type."""
    try:
        return nib.load(path)
    except nib.filebasedimages.ImageFileError as exc:
        if path.name.lower().endswith(".gz"):
            _check_gzip(path)
        raise ImageReadError(
            f"{path.name}: not a valid NIfTI file (its header could not be read). "
            "Re-export it from the scanner software or remove it from the folder."
        ) from exc


def read_nifti(path: Path) -> ImageData:
    """Read a ``.nii``/``.nii.gz`` as ZYX (S, P, L) or YX for a single slice."""
    img = _load(path)
    source = _spatial_data(img, path)
    geometry = NiftiGeometry.from_affine(img.affine, tuple(int(s) for s in img.shape))
    display = np.ascontiguousarray(geometry.source_to_display(source))
    zooms = tuple(float(z) for z in img.header.get_zooms()[:3]) + (1.0, 1.0)
    spacing = [1.0, 1.0, 1.0]
    for src_axis, (disp_axis, _flip) in enumerate(geometry.to_display):
        spacing[int(disp_axis)] = zooms[src_axis] if zooms[src_axis] > 0 else 1.0
    axes = "ZYX"
    singleton = [i for i, n in enumerate(display.shape) if n == 1]
    if len(singleton) > 1:
        raise ImageReadError(
            f"{path.name}: the data is not an image (shape {img.shape}). "
            "Export it as a 2D slice or a 3D volume."
        )
    if singleton:
        display = np.squeeze(display, axis=singleton[0])
        del spacing[singleton[0]]
        axes = "YX"
    return ImageData(
        path=path,
        data=display,
        axes=axes,
        spacing=tuple(spacing),
        format="nifti",
        nifti=geometry,
    )
