"""npe2 reader and writer contributions (napari itself is never imported here)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from napari_weaksam.io.geometry import NiftiGeometry
from napari_weaksam.io.image_data import ImageData
from napari_weaksam.io.readers import is_supported, read_image, split_suffix
from napari_weaksam.io.windowing import default_contrast_limits
from napari_weaksam.io.writers import write_labels

LayerData = tuple[Any, dict[str, Any], str]

#: Key under which this plugin keeps its own information in a layer's ``metadata``.
METADATA_KEY = "weaksam"


def layer_metadata(image: ImageData) -> dict[str, Any]:
    """What a writer needs later to restore the file's geometry."""
    meta: dict[str, Any] = {
        "path": str(image.path),
        "format": image.format,
        "axes": image.axes,
        "spacing": list(image.spacing),
    }
    if image.modality:
        meta["modality"] = image.modality
    if image.nifti is not None:
        meta.update(image.nifti.to_metadata())
    return meta


def image_layer_data(image: ImageData) -> LayerData:
    """One napari image layer-data tuple for ``image``."""
    kwargs: dict[str, Any] = {
        "name": split_suffix(image.path)[0],
        "scale": tuple(image.spacing),
        "metadata": {METADATA_KEY: layer_metadata(image)},
    }
    if image.is_rgb:
        kwargs["rgb"] = True
    elif image.axes.startswith("C"):
        kwargs["channel_axis"] = 0
    else:
        kwargs["rgb"] = False
    limits = default_contrast_limits(image)
    if limits is not None:
        kwargs["contrast_limits"] = limits
    data: Any = image.data
    if image.levels:
        data = image.levels
        kwargs["multiscale"] = True
    return (data, kwargs, "image")


def _read_paths(paths: list[str]) -> list[LayerData]:
    return [image_layer_data(read_image(p, lazy=True)) for p in paths]  # pyramids stay lazy


def get_reader(path: str | list[str]) -> Callable[[str | list[str]], list[LayerData]] | None:
    """Return a reader for ``path`` (or every path of a list), or None if unsupported."""
    paths = [path] if isinstance(path, str | Path) else list(path)
    if not paths or not all(is_supported(p) for p in paths):
        return None

    def reader(p: str | list[str]) -> list[LayerData]:
        return _read_paths([p] if isinstance(p, str | Path) else list(p))

    return reader


def _geometry(meta: dict[str, Any]) -> NiftiGeometry | None:
    info = (meta.get("metadata") or {}).get(METADATA_KEY) or {}
    if info.get("affine") is None or info.get("source_shape") is None:
        return None
    return NiftiGeometry.from_metadata(info)


def _spacing(meta: dict[str, Any]) -> tuple[float, ...] | None:
    scale = meta.get("scale")
    return None if scale is None else tuple(float(s) for s in scale)


def write_labels_tiff(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """npe2 single-layer writer: labels as a zlib-compressed (ImageJ) TIFF."""
    return [str(write_labels(path, data, spacing=_spacing(meta)))]


def write_labels_nifti(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """npe2 single-layer writer: labels as NIfTI with the source image's affine."""
    out = write_labels(path, data, nifti=_geometry(meta), spacing=_spacing(meta))
    return [str(out)]


def write_labels_zarr(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """npe2 single-layer writer: labels as a zarr v3 array."""
    return [str(write_labels(path, data, spacing=_spacing(meta)))]
