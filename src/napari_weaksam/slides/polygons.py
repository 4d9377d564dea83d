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
    chunks at a time. A chunk's polygon that touches no chunk border is final at once. The
    others are pieces of regions across chunks: pieces that touch (in the same band or the band
    above) are grouped, and a group is unioned once, when its last band has passed. Memory holds
    the open groups, never the whole slide, and no region is unioned twice."""
    rows, cols = level0.shape
    open_groups = {v: _Groups() for v in values}
    for band, r0 in enumerate(range(0, rows, CHUNK)):
        for c0 in range(0, cols, CHUNK):
            block = np.asarray(level0[r0:r0 + CHUNK, c0:c0 + CHUNK])
            if not block.any():
                continue
            inner = (r0 + 1, c0 + 1, r0 + block.shape[0] - 1, c0 + block.shape[1] - 1)
            for value in values:
                if not (block == value).any():
                    continue
                for polygon in _polygons_of(mask_polygons(block == value, r0, c0)):
                    if _inside(polygon, inner, rows, cols):
                        yield value, polygon
                    else:
                        open_groups[value].add(polygon, band)
        for value in values:
            yield from ((value, p) for p in open_groups[value].close_before(band))
    for value in values:
        yield from ((value, p) for p in open_groups[value].close_before(None))


class _Groups:
    """Pieces of regions that cross chunk borders, grouped by touching (union-find)."""

    def __init__(self) -> None:
        self.pieces: dict[int, Polygon] = {}
        self.band_of: dict[int, int] = {}
        self.parent: dict[int, int] = {}
        self._next = 0

    def _root(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def add(self, polygon: Polygon, band: int) -> None:
        index, self._next = self._next, self._next + 1
        self.pieces[index], self.band_of[index], self.parent[index] = polygon, band, index

    def close_before(self, band: int | None) -> list[Polygon]:
        """Join this band's pieces to those they touch (this band and the one above); union and
        hand back each group with no piece in ``band`` (None: every group)."""
        near = [i for i in self.pieces if band is not None and self.band_of[i] >= band - 1]
        fresh = [k for k, i in enumerate(near) if self.band_of[i] == band]
        if fresh:
            tree = shapely.STRtree([self.pieces[i] for i in near])
            query = np.array([self.pieces[near[k]] for k in fresh], dtype=object)
            pairs = tree.query(query, predicate="intersects")
            for a, b in zip(pairs[0].tolist(), pairs[1].tolist(), strict=True):
                self.parent[self._root(near[fresh[a]])] = self._root(near[b])
        groups: dict[int, list[int]] = {}
        for i in self.pieces:
            groups.setdefault(self._root(i), []).append(i)
        done = []
        for members in groups.values():
            if band is not None and max(self.band_of[i] for i in members) >= band:
                continue
            done += _polygons_of(shapely.union_all([self.pieces[i] for i in members]))
            for i in members:
                del self.pieces[i], self.band_of[i]
        self.parent = {i: self._root(i) for i in self.pieces}
        return done


def _inside(polygon: Polygon, inner: tuple[int, int, int, int], rows: int, cols: int) -> bool:
    """True when ``polygon`` touches no border its chunk shares with another chunk."""
    min_x, min_y, max_x, max_y = polygon.bounds
    top, left, bottom, right = inner
    return ((min_y >= top or top == 1) and (min_x >= left or left == 1)
            and (max_y <= bottom or bottom + 1 >= rows) and (max_x <= right or right + 1 >= cols))


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
