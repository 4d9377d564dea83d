"""Grid prompts cover the whole image uniformly."""

from __future__ import annotations

import numpy as np
import pytest

from napari_weaksam.refine import grid_boxes, grid_points


def test_points_are_cell_centres_on_square_image():
    points = grid_points(256, 256, grid=4)
    assert points.shape == (16, 2)
    assert set(np.unique(points[:, 0])) == {32.0, 96.0, 160.0, 224.0}
    assert set(np.unique(points[:, 1])) == {32.0, 96.0, 160.0, 224.0}
    # row-major: x varies fastest
    np.testing.assert_array_equal(points[:4, 1], 32.0)
    np.testing.assert_array_equal(points[:4, 0], [32, 96, 160, 224])


def test_points_on_non_square_image():
    points = grid_points(100, 300, grid=2)
    np.testing.assert_array_equal(points, [[75, 25], [225, 25], [75, 75], [225, 75]])


def test_box_centres_match_grid_when_not_clipped():
    boxes = grid_boxes(256, 256, grid=4, scales=0.25)
    assert boxes.shape == (16, 4)
    centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], 1)
    np.testing.assert_array_equal(centres, grid_points(256, 256, grid=4))
    np.testing.assert_array_equal(boxes[:, 2] - boxes[:, 0], 64.0)
    np.testing.assert_array_equal(boxes[:, 3] - boxes[:, 1], 64.0)


@pytest.mark.parametrize(("height", "width"), [(256, 256), (120, 333), (500, 64)])
def test_boxes_inside_image_and_spread_over_it(height, width):
    boxes = grid_boxes(height, width, grid=4, scales=(0.25, 0.5))
    assert boxes.shape == (32, 4)
    assert np.all(boxes[:, [0, 2]] >= 0) and np.all(boxes[:, [0, 2]] <= width)
    assert np.all(boxes[:, [1, 3]] >= 0) and np.all(boxes[:, [1, 3]] <= height)
    assert np.all(boxes[:, 2] > boxes[:, 0]) and np.all(boxes[:, 3] > boxes[:, 1])
    # spread symmetrically over the whole image, not packed into one corner
    np.testing.assert_allclose(boxes[:, 0].min(), width - boxes[:, 2].max())
    np.testing.assert_allclose(boxes[:, 1].min(), height - boxes[:, 3].max())
    centres_x = (boxes[:16, 0] + boxes[:16, 2]) / 2
    centres_y = (boxes[:16, 1] + boxes[:16, 3]) / 2
    np.testing.assert_allclose(np.unique(centres_x), (np.arange(4) + 0.5) * width / 4)
    np.testing.assert_allclose(np.unique(centres_y), (np.arange(4) + 0.5) * height / 4)


def test_box_side_follows_scale_and_shorter_side():
    boxes = grid_boxes(200, 400, grid=2, scales=(0.1, 0.2))
    sides = boxes[:, 2] - boxes[:, 0]
    np.testing.assert_allclose(sides, [20] * 4 + [40] * 4)
    np.testing.assert_allclose(boxes[:, 3] - boxes[:, 1], sides)


def test_edge_boxes_are_clipped():
    boxes = grid_boxes(256, 256, grid=4, scales=0.5)
    np.testing.assert_array_equal(boxes[0], [0, 0, 96, 96])
    np.testing.assert_array_equal(boxes[-1], [160, 160, 256, 256])


@pytest.mark.parametrize("kwargs", [{"grid": 0}, {"scales": ()}, {"scales": (0.5, -1)}])
def test_invalid_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        grid_boxes(64, 64, **kwargs)
