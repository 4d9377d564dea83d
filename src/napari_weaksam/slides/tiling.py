"""Cut a slide into tile items: the level, the grid and the tiles that hold tissue.

A tile is read from one pyramid level (the level nearest the requested µm per pixel, 1 µm/px
≈ a 10× objective, or a level the person names), on a regular grid with an optional overlap;
tiles at the right and bottom edges are cut short rather than padded. A tile is kept when at
least ``min_tissue`` of it is tissue (:mod:`.tissue`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from ..io import ImageData, ImageReadError
from ..project.catalog import NewItem, TilePlace
from .settings import TilingSettings
from .tissue import detect_tissue


@dataclass(frozen=True)
class Tiling:
    """The grid a slide was cut with (stored with the slide, read by stitching)."""

    level: int
    tile_size: int
    overlap: int
    level_shape: tuple[int, int]         # rows, columns of the tiled level
    downsample: tuple[float, float]      # level-0 pixels per tiled-level pixel (rows, columns)
    microns_per_pixel: float | None      # of the tiled level, when the file states it
    min_tissue: float

    @property
    def stride(self) -> int:
        return self.tile_size - self.overlap

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Tiling:
        return cls(**{**data, "level_shape": tuple(data["level_shape"]),
                      "downsample": tuple(data["downsample"])})


def slide_levels(image: ImageData) -> list[Any]:
    """Level 0 and the lower-resolution levels of an image (just level 0 when it has none)."""
    return list(image.levels) if image.levels else [image.data]


def choose_level(image: ImageData, settings: TilingSettings) -> int:
    """The level named in ``settings``, or the one nearest its µm per pixel (level 0 when the
    file does not state a pixel size)."""
    levels = slide_levels(image)
    if settings.level >= 0:
        if settings.level >= len(levels):
            raise ImageReadError(f"{image.path.name}: has {len(levels)} pyramid levels "
                                 f"(0..{len(levels) - 1}); level {settings.level} does not exist")
        return settings.level
    if image.microns_per_pixel is None:
        return 0
    full_rows = levels[0].shape[0]
    return min(range(len(levels)), key=lambda i: abs(math.log(
        image.microns_per_pixel * full_rows / levels[i].shape[0] / settings.microns_per_pixel)))


def grid_starts(length: int, tile_size: int, stride: int) -> list[int]:
    """Tile starts along one axis: every ``stride`` pixels while a tile still adds pixels."""
    overlap = tile_size - stride
    return list(range(0, max(length - overlap, 1), stride))


def plan_tiling(image: ImageData, settings: TilingSettings) -> Tiling:
    """The grid for ``image``; refuses a tile bigger than the level it is cut from."""
    levels = slide_levels(image)
    level = choose_level(image, settings)
    rows, cols = (int(s) for s in levels[level].shape[:2])
    if settings.tile_size > rows and settings.tile_size > cols:
        raise ImageReadError(
            f"{image.path.name}: a tile of {settings.tile_size} px is larger than the slide at "
            f"level {level} ({cols} × {rows} px); choose a smaller tile size or a finer level")
    full_rows, full_cols = (int(s) for s in levels[0].shape[:2])
    downsample = (full_rows / rows, full_cols / cols)
    microns = image.microns_per_pixel * downsample[1] if image.microns_per_pixel else None
    return Tiling(level, settings.tile_size, settings.overlap, (rows, cols), downsample,
                  microns, settings.min_tissue)


def tile_items(image: ImageData, tiling: Tiling, stem: str, channels: int) -> list[NewItem]:
    """One item per grid tile that holds enough tissue, named by its level-0 position."""
    tissue = detect_tissue(slide_levels(image)) if tiling.min_tissue > 0 else None
    rows, cols = tiling.level_shape
    dy, dx = tiling.downsample
    items = []
    for y in grid_starts(rows, tiling.tile_size, tiling.stride):
        for x in grid_starts(cols, tiling.tile_size, tiling.stride):
            h, w = min(tiling.tile_size, rows - y), min(tiling.tile_size, cols - x)
            x0, y0 = round(x * dx), round(y * dy)
            if tissue is not None and tissue.fraction(x0, y0, (x + w) * dx,
                                                      (y + h) * dy) < tiling.min_tissue:
                continue
            items.append(NewItem(f"{stem} x{x0} y{y0}", h, w, channels,
                                 tile=TilePlace(tiling.level, x, y)))
    if not items:
        raise ImageReadError(
            f"{image.path.name}: no tile holds {tiling.min_tissue:.0%} tissue, so nothing was "
            "imported; lower the minimum tissue share (0 keeps every tile) if the slide has "
            "tissue")
    return items
