"""A stitched slide label as polygons (shapely), written as GeoJSON that QuPath opens.

Each stored chunk's pixels of a class become row runs (exact pixel edges), unioned into polygons
per chunk; the chunks' polygons are then unioned per class, so a region that crosses chunk
borders is one polygon. Coordinates are level-0 slide pixels (x right, y down), as QuPath and
other slide viewers expect.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import shapely
import zarr
from shapely import affinity
from shapely.geometry import MultiPolygon, Polygon, mapping

from ..project import ImageClass
from .stitching import CHUNK


def _runs(mask: np.ndarray) -> Iterator[tuple[int, int, int]]:
    """(row, first column, end column) of every run of True in each row."""
    padded = np.pad(mask, ((0, 0), (1, 1)))
    edges = np.diff(padded.astype(np.int8), axis=1)
    rows, starts = np.nonzero(edges == 1)
    _, ends = np.nonzero(edges == -1)
    yield from zip(rows.tolist(), starts.tolist(), ends.tolist(), strict=True)


def mask_polygons(mask: np.ndarray, row0: int = 0, col0: int = 0) -> shapely.Geometry:
    """The union of a mask's pixels as polygons, offset by (``row0``, ``col0``)."""
    boxes = [shapely.box(col0 + c0, row0 + r, col0 + c1, row0 + r + 1) for r, c0, c1 in
             _runs(mask)]
    return shapely.union_all(boxes) if boxes else Polygon()


def class_polygons(level0: zarr.Array, values: list[int]) -> dict[int, shapely.Geometry]:
    """Per label value, the union of its pixels over the whole array, read a chunk at a time."""
    parts: dict[int, list[shapely.Geometry]] = {v: [] for v in values}
    rows, cols = level0.shape
    for r0 in range(0, rows, CHUNK):
        for c0 in range(0, cols, CHUNK):
            block = np.asarray(level0[r0:r0 + CHUNK, c0:c0 + CHUNK])
            if not block.any():
                continue
            for value in values:
                if (block == value).any():
                    parts[value].append(mask_polygons(block == value, r0, c0))
    return {v: shapely.union_all(p) for v, p in parts.items() if p}


def _polygons_of(geometry: shapely.Geometry) -> list[Polygon]:
    if isinstance(geometry, Polygon):
        return [geometry] if not geometry.is_empty else []
    if isinstance(geometry, MultiPolygon):
        return list(geometry.geoms)
    return [g for g in getattr(geometry, "geoms", []) if isinstance(g, Polygon)]


def _rgb(color: str) -> list[int]:
    color = color.lstrip("#")
    return [int(color[i:i + 2], 16) for i in (0, 2, 4)]


def geojson_features(level0: zarr.Array, classes: list[ImageClass],
                     downsample: tuple[float, float]) -> list[dict]:
    """One GeoJSON feature per polygon, classified as QuPath reads it."""
    by_value = class_polygons(level0, [c.label_value for c in classes])
    features = []
    for image_class in classes:
        geometry = by_value.get(image_class.label_value)
        if geometry is None:
            continue
        scaled = affinity.scale(geometry, xfact=downsample[1], yfact=downsample[0],
                                origin=(0, 0))
        for polygon in _polygons_of(scaled.simplify(0)):
            features.append({
                "type": "Feature",
                "geometry": mapping(polygon),
                "properties": {"objectType": "annotation", "classification": {
                    "name": image_class.name, "color": _rgb(image_class.color)}},
            })
    return features


def write_geojson(path: Path, features: list[dict]) -> Path:
    """A FeatureCollection, written to a temporary name and renamed into place."""
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps({"type": "FeatureCollection", "features": features}),
                   encoding="utf-8")
    os.replace(tmp, path)
    return path
