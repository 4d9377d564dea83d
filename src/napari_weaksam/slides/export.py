"""Export a slide's stitched labels: OME-Zarr, pyramidal OME-TIFF, or GeoJSON polygons.

Every format is written from the stored pyramid a chunk at a time, to a temporary name renamed
into place, so memory stays bounded and a failed export leaves nothing half-written.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tifffile
import zarr

from ..project import Project, ProjectError, Source
from .polygons import geojson_features, write_geojson
from .stitching import CHUNK, labels_path, open_labels, slide_tiling

SLIDE_EXPORT_SUFFIXES = (".ome.zarr", ".ome.tif", ".ome.tiff", ".geojson")


def export_slide_labels(project: Project, source: Source, dest: str | Path) -> Path:
    """Write ``source``'s stitched labels to ``dest``; the format follows its suffix."""
    dest = project.check_outside(dest, "the slide labels")
    name = dest.name.lower()
    suffix = next((s for s in SLIDE_EXPORT_SUFFIXES if name.endswith(s)), None)
    if suffix is None:
        raise ProjectError(f"{dest.name}: slide labels are written as "
                           f"{', '.join(SLIDE_EXPORT_SUFFIXES)}; choose one of these suffixes")
    levels = open_labels(project, source)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".geojson":
        tiling = slide_tiling(source)
        features = geojson_features(levels[0], project.catalog.classes(), tiling.downsample)
        return write_geojson(dest, features)
    if suffix == ".ome.zarr":
        return _copy_zarr(labels_path(project, source), dest)
    return _write_ome_tiff(levels, slide_tiling(source).microns_per_pixel, dest)


def _copy_zarr(stored: Path, dest: Path) -> Path:
    if dest.exists():
        raise ProjectError(f"{dest}: already exists; remove it or choose another name")
    tmp = dest.with_name(f".{dest.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(stored, tmp)
    os.replace(tmp, dest)
    return dest


def _tiles(level: zarr.Array) -> Iterator[np.ndarray]:
    """The level's tiles in row-major order, padded to CHUNK × CHUNK (what tifffile writes)."""
    rows, cols = level.shape
    for r0 in range(0, rows, CHUNK):
        for c0 in range(0, cols, CHUNK):
            block = np.asarray(level[r0:r0 + CHUNK, c0:c0 + CHUNK])
            tile = np.zeros((CHUNK, CHUNK), block.dtype)
            tile[:block.shape[0], :block.shape[1]] = block
            yield tile


def _write_ome_tiff(levels: list[zarr.Array], microns: float | None, dest: Path) -> Path:
    tmp = dest.with_name(f".{dest.name}.partial")
    metadata = {"axes": "YX"}
    if microns:
        metadata.update(PhysicalSizeX=microns, PhysicalSizeY=microns)
    options = {"tile": (CHUNK, CHUNK), "compression": "zlib"}
    with tifffile.TiffWriter(tmp, bigtiff=True, ome=True) as tif:
        tif.write(_tiles(levels[0]), shape=levels[0].shape, dtype=levels[0].dtype,
                  subifds=len(levels) - 1, metadata=metadata, **options)
        for level in levels[1:]:
            tif.write(_tiles(level), shape=level.shape, dtype=level.dtype, subfiletype=1,
                      **options)
    os.replace(tmp, dest)
    return dest
