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
