from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_weaksam.io import ImageReadError, read_image


def _volume(shape=(4, 20, 30), dtype=np.uint16) -> np.ndarray:
    return (np.arange(int(np.prod(shape))) % 1000).astype(dtype).reshape(shape)


def test_tiff_2d(tmp_path):
    data = _volume((20, 30))
    tifffile.imwrite(tmp_path / "plane.tif", data)
    image = read_image(tmp_path / "plane.tif")
    assert image.axes == "YX" and image.format == "tiff"
    assert image.spacing == (1.0, 1.0)
    assert image.levels is None and image.modality is None
    np.testing.assert_array_equal(image.data, data)


def test_tiff_3d_imagej_spacing(tmp_path):
    data = _volume()
    tifffile.imwrite(
        tmp_path / "stack.tif",
        data,
        imagej=True,
        resolution=(1 / 0.5, 1 / 0.25),
        metadata={"spacing": 2.5, "unit": "um", "axes": "ZYX"},
    )
    image = read_image(tmp_path / "stack.tif")
    assert image.axes == "ZYX" and image.is_volume and image.n_slices == 4
    assert image.spacing == pytest.approx((2.5, 0.25, 0.5))
    np.testing.assert_array_equal(image.slice(2), data[2])


def test_tiff_3d_lazy(tmp_path):
    data = _volume((5, 20, 30))
    tifffile.imwrite(tmp_path / "lazy.tif", data, photometric="minisblack")
    image = read_image(tmp_path / "lazy.tif", lazy=True)
    assert type(image.data) is not np.ndarray and image.levels is None
    assert image.axes == "ZYX" and image.n_slices == 5
    np.testing.assert_array_equal(image.slice(3), data[3])


def test_tiff_unknown_leading_axis_is_z(tmp_path):
    data = _volume((5, 20, 30))
    tifffile.imwrite(tmp_path / "q.tif", data, photometric="minisblack")  # axes "QYX"
    image = read_image(tmp_path / "q.tif")
    assert image.axes == "ZYX"
    np.testing.assert_array_equal(image.data, data)


def test_tiff_planar_rgb_becomes_channels_last(tmp_path):
    data = _volume((3, 20, 30), np.uint8)
    tifffile.imwrite(tmp_path / "planar.tif", data, photometric="rgb", planarconfig="separate")
    for lazy in (False, True):
        image = read_image(tmp_path / "planar.tif", lazy=lazy)
        assert image.axes == "YXC" and image.data.shape == (20, 30, 3)
        np.testing.assert_array_equal(np.asarray(image.data), np.moveaxis(data, 0, -1))


def test_tiff_singleton_time_is_squeezed(tmp_path):
    data = _volume((1, 3, 20, 30))
    tifffile.imwrite(tmp_path / "t.ome.tif", data, metadata={"axes": "TZYX"})
    image = read_image(tmp_path / "t.ome.tif")
    assert image.axes == "ZYX" and image.data.shape == (3, 20, 30)


def test_ome_tiff_physical_size(tmp_path):
    tifffile.imwrite(
        tmp_path / "phys.ome.tiff",
        _volume(),
        metadata={"axes": "ZYX", "PhysicalSizeX": 0.3, "PhysicalSizeY": 0.4, "PhysicalSizeZ": 2.0},
    )
    image = read_image(tmp_path / "phys.ome.tiff")
    assert image.spacing == pytest.approx((2.0, 0.4, 0.3))


def test_tiff_rgb_and_multichannel(tmp_path):
    rgb = _volume((20, 30, 3), np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    image = read_image(tmp_path / "rgb.tif")
    assert image.axes == "YXC" and image.is_rgb
    np.testing.assert_array_equal(image.data, rgb)

    channels = _volume((2, 20, 30))
    tifffile.imwrite(tmp_path / "chan.ome.tif", channels, metadata={"axes": "CYX"})
    image = read_image(tmp_path / "chan.ome.tif")
    assert image.axes == "CYX" and not image.is_rgb and not image.is_volume
    assert image.spacing == (1.0, 1.0)


def _write_pyramid(path, data):
    with tifffile.TiffWriter(path) as tw:
        meta = {"axes": "YX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5}
        tw.write(data, subifds=2, tile=(64, 64), metadata=meta)
        tw.write(data[::2, ::2], subfiletype=1, tile=(64, 64))
        tw.write(data[::4, ::4], subfiletype=1, tile=(64, 64))


def test_ome_tiff_pyramid_lazy(tmp_path):
    data = np.random.default_rng(0).integers(0, 255, (256, 320), np.uint8)
    _write_pyramid(tmp_path / "pyr.ome.tif", data)
    image = read_image(tmp_path / "pyr.ome.tif", lazy=True)
    assert type(image.data) is not np.ndarray
    assert len(image.levels) == 3
    assert [lvl.shape for lvl in image.levels] == [(256, 320), (128, 160), (64, 80)]
    assert image.spacing == pytest.approx((0.5, 0.5))
    np.testing.assert_array_equal(np.asarray(image.levels[1]), data[::2, ::2])
    np.testing.assert_array_equal(image.slice(0), data)


def test_ome_tiff_pyramid_eager(tmp_path):
    data = np.random.default_rng(0).integers(0, 255, (128, 128), np.uint8)
    _write_pyramid(tmp_path / "pyr.ome.tif", data)
    image = read_image(tmp_path / "pyr.ome.tif")
    assert isinstance(image.data, np.ndarray) and len(image.levels) == 3


def test_tiff_4d_rejected(tmp_path):
    tifffile.imwrite(tmp_path / "movie.ome.tif", _volume((2, 3, 8, 8)), metadata={"axes": "TZYX"})
    with pytest.raises(ImageReadError, match=r"movie\.ome\.tif: 4D data .* split it"):
        read_image(tmp_path / "movie.ome.tif")


def test_tiff_multichannel_volume_rejected(tmp_path):
    path = tmp_path / "czyx.ome.tif"
    tifffile.imwrite(path, _volume((2, 3, 8, 8)), metadata={"axes": "CZYX"})
    with pytest.raises(ImageReadError, match="czyx.ome.tif"):
        read_image(path)


def test_tiff_complex_rejected(tmp_path):
    tifffile.imwrite(tmp_path / "complex.tif", np.ones((8, 8), np.complex64))
    with pytest.raises(ImageReadError, match="complex.tif: .*complex"):
        read_image(tmp_path / "complex.tif")


def test_tiff_nan_rejected(tmp_path):
    data = np.ones((8, 8), np.float32)
    data[1, 1] = np.nan
    data[2, 2] = np.inf
    tifffile.imwrite(tmp_path / "nan.tif", data)
    with pytest.raises(ImageReadError, match="nan.tif: .*2 NaN/Inf"):
        read_image(tmp_path / "nan.tif")


def test_tiff_dtype_conversions(tmp_path):
    tifffile.imwrite(tmp_path / "half.tif", np.ones((8, 8), np.float16))
    assert read_image(tmp_path / "half.tif").data.dtype == np.float32
    tifffile.imwrite(tmp_path / "mask.tif", np.eye(8, dtype=bool))
    image = read_image(tmp_path / "mask.tif")
    assert image.data.dtype == np.uint8 and int(image.data.max()) == 1


def test_tiff_ct_modality(tmp_path):
    data = np.full((3, 8, 8), -1024, np.int16)
    data[:, 2:6, 2:6] = 40
    tifffile.imwrite(tmp_path / "ct.tif", data)
    assert read_image(tmp_path / "ct.tif").modality == "CT"
