"""Slides for the slide tests: the committed CMU-1 SVS region, and pyramids built from the
bundled H&E patches (real tissue on white glass) with tifffile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_weaksam.project import Project

SVS = Path(__file__).resolve().parents[1] / "data" / "slides" / "CMU-1-Small-Region.svs"
PATCHES = Path(__file__).resolve().parents[2] / "src" / "napari_weaksam" / "sample_data" / "images"
GLASS = 242   # the grey-white of empty glass in a scan


def patch_mosaic(rows: int = 6, cols: int = 8, filled: int = 3) -> np.ndarray:
    """Glass of ``rows`` × ``cols`` cells of 224 px, the top-left ``filled`` × ``filled`` cells
    holding the bundled H&E patches (JPEG-like noise on the glass)."""
    patches = [np.asarray(Image.open(p).convert("RGB"))
               for p in sorted(PATCHES.glob("*.png"))]
    rng = np.random.default_rng(0)
    mosaic = rng.integers(GLASS - 3, GLASS + 4, (rows * 224, cols * 224, 3)).astype(np.uint8)
    for k in range(filled * filled):
        r, c = divmod(k, filled)
        mosaic[r * 224:(r + 1) * 224, c * 224:(c + 1) * 224] = patches[k % len(patches)]
    return mosaic


def write_pyramid(path: Path, image: np.ndarray, microns: float = 0.5, levels: int = 3) -> Path:
    """A tiled pyramidal OME-TIFF (each level half the last, in sub-IFDs)."""
    with tifffile.TiffWriter(path, ome=True) as tif:
        tif.write(image, tile=(256, 256), subifds=levels - 1, photometric="rgb",
                  metadata={"axes": "YXS", "PhysicalSizeX": microns, "PhysicalSizeY": microns})
        level = image
        for _ in range(levels - 1):
            level = level[::2, ::2]
            tif.write(level, tile=(256, 256), subfiletype=1, photometric="rgb")
    return path


@pytest.fixture
def mosaic_slide(tmp_path) -> Path:
    """A 1344 × 1792 px, 0.5 µm/px pyramid (3 levels) with tissue in its top-left corner."""
    return write_pyramid(tmp_path / "mosaic.ome.tif", patch_mosaic())


@pytest.fixture
def slide_project(tmp_path):
    """A new empty project (closed at the end)."""
    project = Project.create(tmp_path / "project")
    yield project
    project.close()
