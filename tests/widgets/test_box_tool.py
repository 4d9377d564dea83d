"""The SAM box tool in a real napari viewer: a box becomes a mask in the Labels layer."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest

from napari_weaksam.backbones.loaders import load_backbone
from napari_weaksam.sample import sample_dir
from napari_weaksam.widgets.box_tool import BOX_LAYER, BoxToolWidget, box_from_corners

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def backbone():
    return load_backbone("litemedsam")


@pytest.fixture
def tool(make_napari_viewer, qtbot, backbone, monkeypatch):
    monkeypatch.setenv("WEAKSAM_INLINE", "1")
    viewer = make_napari_viewer()
    name = "adenocarcinoma_GT2001849-1-400-004.png"
    image = iio.imread(sample_dir() / "images" / name)
    truth = iio.imread(sample_dir() / "masks" / name) > 0
    viewer.add_image(image, name="patch", rgb=True)
    labels = viewer.add_labels(np.zeros(image.shape[:2], np.uint8), name="mask")
    labels.selected_label = 2
    widget = BoxToolWidget(viewer, backbone_factory=lambda _model: backbone)
    qtbot.addWidget(widget)
    widget.image_combo.setCurrentText("patch")
    widget.labels_combo.setCurrentText("mask")
    return widget, labels, truth, image


def truth_box_corners(truth):
    ys, xs = np.nonzero(truth)
    y0, y1, x0, x1 = ys.min(), ys.max(), xs.min(), xs.max()
    return np.array([[y0, x0], [y0, x1], [y1, x1], [y1, x0]], dtype=float)


def test_box_from_corners_orders_xy():
    corners = np.array([[10, 40], [10, 90], [70, 90], [70, 40]])
    assert box_from_corners(corners).tolist() == [40, 10, 90, 70]


def test_drawn_box_paints_selected_label_then_undo_and_accept(tool, backbone):
    widget, labels, truth, image = tool
    shapes = widget.start()
    assert shapes.name == BOX_LAYER and shapes.mode == "add_rectangle"
    corners = truth_box_corners(truth)
    shapes.add_rectangles(corners)
    painted = labels.data == 2
    box = box_from_corners(corners)[None]
    expected = backbone.decode(backbone.encode_one(image), boxes=box).masks()[0, 0]
    assert painted.sum() > 1000
    np.testing.assert_array_equal(painted, expected)
    assert set(np.unique(labels.data)) <= {0, 2}
    widget.undo()
    assert not labels.data.any()
    shapes.add_rectangles(truth_box_corners(truth))
    assert (labels.data == 2).any()
    widget.accept()
    assert len(shapes.data) == 0 and (labels.data == 2).any()
    widget.undo()  # nothing left to undo after accepting
    assert (labels.data == 2).any()


def test_box_on_a_scaled_volume_paints_inside_the_box_on_its_plane(
        make_napari_viewer, qtbot, backbone, monkeypatch):
    from napari_weaksam.io import read_image

    monkeypatch.setenv("WEAKSAM_INLINE", "1")
    viewer = make_napari_viewer()
    volume = read_image(sample_dir() / "images" / "brain1.nii.gz")
    truth = read_image(sample_dir() / "masks" / "brain1.nii.gz").data > 0
    plane = int(np.argmax(truth.sum(axis=(1, 2))))
    viewer.add_image(volume.data, name="brain1", scale=volume.spacing)
    labels = viewer.add_labels(np.zeros(volume.data.shape, np.uint8), name="fix",
                               scale=volume.spacing)
    widget = BoxToolWidget(viewer, backbone_factory=lambda _model: backbone)
    qtbot.addWidget(widget)
    widget.image_combo.setCurrentText("brain1")
    widget.labels_combo.setCurrentText("fix")
    viewer.dims.set_point(0, plane * volume.spacing[0])
    shapes = widget.start()
    corners = truth_box_corners(truth[plane])
    shapes.add_rectangles(np.column_stack([np.full(4, plane), corners]))
    painted = labels.data == 1
    assert painted[plane].sum() > 100
    assert not np.delete(painted, plane, axis=0).any()  # only the current plane
    ys, xs = np.nonzero(painted[plane])
    (y0, x0), (y1, x1) = corners.min(axis=0), corners.max(axis=0)
    assert ys.min() >= y0 - 2 and ys.max() <= y1 + 2 and xs.min() >= x0 - 2 and xs.max() <= x1 + 2
    dice = 2 * (painted[plane] & truth[plane]).sum() / (painted[plane].sum() + truth[plane].sum())
    assert dice > 0.8, dice
