"""Tiles of a slide in the Review tab (real napari under Xvfb): each tile sits where it lies on
the slide, and the Slide button shows the whole slide with its stitched labels beneath."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_weaksam.project import Project
from napari_weaksam.project.importer import import_images
from napari_weaksam.widgets.item_view import SLIDE_META
from napari_weaksam.widgets.review import ReviewWidget
from napari_weaksam.widgets.session import session_for
from napari_weaksam.widgets.tagging import TaggingWidget

pytestmark = pytest.mark.gui

SVS = Path(__file__).resolve().parents[1] / "data" / "slides" / "CMU-1-Small-Region.svs"


@pytest.fixture
def slide_root(tmp_path):
    root = tmp_path / "slide"
    with Project.create(root) as project:
        import_images(project, [SVS])               # 512 px tiles at 0.499 µm/px
        project.catalog.add_class("tumour")
        for k, item in enumerate(project.catalog.items()[:3]):
            mask = np.zeros((item.height, item.width), np.uint8)
            mask[100:200, 100:300] = 1
            project.labels.add_proposal(item.id, mask, method="manual", confidence=0.5 + k / 10)
    return root


def test_tile_sits_on_the_slide_and_the_slide_button_shows_it_whole(make_napari_viewer, qtbot,
                                                                   slide_root):
    viewer = make_napari_viewer()
    dock = ReviewWidget(viewer, Project.open(slide_root))
    qtbot.addWidget(dock)
    try:
        entry = dock.queue.entries[0]
        dock.go_to(entry.item.id)
        tile = entry.item.tile
        image, proposal = dock.view.layer, viewer.layers["proposal"]
        np.testing.assert_allclose(image.scale, (0.499, 0.499))
        np.testing.assert_allclose(image.translate, (tile.y * 0.499, tile.x * 0.499))
        np.testing.assert_allclose(proposal.translate, image.translate)
        assert not dock.slide_button.isHidden()

        dock.show_slide()
        overview = [la for la in viewer.layers if la.metadata.get(SLIDE_META)]
        assert [la.name for la in overview] == [
            "CMU-1-Small-Region.svs (slide)", "CMU-1-Small-Region.svs (stitched labels)"]
        assert viewer.layers.index(overview[0]) == 0                 # the slide at the bottom
        assert viewer.layers.index(image) == 2                       # the tile right above
        labels = overview[1]
        assert labels.multiscale and labels.data[0].shape == (2967, 2220)
        stitched = np.asarray(labels.data[0][tile.y:tile.y + 512, tile.x:tile.x + 512])
        np.testing.assert_array_equal(stitched, proposal.data)
    finally:
        session_for(viewer).set_project(None)


def test_tag_tab_tags_a_region_of_tiles_and_a_negative_slide(make_napari_viewer, qtbot,
                                                             slide_root):
    viewer = make_napari_viewer()
    dock = TaggingWidget(viewer)
    qtbot.addWidget(dock)
    dock.open_project(slide_root)
    try:
        items = dock.nav.items
        places = {(i.tile.y, i.tile.x): i for i in items}
        first, neighbour = next((i, places[(i.tile.y, i.tile.x + 512)]) for i in items
                                if (i.tile.y, i.tile.x + 512) in places)
        dock.go_to(first.id)
        assert first.tile is not None and not dock.slide_box.isHidden()
        tumour = dock.nav.classes[0]
        dock.toggle_class(tumour)                      # this tile has a tumour
        dock.show_slide()
        assert viewer.layers[0].name == "CMU-1-Small-Region.svs (slide)"
        # a rectangle (µm) around the centres of the first tile and its right-hand neighbour
        y0, x0 = (first.tile.y + 200) * 0.499, (first.tile.x + 200) * 0.499
        y1, x1 = (first.tile.y + 300) * 0.499, (neighbour.tile.x + 300) * 0.499
        shapes = viewer.add_shapes([np.array([[y0, x0], [y0, x1], [y1, x1], [y1, x0]])],
                                   shape_type="rectangle")
        assert dock.tag_tiles_in_shapes(shapes) == 2
        with Project.open(slide_root, read_only=True) as project:
            tags = project.catalog.all_tags()
        assert tags == {first.id: {tumour.id}, neighbour.id: {tumour.id}}

        dock.tag_slide_negative()                      # refused: two tiles hold a class
        with Project.open(slide_root, read_only=True) as project:
            assert project.catalog.slide_tags(first.source_id) is None
    finally:
        session_for(viewer).set_project(None)
