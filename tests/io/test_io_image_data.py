from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pytest

from napari_weaksam.io import ImageData


def _image(data, axes, spacing=(1.0, 1.0)) -> ImageData:
    return ImageData(Path("x.tif"), data, axes, spacing, "tiff")


def test_volume_properties_and_lazy_slice():
    data = da.from_array(np.arange(2 * 3 * 4).reshape(2, 3, 4), chunks=1)
    image = _image(data, "ZYX", (1.0, 1.0, 1.0))
    assert image.is_volume and not image.is_rgb and image.n_slices == 2
    plane = image.slice(1)
    assert isinstance(plane, np.ndarray)
    np.testing.assert_array_equal(plane, np.arange(12, 24).reshape(3, 4))
    with pytest.raises(IndexError, match="x.tif"):
        image.slice(2)


def test_rgb_and_multichannel_properties():
    assert _image(np.zeros((4, 4, 4)), "YXC").is_rgb
    multi = _image(np.zeros((3, 4, 4)), "CYX")
    assert not multi.is_rgb and not multi.is_volume and multi.n_slices == 1
    assert multi.slice(0).shape == (3, 4, 4)
