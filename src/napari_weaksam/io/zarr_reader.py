"""Lazy reading of zarr arrays and OME-Zarr (NGFF v0.4/v0.5) multiscale groups."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from napari_weaksam.io.axes import apply_plan, plan_axes
from napari_weaksam.io.errors import ImageReadError
from napari_weaksam.io.image_data import ImageData


def _default_axes(shape: tuple[int, ...]) -> str:
    """Axis letters for a plain array without metadata."""
    if len(shape) == 2:
        return "YX"
    if len(shape) == 3 and shape[-1] in (3, 4):
        return "YXS"
    return "Q" * (len(shape) - 3) + "ZYX"


def _multiscales(attrs: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The NGFF ``multiscales`` list (v0.4: top level, v0.5: under ``ome``)."""
    ms = attrs.get("multiscales") or (attrs.get("ome") or {}).get("multiscales")
    return ms if isinstance(ms, list) and ms else None


def _scale(transforms: list[dict[str, Any]] | None, ndim: int) -> list[float]:
    """Product of the ``scale`` coordinate transformations (ones when absent)."""
    out = [1.0] * ndim
    for t in transforms or []:
        if t.get("type") == "scale" and len(t.get("scale", [])) == ndim:
            out = [a * float(b) for a, b in zip(out, t["scale"], strict=True)]
    return out


def _axis_letters(ms: dict[str, Any], ndim: int) -> str:
    """Axis letters (upper case) from NGFF ``axes`` (dicts in v0.4+, strings in v0.3)."""
    axes = ms.get("axes")
    if not axes:
        return "TCZYX"[-ndim:]
    names = [a["name"] if isinstance(a, dict) else str(a) for a in axes]
    letters = "".join(n[:1].upper() for n in names)
    return letters if len(letters) == ndim else "TCZYX"[-ndim:]


def _read_multiscale(group: Any, ms: dict[str, Any], path: Path) -> ImageData:
    datasets = ms.get("datasets") or []
    if not datasets:
        raise ImageReadError(f"{path.name}: the OME-Zarr multiscales list has no datasets.")
    raw = [group[d["path"]] for d in datasets]
    ndim = len(raw[0].shape)
    letters = _axis_letters(ms, ndim)
    plan = plan_axes(letters, tuple(raw[0].shape), path)
    scale = _scale(datasets[0].get("coordinateTransformations"), ndim)
    overall = _scale(ms.get("coordinateTransformations"), ndim)
    scale = [a * b for a, b in zip(scale, overall, strict=True)]
    levels = [apply_plan(arr, plan) for arr in raw]
    return ImageData(
        path=path,
        data=levels[0],
        axes=plan.display_axes,
        spacing=plan.source_spacing(scale),
        format="zarr",
        levels=levels if len(levels) > 1 else None,
    )


def _array_of_group(group: Any, path: Path) -> Any:
    """The single image array of a group without NGFF metadata."""
    arrays = dict(group.arrays())
    if "0" in arrays:
        return arrays["0"]
    if len(arrays) == 1:
        return next(iter(arrays.values()))
    raise ImageReadError(
        f"{path.name}: the zarr group has no OME multiscales metadata and "
        f"{len(arrays)} arrays ({', '.join(sorted(arrays)) or 'none'}). "
        "Save the image as a single zarr array or as OME-Zarr."
    )


def _read_plain(arr: Any, path: Path) -> ImageData:
    shape = tuple(int(s) for s in arr.shape)
    if len(shape) < 2:
        raise ImageReadError(f"{path.name}: the data is not an image (shape {shape}).")
    letters = _default_axes(shape)
    plan = plan_axes(letters, shape, path)
    stored = dict(arr.attrs).get("spacing")
    per_axis: dict[str, float] = {}
    if isinstance(stored, list | tuple):
        names = [a for a in plan.display_axes if a != "C"]
        if len(stored) == len(names):
            per_axis = {a: float(v) for a, v in zip(names, stored, strict=True)}
    return ImageData(
        path=path,
        data=apply_plan(arr, plan),
        axes=plan.display_axes,
        spacing=plan.spacing(per_axis),
        format="zarr",
    )


def read_zarr(path: Path) -> ImageData:
    """Open a ``.zarr`` directory lazily (nothing is loaded into memory)."""
    import zarr

    node = zarr.open(str(path), mode="r")
    if isinstance(node, zarr.Array):
        return _read_plain(node, path)
    ms = _multiscales(dict(node.attrs))
    if ms:
        return _read_multiscale(node, ms[0], path)
    return _read_plain(_array_of_group(node, path), path)
