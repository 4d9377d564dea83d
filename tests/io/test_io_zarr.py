from __future__ import annotations

import numpy as np
import pytest
import zarr

from napari_weaksam.io import ImageReadError, read_image


def _plain(path, data):
    arr = zarr.create_array(store=str(path), shape=data.shape, dtype=data.dtype, chunks=data.shape)
    arr[...] = data
    return arr


@pytest.mark.parametrize(
    "shape,axes", [((20, 30), "YX"), ((20, 30, 3), "YXC"), ((4, 20, 30), "ZYX")]
)
def test_plain_array(tmp_path, shape, axes):
    data = np.arange(int(np.prod(shape)), dtype=np.uint16).reshape(shape)
    _plain(tmp_path / "plain.zarr", data)
    image = read_image(tmp_path / "plain.zarr")
    assert image.format == "zarr" and image.axes == axes
    assert type(image.data) is not np.ndarray
    assert image.levels is None
    np.testing.assert_array_equal(np.asarray(image.data), data)


def _ngff_multiscales(axes, scales, version):
    ms = {
        "version": version,
        "name": "img",
        "axes": axes,
        "datasets": [
            {"path": str(i), "coordinateTransformations": [{"type": "scale", "scale": s}]}
            for i, s in enumerate(scales)
        ],
    }
    if version == "0.5":
        del ms["version"]
    return [ms]


def _write_ome(path, levels, axes, scales, version="0.4"):
    zarr_format = 2 if version == "0.4" else 3
    group = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    multiscales = _ngff_multiscales(axes, scales, version)
    if version == "0.4":
        group.attrs["multiscales"] = multiscales
    else:
        group.attrs["ome"] = {"version": "0.5", "multiscales": multiscales}
    for i, level in enumerate(levels):
        arr = group.create_array(
            str(i), shape=level.shape, dtype=level.dtype, chunks=(1,) * (level.ndim - 2) + (16, 16)
        )
        arr[...] = level


AXES_ZYX = [
    {"name": "z", "type": "space", "unit": "micrometer"},
    {"name": "y", "type": "space", "unit": "micrometer"},
    {"name": "x", "type": "space", "unit": "micrometer"},
]


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_multiscale_lazy(tmp_path, version):
    base = np.random.default_rng(0).integers(0, 4000, (3, 32, 48)).astype(np.uint16)
    levels = [base, base[:, ::2, ::2]]
    path = tmp_path / "img.ome.zarr"
    _write_ome(path, levels, AXES_ZYX, [[2.0, 0.5, 0.5], [2.0, 1.0, 1.0]], version)
    image = read_image(path)
    assert image.axes == "ZYX" and image.format == "zarr"
    assert type(image.data) is not np.ndarray
    assert len(image.levels) == 2
    assert image.levels[1].shape == (3, 16, 24)
    assert image.spacing == pytest.approx((2.0, 0.5, 0.5))
    np.testing.assert_array_equal(image.slice(1), base[1])
    np.testing.assert_array_equal(np.asarray(image.levels[1]), levels[1])


def test_ome_zarr_singleton_time_and_channel_dropped(tmp_path):
    data = np.ones((1, 1, 2, 16, 16), np.uint8)
    axes = [{"name": n} for n in "tczyx"]
    path = tmp_path / "tczyx.zarr"
    _write_ome(path, [data], axes, [[1.0, 1.0, 3.0, 0.25, 0.25]])
    image = read_image(path)
    assert image.axes == "ZYX" and image.data.shape == (2, 16, 16)
    assert type(image.data) is not np.ndarray
    assert image.spacing == pytest.approx((3.0, 0.25, 0.25))
    assert image.levels is None


def test_group_without_metadata_uses_its_array(tmp_path):
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    group.create_array("0", shape=(8, 8), dtype="uint8")[...] = 5
    image = read_image(tmp_path / "g.zarr")
    assert image.axes == "YX" and int(np.asarray(image.data).max()) == 5


def test_not_a_zarr_store(tmp_path):
    (tmp_path / "fake.zarr").mkdir()
    (tmp_path / "fake.zarr" / "readme.txt").write_text("hello")
    with pytest.raises(ImageReadError, match="fake.zarr"):
        read_image(tmp_path / "fake.zarr")


def test_empty_zarr_dir(tmp_path):
    (tmp_path / "empty.zarr").mkdir()
    with pytest.raises(ImageReadError, match="empty.zarr: .*empty"):
        read_image(tmp_path / "empty.zarr")
