"""Tiles under shapes a person drew on a slide (shapely): a tile is in a region when its centre
lies inside one of the shapes, so a region's border never splits a tile's answer."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely

from ..project import Item, Source
from .stitching import slide_tiling


def tiles_in_shapes(items: Sequence[Item], source: Source,
                    shapes_um: Sequence[np.ndarray]) -> list[Item]:
    """The tiles of ``source`` whose centre lies in any of ``shapes_um`` (each an (N, 2) array
    of (y, x) vertices in the slide's physical units, as napari's world coordinates)."""
    tiling = slide_tiling(source)
    spacing_y, spacing_x = source.spacing[:2]
    polygons = [shapely.Polygon([(x / spacing_x, y / spacing_y) for y, x in shape[:, -2:]])
                for shape in shapes_um if len(shape) >= 3]
    if not polygons:
        return []
    region = shapely.make_valid(shapely.union_all(polygons))
    dy, dx = tiling.downsample
    found = []
    for item in items:
        if item.tile is None or item.source_id != source.id:
            continue
        centre = shapely.Point((item.tile.x + item.width / 2) * dx,
                               (item.tile.y + item.height / 2) * dy)
        if region.contains(centre):
            found.append(item)
    return found
