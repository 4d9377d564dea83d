from __future__ import annotations

import numpy as np
import pytest
import tifffile
import zarr

from napari_weaksam.io import LabelWriteError, read_image, write_labels
from napari_weaksam.io.writers import label_dtype


@pytest.mark.parametrize(
    "max_label,dtype", [(0, np.uint8), (255, np.uint8), (256, np.uint16), (70000, np.uint32)]
)
def test_label_dtype(max_label, dtype):
    assert label_dtype(max_label) == dtype


@pytest.mark.parametrize("max_label,dtype", [(3, np.uint8), (300, np.uint16), (70000, np.uint32)])
def test_tiff_dtype_selection(tmp_path, max_label, dtype):
    labels = np.zeros((3, 8, 8), np.int64)
    labels[1, 2, 3] = max_label
    out = write_labels(tmp_path / "labels.tif", labels, spacing=(2.0, 0.5, 0.25))
    saved = tifffile.imread(out)
    assert saved.dtype == dtype
    np.testing.assert_array_equal(saved, labels)


def test_tiff_spacing_and_compression(tmp_path):
    labels = np.zeros((3, 8, 8), np.uint8)
    labels[0, 0, 0] = 1
    out = write_labels(tmp_path / "labels.tiff", labels, spacing=(2.0, 0.5, 0.25))
    with tifffile.TiffFile(out) as tf:
        assert tf.is_imagej
        assert tf.pages.first.compression == tifffile.COMPRESSION.ADOBE_DEFLATE
    image = read_image(out)
    assert image.axes == "ZYX"
    assert image.spacing == pytest.approx((2.0, 0.5, 0.25))


def test_2d_tiff(tmp_path):
    labels = np.eye(5, dtype=bool)
    out = write_labels(tmp_path / "m.tif", labels)
    np.testing.assert_array_equal(tifffile.imread(out), labels.astype(np.uint8))


def test_zarr_labels(tmp_path):
    labels = np.zeros((2, 600, 700), np.uint16)
    labels[1, 599, 699] = 1000
    out = write_labels(tmp_path / "labels.zarr", labels, spacing=(3.0, 1.0, 1.0))
    arr = zarr.open_array(str(out), mode="r")
    assert arr.metadata.zarr_format == 3
    assert arr.dtype == np.uint16
    assert arr.chunks[-2:] == (512, 512) and arr.chunks[0] == 1
    assert arr.attrs["spacing"] == [3.0, 1.0, 1.0]
    np.testing.assert_array_equal(arr[...], labels)
    image = read_image(out)
    assert image.spacing == (3.0, 1.0, 1.0)


def test_zarr_overwrite_is_atomic(tmp_path):
    write_labels(tmp_path / "l.zarr", np.ones((4, 4), np.uint8))
    write_labels(tmp_path / "l.zarr", np.full((4, 4), 2, np.uint8))
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "l.zarr"), mode="r")[...], 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.zarr"]


def test_overwrite_file_leaves_no_temp(tmp_path):
    write_labels(tmp_path / "l.tif", np.ones((4, 4), np.uint8))
    write_labels(tmp_path / "l.tif", np.full((4, 4), 3, np.uint8))
    assert int(tifffile.imread(tmp_path / "l.tif").max()) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.tif"]


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    import napari_weaksam.io.writers as writers

    def boom(tmp, data, spacing):
        tmp.write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(writers, "_write_tiff", boom)
    with pytest.raises(LabelWriteError, match="l.tif: could not write .*disk full"):
        write_labels(tmp_path / "l.tif", np.ones((4, 4), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_negative_labels(tmp_path):
    with pytest.raises(LabelWriteError, match="neg.tif: labels must not be negative"):
        write_labels(tmp_path / "neg.tif", np.array([[0, -1], [2, 3]]))
    assert list(tmp_path.iterdir()) == []


def test_fractional_labels(tmp_path):
    with pytest.raises(LabelWriteError, match="frac.tif: labels must be whole numbers"):
        write_labels(tmp_path / "frac.tif", np.array([[0.5, 1.0]]))


def test_bad_suffix(tmp_path):
    with pytest.raises(LabelWriteError, match=r"l\.png: .*\.nii\.gz"):
        write_labels(tmp_path / "l.png", np.ones((4, 4), np.uint8))


def test_missing_folder(tmp_path):
    with pytest.raises(LabelWriteError, match="does not exist"):
        write_labels(tmp_path / "nope" / "l.tif", np.ones((4, 4), np.uint8))
