"""Whole-slide tags, stitched label pyramids and their exports (OME-Zarr, OME-TIFF, GeoJSON)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr

from napari_weaksam.io import read_image
from napari_weaksam.project import LabelState, ProjectError
from napari_weaksam.project.importer import import_images
from napari_weaksam.slides.export import export_slide_labels
from napari_weaksam.slides.settings import TilingSettings
from napari_weaksam.slides.stitching import center_weight, open_labels, stitch_slide


@pytest.fixture
def tiled(slide_project, mosaic_slide):
    """The mosaic cut into 224 px tiles at level 1 (2× coarser), every tile kept, one class."""
    import_images(slide_project, [mosaic_slide],
                  tiling=TilingSettings(tile_size=224, level=1, min_tissue=0))
    slide_project.catalog.add_class("tumour")
    return slide_project, slide_project.catalog.sources()[0]


def _square(item, value=1, at=(50, 150)):
    mask = np.zeros((item.height, item.width), np.uint8)
    mask[at[0]:at[1], at[0]:at[1]] = value
    return mask


def test_negative_slide_tags_every_tile(tiled):
    project, source = tiled
    assert project.catalog.slide_tags(source.id) is None
    count = project.catalog.tag_slide(source.id, set())
    assert count == project.catalog.count_items()
    assert all(v == set() for v in project.catalog.all_tags().values())
    assert project.catalog.slide_tags(source.id) == set()


def test_negative_slide_refused_while_a_tile_is_positive(tiled):
    project, source = tiled
    tumour = project.catalog.class_by_name("tumour")
    first = project.catalog.items()[0]
    project.catalog.set_tags(first.id, {tumour.id})
    with pytest.raises(ProjectError, match="1 of its tiles are tagged with a class"):
        project.catalog.tag_slide(source.id, set())
    assert project.catalog.slide_tags(source.id) is None


def test_positive_slide_leaves_its_tiles_unknown(tiled):
    project, source = tiled
    tumour = project.catalog.class_by_name("tumour")
    project.catalog.tag_slide(source.id, {tumour.id})
    assert project.catalog.slide_tags(source.id) == {tumour.id}
    assert project.catalog.all_tags() == {}


def test_stitched_pyramid_places_each_tile_label(tiled):
    project, source = tiled
    items = project.catalog.items()
    a, b = items[0], items[5]
    project.labels.add_proposal(a.id, _square(a), method="test")
    project.labels.add_proposal(b.id, _square(b), method="test")
    report = stitch_slide(project, source)
    assert (report.proposed, report.reviewed) == (2, 0)
    levels = open_labels(project, source)
    assert [lv.shape for lv in levels] == [(672, 896), (336, 448)]
    full = np.asarray(levels[0])
    expected = np.zeros((672, 896), np.uint8)
    for item in (a, b):
        t = item.tile
        expected[t.y:t.y + item.height, t.x:t.x + item.width] = _square(item)
    assert np.array_equal(full, expected)
    assert np.array_equal(np.asarray(levels[1]), expected[::2, ::2])
    meta = zarr.open_group(str(report.path), mode="r").attrs["ome"]["multiscales"][0]
    assert meta["datasets"][1]["coordinateTransformations"][0]["scale"] == [2.0, 2.0]  # µm


def test_reviewed_mask_wins_and_rejected_tiles_give_nothing(tiled):
    project, source = tiled
    a, b = project.catalog.items()[:2]
    pa = project.labels.add_proposal(a.id, _square(a), method="test")
    pb = project.labels.add_proposal(b.id, _square(b), method="test")
    project.labels.review(a.id, LabelState.CORRECTED, _square(a, at=(0, 20)), proposal_id=pa.id)
    project.labels.review(b.id, LabelState.REJECTED, proposal_id=pb.id)
    report = stitch_slide(project, source)
    assert (report.reviewed, report.proposed) == (1, 0)
    full = np.asarray(open_labels(project, source)[0])
    assert full[:20, :20].all() and full.sum() == 400


def test_overlapping_tiles_vote_by_distance_from_their_border(slide_project, mosaic_slide):
    import_images(slide_project, [mosaic_slide],
                  tiling=TilingSettings(tile_size=224, level=1, overlap=64, min_tissue=0))
    slide_project.catalog.add_class("tumour")
    source = slide_project.catalog.sources()[0]
    by_place = {(i.tile.y, i.tile.x): i for i in slide_project.catalog.items()}
    left, right = by_place[(0, 0)], by_place[(0, 160)]        # share columns 160..223
    slide_project.labels.add_proposal(left.id, np.ones((224, 224), np.uint8), method="test")
    slide_project.labels.add_proposal(right.id, np.zeros((224, 224), np.uint8), method="test")
    stitch_slide(slide_project, source)
    row = np.asarray(open_labels(slide_project, source)[0])[112]
    assert row[:160].all() and not row[224:].any()
    # in the shared band the tile the pixel is more central in decides: left up to the middle
    assert row[160:192].all() and not row[192:224].any()


def test_center_weight_rises_from_the_border():
    weight = center_weight(5, 4)
    assert weight[0].tolist() == [1, 1, 1, 1] and weight[2].tolist() == [1, 2, 2, 1]


def test_stitch_needs_a_slide_and_export_needs_a_stitch(tiled, tmp_path):
    project, source = tiled
    with pytest.raises(ProjectError, match="not stitched yet"):
        export_slide_labels(project, source, tmp_path / "out.geojson")
    with pytest.raises(ProjectError, match="choose one of these suffixes"):
        stitch_slide(project, source)
        export_slide_labels(project, source, tmp_path / "out.png")


def test_exports_round_trip(tiled, tmp_path):
    project, source = tiled
    item = project.catalog.items()[4]          # level-1 tile at row 224, column 0
    project.labels.add_proposal(item.id, _square(item), method="test")
    stitch_slide(project, source)
    stored = np.asarray(open_labels(project, source)[0])

    tiff = read_image(export_slide_labels(project, source, tmp_path / "l.ome.tif"), lazy=True)
    assert np.array_equal(np.asarray(tiff.data), stored) and len(tiff.levels) == 2
    assert tiff.microns_per_pixel == pytest.approx(1.0)
    omezarr = read_image(export_slide_labels(project, source, tmp_path / "l.ome.zarr"))
    assert np.array_equal(np.asarray(omezarr.data), stored)

    geo = json.loads(export_slide_labels(project, source, tmp_path / "l.geojson").read_text())
    (feature,) = geo["features"]
    assert feature["properties"]["classification"]["name"] == "tumour"
    xs, ys = zip(*feature["geometry"]["coordinates"][0], strict=True)
    # level-1 square rows 274..374, columns 50..150 -> level-0 pixels (×2)
    assert (min(xs), max(xs), min(ys), max(ys)) == (100, 300, 548, 748)


def test_export_refuses_the_project_folder(tiled):
    project, source = tiled
    stitch_slide(project, source)
    with pytest.raises(ProjectError, match="inside the project folder"):
        export_slide_labels(project, source, project.root / "labels.geojson")


def test_mask_export_writes_one_file_per_tile(tiled, tmp_path):
    from napari_weaksam.export import export_masks

    project, _source = tiled
    a, b = project.catalog.items()[:2]
    project.labels.add_proposal(a.id, _square(a), method="test")
    project.labels.add_proposal(b.id, _square(b, at=(0, 10)), method="test")
    export_masks(project, tmp_path / "out", include_proposals=True)
    for item, expected in ((a, _square(a)), (b, _square(b, at=(0, 10)))):
        written = read_image(tmp_path / "out" / f"{item.name}.tif").data
        assert np.array_equal(np.asarray(written), expected)
