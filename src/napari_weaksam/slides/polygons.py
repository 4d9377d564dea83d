"""A stitched slide label as polygons (shapely), written as GeoJSON that QuPath opens.

Each stored chunk's pixels of a class become rectangles (row runs, merged down while they repeat:
exact pixel edges), unioned into polygons per chunk; the chunks' polygons are merged band by band
(:func:`class_polygons`), so a region that crosses chunk borders is one polygon and memory holds
one band at a time. Coordinates are level-0 slide pixels (x right, y down), as QuPath and
other slide viewers expect.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import shapely
import zarr
from shapely import affinity
from shapely.geometry import MultiPolygon, Polygon, mapping

from ..project import ImageClass
from .stitching import CHUNK


def _rectangles(mask: np.ndarray) -> Iterator[tuple[int, int, int, int]]:
    """(first row, end row, first column, end column) of rectangles covering the mask: each
    row's runs of True, a run merged downwards while the next row repeats it exactly."""
    padded = np.pad(mask, ((0, 0), (1, 1))).astype(np.int8)
    edges = np.diff(padded, axis=1)
    open_runs: dict[tuple[int, int], int] = {}
    for row in range(mask.shape[0]):
        starts = np.flatnonzero(edges[row] == 1)
        ends = np.flatnonzero(edges[row] == -1)
        runs = set(zip(starts.tolist(), ends.tolist(), strict=True))
        for run in [r for r in open_runs if r not in runs]:
            yield open_runs.pop(run), row, run[0], run[1]
        for run in runs:
            open_runs.setdefault(run, row)
    for run, first in open_runs.items():
        yield first, mask.shape[0], run[0], run[1]


def mask_polygons(mask: np.ndarray, row0: int = 0, col0: int = 0) -> shapely.Geometry:
    """The union of a mask's pixels as polygons, offset by (``row0``, ``col0``)."""
    boxes = [shapely.box(col0 + c0, row0 + r0, col0 + c1, row0 + r1)
             for r0, r1, c0, c1 in _rectangles(mask)]
    return shapely.union_all(boxes) if boxes else Polygon()


def class_polygons(level0: zarr.Array,
                   values: list[int]) -> Iterator[tuple[int, Polygon]]:
    """``(label value, polygon)`` for every connected region of each value, read one band of
    chunks at a time: a band's polygons are merged with those of the band above that reached
    its edge, and a polygon that does not reach the next band is final and given out at once,
    so memory holds one band and the regions crossing it, never the whole slide."""
    rows, cols = level0.shape
    carry: dict[int, list[Polygon]] = {v: [] for v in values}
    for r0 in range(0, rows, CHUNK):
        parts: dict[int, list[shapely.Geometry]] = {v: [] for v in values}
        for c0 in range(0, cols, CHUNK):
            block = np.asarray(level0[r0:r0 + CHUNK, c0:c0 + CHUNK])
            if not block.any():
                continue
            for value in values:
                if (block == value).any():
                    parts[value].append(mask_polygons(block == value, r0, c0))
        bottom = r0 + CHUNK
        for value in values:
            if not parts[value] and not carry[value]:
                continue
            merged = _polygons_of(shapely.union_all(carry[value] + parts[value]))
            reaches_next_band = [bottom < rows and p.bounds[3] >= bottom for p in merged]
            carry[value] = [p for p, on in zip(merged, reaches_next_band, strict=True) if on]
            yield from ((value, p) for p, on in zip(merged, reaches_next_band, strict=True)
                        if not on)
    for value in values:
        yield from ((value, p) for p in carry[value])


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
                     downsample: tuple[float, float]) -> Iterator[dict]:
    """One GeoJSON feature per polygon, classified as QuPath reads it, one at a time."""
    by_value = {c.label_value: c for c in classes}
    for value, polygon in class_polygons(level0, list(by_value)):
        image_class = by_value[value]
        scaled = affinity.scale(polygon.simplify(0), xfact=downsample[1], yfact=downsample[0],
                                origin=(0, 0))
        yield {
            "type": "Feature",
            "geometry": mapping(scaled),
            "properties": {"objectType": "annotation", "classification": {
                "name": image_class.name, "color": _rgb(image_class.color)}},
        }


def write_geojson(path: Path, features: Iterable[dict]) -> Path:
    """A FeatureCollection, written feature by feature to a temporary name, renamed into place;
    returns the path."""
    tmp = path.with_name(f".{path.name}.partial")
    with tmp.open("w", encoding="utf-8") as out:
        out.write('{"type": "FeatureCollection", "features": [')
        for n, feature in enumerate(features):
            out.write((",\n" if n else "\n") + json.dumps(feature))
        out.write("\n]}\n")
    os.replace(tmp, path)
    return path
