"""A large pyramidal OME-TIFF slide made of real tissue, written a tile at a time.

The slide is glass (a grey-white with a fixed JPEG-like noise) with a few elliptical tissue
regions; a tissue region is paved with the bundled H&E patches (224 px cells, a patch chosen per
cell). Each pyramid level is made directly at its resolution (level k samples every 2^k-th
level-0 pixel), so no level is ever held in memory: only one 512 × 512 tile at a time.

    python benchmarks/synthetic_slide.py OUT.ome.tif --side 100000
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

PATCHES = Path(__file__).resolve().parents[1] / "src" / "napari_weaksam" / "sample_data" / "images"
CELL = 224
TILE = 512
GLASS = 242


def _patches() -> np.ndarray:
    return np.stack([np.asarray(Image.open(p).convert("RGB"))
                     for p in sorted(PATCHES.glob("*.png"))])


def tissue_cells(side: int, seed: int = 0, regions: int = 5,
                 coverage: float = 0.12) -> np.ndarray:
    """Per 224-px cell, -1 for glass or the index of the patch it shows."""
    cells = math.ceil(side / CELL)
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:cells, 0:cells] + 0.5
    tissue = np.zeros((cells, cells), bool)
    radius = cells * math.sqrt(coverage / (math.pi * regions))
    for _ in range(regions):
        cy, cx = rng.uniform(radius, cells - radius, 2)
        ry, rx = radius * rng.uniform(0.7, 1.4, 2)
        tissue |= ((rows - cy) / ry) ** 2 + ((cols - cx) / rx) ** 2 <= 1
    choice = rng.integers(0, len(list(PATCHES.glob("*.png"))), (cells, cells))
    return np.where(tissue, choice, -1)


def level_tiles(side: int, downsample: int, cells: np.ndarray, patches: np.ndarray,
                glass: np.ndarray) -> Iterator[np.ndarray]:
    """The level's 512 px tiles in row-major order (edge tiles padded, as tifffile expects)."""
    length = math.ceil(side / downsample)
    for y0 in range(0, length, TILE):
        ys = np.minimum((y0 + np.arange(TILE)) * downsample, side - 1)
        cell_r, off_r = ys // CELL, ys % CELL
        for x0 in range(0, length, TILE):
            xs = np.minimum((x0 + np.arange(TILE)) * downsample, side - 1)
            cell_c, off_c = xs // CELL, xs % CELL
            chosen = cells[np.ix_(cell_r, cell_c)]
            if (chosen < 0).all():
                yield glass
                continue
            tile = patches[np.maximum(chosen, 0), off_r[:, None], off_c[None, :]]
            tile[chosen < 0] = glass[chosen < 0]
            yield tile


def write_slide(path: Path, side: int = 100_000, microns: float = 0.25, seed: int = 0) -> Path:
    """Write the slide (levels down to about 1000 px on a side) and return its path."""
    cells, patches = tissue_cells(side, seed), _patches()
    rng = np.random.default_rng(seed)
    glass = rng.integers(GLASS - 3, GLASS + 4, (TILE, TILE, 3)).astype(np.uint8)
    n_levels = max(1, int(math.log2(side / 1000)) + 1)
    options = {"tile": (TILE, TILE), "photometric": "rgb", "compression": "jpeg",
               "compressionargs": {"level": 85}}
    tmp = path.with_name(f".{path.name}.partial")
    with tifffile.TiffWriter(tmp, bigtiff=True, ome=True) as tif:
        for level in range(n_levels):
            length = math.ceil(side / 2 ** level)
            extra = ({"subifds": n_levels - 1, "metadata": {
                "axes": "YXS", "PhysicalSizeX": microns, "PhysicalSizeY": microns}}
                if level == 0 else {"subfiletype": 1})
            tif.write(level_tiles(side, 2 ** level, cells, patches, glass),
                      shape=(length, length, 3), dtype=np.uint8, **options, **extra)
    tmp.replace(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--side", type=int, default=100_000)
    args = parser.parse_args()
    start = time.perf_counter()
    write_slide(args.out, args.side)
    size = args.out.stat().st_size / 1024**2
    print(f"{args.out}: {args.side} × {args.side} px, {size:.0f} MB, "
          f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
