"""Slides imported as tile items: reader, level choice, grid, tissue, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from conftest import SVS, patch_mosaic, write_pyramid
from napari_weaksam.io import ImageReadError, read_image
from napari_weaksam.option_ranges import OptionError
from napari_weaksam.project.importer import import_images
from napari_weaksam.slides.settings import TilingSettings
from napari_weaksam.slides.tiling import choose_level, grid_starts, plan_tiling


def test_svs_reads_lazily_with_its_pixel_size():
    image = read_image(SVS)
    assert image.format == "slide" and image.axes == "YXC"
    assert image.shape == (2967, 2220, 3)
    assert image.microns_per_pixel == pytest.approx(0.499)
    assert not isinstance(image.data, np.ndarray)   # a zarr array: nothing decoded yet
    with tifffile.TiffFile(SVS) as tif:
        expected = tif.pages[0].asarray()[1000:1010, 500:520]
    assert np.array_equal(np.asarray(image.data[1000:1010, 500:520]), expected)


def test_svs_imports_as_tissue_tiles_of_its_pixels(slide_project):
    report = import_images(slide_project, [SVS])
    assert report.skipped == []
    source = slide_project.catalog.sources()[0]
    assert source.is_slide and source.tiling["level"] == 0
    items = slide_project.catalog.items()
    grid = len(grid_starts(2967, 512, 512)) * len(grid_starts(2220, 512, 512))
    assert 0 < len(items) < grid              # background tiles were left out
    tile = items[0]
    with tifffile.TiffFile(SVS) as tif:
        page = tif.pages[0].asarray()
    t = tile.tile
    expected = page[t.y:t.y + tile.height, t.x:t.x + tile.width]
    assert np.array_equal(slide_project.item_image(tile), expected)
    assert all(i.name.startswith("CMU-1-Small-Region x") for i in items)


def test_level_nearest_the_pixel_size_is_chosen(mosaic_slide):
    image = read_image(mosaic_slide, lazy=True)       # 0.5 µm/px, levels ×1, ×2, ×4
    assert choose_level(image, TilingSettings(microns_per_pixel=1.0)) == 1
    assert choose_level(image, TilingSettings(microns_per_pixel=0.4)) == 0
    assert choose_level(image, TilingSettings(microns_per_pixel=50)) == 2
    assert choose_level(image, TilingSettings(level=2, microns_per_pixel=0.4)) == 2
    with pytest.raises(ImageReadError, match="level 5 does not exist"):
        choose_level(image, TilingSettings(level=5))
    tiling = plan_tiling(image, TilingSettings())
    assert tiling.level == 1 and tiling.microns_per_pixel == pytest.approx(1.0)
    assert tiling.downsample == (2.0, 2.0)


def test_grid_covers_the_level_with_short_edge_tiles():
    assert grid_starts(1000, 512, 512) == [0, 512]
    assert grid_starts(1000, 512, 448) == [0, 448, 896]     # overlap 64
    assert grid_starts(100, 512, 512) == [0]


def test_tiles_hold_tissue_and_read_their_level(slide_project, mosaic_slide):
    import_images(slide_project, [mosaic_slide],
                  tiling=TilingSettings(tile_size=224, level=0))
    items = slide_project.catalog.items()
    assert {(i.tile.y, i.tile.x) for i in items} == {
        (r * 224, c * 224) for r in range(3) for c in range(3)}   # the 3 × 3 patches only
    image = patch_mosaic()
    for item in items[:3]:
        t = item.tile
        assert np.array_equal(slide_project.item_image(item),
                              image[t.y:t.y + 224, t.x:t.x + 224])


def test_tiles_from_a_coarser_level_are_named_by_level0_position(slide_project, mosaic_slide):
    import_images(slide_project, [mosaic_slide],
                  tiling=TilingSettings(tile_size=112, level=1, min_tissue=0))
    items = slide_project.catalog.items()
    assert len(items) == 6 * 8                     # 672 × 896 at level 1, 112 px tiles
    last = items[-1]
    assert (last.tile.level, last.tile.y, last.tile.x) == (1, 560, 784)
    assert last.name.endswith("x1568 y1120")
    expected = patch_mosaic()[::2, ::2][560:672, 784:896]
    assert np.array_equal(slide_project.item_image(last), expected)


def test_glass_only_slide_is_refused_and_nothing_imported(slide_project, tmp_path):
    glass = write_pyramid(tmp_path / "glass.ome.tif", patch_mosaic(filled=0))
    report = import_images(slide_project, [glass], tiling=TilingSettings(tile_size=224))
    assert slide_project.catalog.sources() == []
    assert "no tile holds 25% tissue" in report.skipped[0][1]


def test_tile_larger_than_the_slide_is_refused(slide_project, mosaic_slide):
    report = import_images(slide_project, [mosaic_slide],
                           tiling=TilingSettings(tile_size=4096, level=2))
    assert "larger than the slide" in report.skipped[0][1]
    assert slide_project.catalog.count_items() == 0


def test_overlap_must_be_smaller_than_the_tile():
    with pytest.raises(OptionError, match="overlap = 512 must be smaller"):
        TilingSettings(tile_size=512, overlap=512)


def test_unsupported_and_truncated_slides_name_the_file(slide_project, tmp_path):
    mrxs = tmp_path / "slide.mrxs"
    mrxs.write_bytes(b"not a slide")
    truncated = tmp_path / "cut.svs"
    truncated.write_bytes(SVS.read_bytes()[:1_000_000])
    report = import_images(slide_project, [mrxs, truncated])
    reasons = dict(report.skipped)
    assert "unsupported file type" in reasons[str(mrxs)]
    assert reasons[str(truncated)].startswith("cut.svs:")
    assert slide_project.catalog.sources() == []


def test_napari_reader_opens_slides_lazily_at_their_pixel_size(mosaic_slide):
    from napari_weaksam.io import get_reader

    (data, kwargs, kind), = get_reader(str(SVS))(str(SVS))
    assert kind == "image" and kwargs["rgb"] and kwargs["scale"] == (0.499, 0.499)
    (levels, kwargs, _), = get_reader(str(mosaic_slide))(str(mosaic_slide))
    assert kwargs["multiscale"] and [lv.shape[:2] for lv in levels] == [
        (1344, 1792), (672, 896), (336, 448)]
    assert not any(isinstance(lv, np.ndarray) for lv in levels)   # nothing decoded yet
