from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_weaksam.io import (
    ImageReadError,
    get_reader,
    write_labels_nifti,
    write_labels_tiff,
    write_labels_zarr,
)


def test_unsupported_path_returns_none(tmp_path):
    assert get_reader(str(tmp_path / "notes.txt")) is None
    assert get_reader([str(tmp_path / "a.png"), str(tmp_path / "b.txt")]) is None
    assert get_reader([]) is None


def test_rgb_png_layer(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(np.zeros((6, 7, 3), np.uint8)).save(path)
    reader = get_reader(str(path))
    assert callable(reader)
    [(data, kwargs, kind)] = reader(str(path))
    assert kind == "image"
    assert data.shape == (6, 7, 3)
    assert kwargs["rgb"] is True
    assert kwargs["scale"] == (1.0, 1.0)
    assert kwargs["name"] == "photo"
    assert "contrast_limits" not in kwargs
    assert kwargs["metadata"]["weaksam"]["format"] == "png"


def test_volume_tiff_layer(tmp_path):
    path = tmp_path / "stack.tif"
    data = np.arange(3 * 8 * 8, dtype=np.uint16).reshape(3, 8, 8)
    tifffile.imwrite(
        path, data, imagej=True, resolution=(2.0, 2.0), metadata={"spacing": 4.0, "axes": "ZYX"}
    )
    [(layer, kwargs, _)] = get_reader([str(path)])([str(path)])
    assert kwargs["scale"] == pytest.approx((4.0, 0.5, 0.5))
    assert kwargs["rgb"] is False
    lo, hi = kwargs["contrast_limits"]
    assert 0 <= lo < hi <= 191


def test_multichannel_uses_channel_axis(tmp_path):
    path = tmp_path / "two.ome.tif"
    tifffile.imwrite(path, np.ones((2, 8, 8), np.uint16), metadata={"axes": "CYX"})
    [(_, kwargs, _)] = get_reader(str(path))(str(path))
    assert kwargs["channel_axis"] == 0 and "rgb" not in kwargs
    assert kwargs["scale"] == (1.0, 1.0)


def test_pyramid_layer_is_multiscale(tmp_path):
    path = tmp_path / "pyr.ome.tif"
    base = np.random.default_rng(0).integers(0, 255, (128, 128), np.uint8)
    with tifffile.TiffWriter(path) as tw:
        tw.write(base, subifds=1, tile=(64, 64))
        tw.write(base[::2, ::2], subfiletype=1, tile=(64, 64))
    [(data, kwargs, _)] = get_reader(str(path))(str(path))
    assert kwargs["multiscale"] is True
    assert isinstance(data, list) and [d.shape for d in data] == [(128, 128), (64, 64)]


def test_read_error_propagates(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG garbage")
    reader = get_reader(str(path))
    with pytest.raises(ImageReadError, match="broken.png"):
        reader(str(path))


def test_nifti_layer_and_writer_restore_geometry(tmp_path):
    affine = np.array([[-0.5, 0, 0, 10], [0, 0, 2.0, -5], [0, -0.8, 0, 3], [0, 0, 0, 1]])
    source = np.zeros((6, 4, 5), np.int16)
    source[1, 2, 3] = 9
    nib.save(nib.Nifti1Image(source, affine), tmp_path / "scan.nii.gz")
    [(data, kwargs, _)] = get_reader(str(tmp_path / "scan.nii.gz"))(str(tmp_path / "scan.nii.gz"))
    assert kwargs["name"] == "scan"
    meta = kwargs["metadata"]["weaksam"]
    assert meta["source_shape"] == [6, 4, 5]
    assert np.allclose(meta["affine"], affine)
    assert len(kwargs["scale"]) == 3
    labels = (data == 9).astype(np.uint8)
    layer_meta = {"metadata": kwargs["metadata"], "scale": kwargs["scale"], "name": "scan labels"}
    [out] = write_labels_nifti(str(tmp_path / "labels.nii.gz"), labels, layer_meta)
    saved = nib.load(out)
    np.testing.assert_allclose(saved.affine, affine)
    np.testing.assert_array_equal(np.asanyarray(saved.dataobj), (source == 9).astype(np.uint8))


def test_tiff_and_zarr_writers(tmp_path):
    labels = np.zeros((2, 4, 4), np.uint8)
    labels[1, 1, 1] = 5
    meta = {"metadata": {}, "scale": (2.0, 1.0, 1.0)}
    [tif] = write_labels_tiff(str(tmp_path / "l.tif"), labels, meta)
    np.testing.assert_array_equal(tifffile.imread(tif), labels)
    [zarr_path] = write_labels_zarr(str(tmp_path / "l.zarr"), labels, meta)
    assert zarr_path == str(tmp_path / "l.zarr")


def test_layer_tuples_are_accepted_by_napari(tmp_path):
    components = pytest.importorskip("napari.components")
    paths = [tmp_path / "rgb.png", tmp_path / "two.ome.tif", tmp_path / "vol.nii.gz"]
    Image.fromarray(np.zeros((6, 7, 3), np.uint8)).save(paths[0])
    tifffile.imwrite(paths[1], np.ones((2, 8, 8), np.uint16), metadata={"axes": "CYX"})
    nib.save(nib.Nifti1Image(np.ones((4, 5, 6), np.int16), np.eye(4)), paths[2])
    viewer = components.ViewerModel()
    for path in paths:
        for data, kwargs, _ in get_reader(str(path))(str(path)):
            viewer.add_image(data, **kwargs)
    assert [layer.name for layer in viewer.layers][:1] == ["rgb"]
    assert len(viewer.layers) == 4  # the two-channel image becomes two layers
    assert viewer.layers[-1].scale.tolist() == [1.0, 1.0, 1.0]
    assert viewer.layers[1].metadata["weaksam"]["axes"] == "CYX"
