"""How a slide is cut into tile items (no heavy imports: the CLI builds its flags from it)."""

from __future__ import annotations

from dataclasses import dataclass

from ..option_ranges import OptionError, check_options, option


@dataclass
class TilingSettings:
    """How a slide is cut into tile items."""

    tile_size: int = option(512, low=64, high=4096,
                            help="tile side in pixels, at the level the tiles are cut from")
    microns_per_pixel: float = option(
        1.0, low=0.01, high=1000, flag="tile-microns",
        help="cut tiles from the pyramid level nearest this pixel size (1 µm/px ≈ 10×)")
    level: int = option(-1, low=-1, high=64, flag="tile-level",
                        help="pyramid level to cut tiles from (-1: the level nearest tile-microns)")
    overlap: int = option(0, low=0, high=2048, flag="tile-overlap",
                          help="pixels a tile shares with each neighbour")
    min_tissue: float = option(
        0.25, low=0.0, high=1.0,
        help="keep a tile when at least this share of it is tissue (0 keeps every tile)")

    def __post_init__(self) -> None:
        check_options(self)
        if self.overlap >= self.tile_size:
            raise OptionError(f"overlap = {self.overlap} must be smaller than tile_size = "
                              f"{self.tile_size}")
