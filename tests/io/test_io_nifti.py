from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest

from napari_weaksam.io import ImageReadError, NiftiGeometry, read_image, write_labels

SHAPE = (4, 5, 6)  # source voxel axes (i, j, k)
# i -> inferior (2 mm), j -> patient right (0.7 mm), k -> posterior (0.9 mm): axcodes I, R, P
AFFINE = np.array(
    [
        [0.0, 0.7, 0.0, -10.0],
        [0.0, 0.0, -0.9, 20.0],
        [-2.0, 0.0, 0.0, 30.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
)
MARKER = (1, 2, 3)
# display (Z=S, Y=P, X=L): Z = flipped i, Y = k, X = flipped j
MARKER_DISPLAY = (SHAPE[0] - 1 - 1, 3, SHAPE[1] - 1 - 2)


def _write_volume(path, data=None, affine=AFFINE):
    if data is None:
        data = np.zeros(SHAPE, np.int16)
        data[MARKER] = 1000
    nib.save(nib.Nifti1Image(data, affine), path)
    return data


def test_affine_is_not_ras():
    assert nib.aff2axcodes(AFFINE) == ("I", "R", "P")


def test_nifti_reoriented_to_display(tmp_path):
    _write_volume(tmp_path / "scan.nii.gz")
    image = read_image(tmp_path / "scan.nii.gz")
    assert image.format == "nifti" and image.axes == "ZYX"
    assert image.data.dtype == np.int16
    assert image.data.shape == (4, 6, 5)
    assert image.spacing == pytest.approx((2.0, 0.9, 0.7))
    assert tuple(int(i) for i in np.argwhere(image.data == 1000)[0]) == MARKER_DISPLAY
    geometry = image.nifti
    np.testing.assert_allclose(geometry.affine, AFFINE)
    assert geometry.source_shape == SHAPE
    assert nib.aff2axcodes(geometry.display_affine) == ("S", "P", "L")
    world_src = AFFINE @ (*MARKER, 1)
    world_disp = geometry.display_affine @ (*MARKER_DISPLAY, 1)
    np.testing.assert_allclose(world_src, world_disp)


def test_slice_index_mapping(tmp_path):
    _write_volume(tmp_path / "scan.nii")
    geometry = read_image(tmp_path / "scan.nii").nifti
    assert geometry.source_slice_axis == 0
    assert geometry.source_slice_to_display(MARKER[0]) == MARKER_DISPLAY[0]
    assert geometry.display_slice_to_source(MARKER_DISPLAY[0]) == MARKER[0]
    assert [geometry.source_slice_to_display(k) for k in range(4)] == [3, 2, 1, 0]


def test_labels_round_trip_to_source_geometry(tmp_path):
    source = np.zeros(SHAPE, np.int16)
    source[MARKER] = 1000
    source[0, :2, 4:] = 3
    _write_volume(tmp_path / "scan.nii.gz", source)
    image = read_image(tmp_path / "scan.nii.gz")
    display_mask = (image.data > 0).astype(np.uint8) + (image.data == 1000)
    out = write_labels(tmp_path / "mask.nii.gz", display_mask, nifti=image.nifti)
    saved = nib.load(out)
    np.testing.assert_allclose(saved.affine, AFFINE)
    assert saved.shape == SHAPE
    expected = (source > 0).astype(np.uint8) + (source == 1000)
    np.testing.assert_array_equal(np.asanyarray(saved.dataobj), expected)
    assert saved.get_data_dtype() == np.uint8


def test_geometry_metadata_round_trip(tmp_path):
    _write_volume(tmp_path / "scan.nii.gz")
    geometry = read_image(tmp_path / "scan.nii.gz").nifti
    again = NiftiGeometry.from_metadata(geometry.to_metadata())
    np.testing.assert_allclose(again.affine, geometry.affine)
    np.testing.assert_array_equal(again.to_display, geometry.to_display)
    assert again.source_shape == geometry.source_shape


def test_labels_shape_mismatch(tmp_path):
    from napari_weaksam.io import LabelWriteError

    _write_volume(tmp_path / "scan.nii.gz")
    geometry = read_image(tmp_path / "scan.nii.gz").nifti
    with pytest.raises(LabelWriteError, match="bad.nii.gz"):
        write_labels(tmp_path / "bad.nii.gz", np.zeros((2, 2, 2), np.uint8), nifti=geometry)


def test_labels_without_geometry_warn_and_read_back(tmp_path):
    labels = np.zeros((3, 4, 5), np.uint8)
    labels[1, 2, 3] = 2
    with pytest.warns(UserWarning, match="diagonal affine"):
        out = write_labels(tmp_path / "free.nii", labels, spacing=(3.0, 0.5, 0.25))
    image = read_image(out)
    np.testing.assert_array_equal(image.data, labels)
    assert image.spacing == pytest.approx((3.0, 0.5, 0.25))


def test_single_slice_nifti_is_2d(tmp_path):
    data = np.arange(30, dtype=np.float32).reshape(5, 6, 1)
    nib.save(nib.Nifti1Image(data, np.diag([0.5, 0.6, 3.0, 1.0])), tmp_path / "one.nii")
    image = read_image(tmp_path / "one.nii")
    assert image.axes == "YX" and image.data.shape == (6, 5)
    assert image.spacing == pytest.approx((0.6, 0.5))
    out = write_labels(tmp_path / "one_mask.nii", (image.data > 10), nifti=image.nifti)
    np.testing.assert_array_equal(nib.load(out).get_fdata() > 0, data > 10)


def test_singleton_4th_dim_squeezed(tmp_path):
    data = np.ones((4, 5, 6, 1), np.uint8)
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "v.nii.gz")
    assert read_image(tmp_path / "v.nii.gz").data.shape == (6, 5, 4)


def test_4d_nifti_rejected(tmp_path):
    nib.save(nib.Nifti1Image(np.ones((4, 5, 6, 2), np.uint8), np.eye(4)), tmp_path / "fmri.nii")
    with pytest.raises(ImageReadError, match=r"fmri\.nii: 4D data .* split it into 3D"):
        read_image(tmp_path / "fmri.nii")


def test_truncated_nifti_gz(tmp_path):
    rng = np.random.default_rng(0)
    _write_volume(tmp_path / "full.nii.gz", rng.integers(0, 1000, (20, 20, 20)).astype(np.int16))
    raw = (tmp_path / "full.nii.gz").read_bytes()
    (tmp_path / "brain.nii.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ImageReadError, match="brain.nii.gz: file is truncated or corrupt"):
        read_image(tmp_path / "brain.nii.gz")


def test_nifti_garbage(tmp_path):
    (tmp_path / "junk.nii").write_bytes(b"not a nifti header" * 40)
    with pytest.raises(ImageReadError, match="junk.nii: "):
        read_image(tmp_path / "junk.nii")


def test_gzip_crc_error(tmp_path):
    _write_volume(tmp_path / "ok.nii.gz")
    raw = bytearray((tmp_path / "ok.nii.gz").read_bytes())
    raw[-8] ^= 0xFF  # corrupt the stored CRC32
    (tmp_path / "crc.nii.gz").write_bytes(bytes(raw))
    with pytest.raises(gzip.BadGzipFile):
        gzip.decompress(bytes(raw))
    with pytest.raises(ImageReadError, match="crc.nii.gz: file is truncated or corrupt"):
        read_image(tmp_path / "crc.nii.gz")


def test_ct_modality(tmp_path):
    data = np.full((6, 6, 3), -1024, np.int16)
    data[2:4, 2:4] = 50
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "ct.nii.gz")
    assert read_image(tmp_path / "ct.nii.gz").modality == "CT"


def test_real_brain_volume_and_mask(shared_data, tmp_path):
    folder = shared_data / "pyradiomics_3d"
    if not (folder / "images" / "brain1.nii.gz").exists():
        pytest.skip("pyradiomics_3d/brain1 not present")
    image = read_image(folder / "images" / "brain1.nii.gz")
    assert image.axes == "ZYX" and image.n_slices == 25
    assert image.data.dtype == np.int16
    assert image.spacing == pytest.approx((6.5, 0.78, 0.78), abs=0.01)
    mask = read_image(folder / "masks" / "brain1.nii.gz")
    assert mask.data.shape == image.data.shape
    out = write_labels(tmp_path / "brain1_mask.nii.gz", mask.data, nifti=mask.nifti)
    original = nib.load(folder / "masks" / "brain1.nii.gz")
    saved = nib.load(out)
    np.testing.assert_allclose(saved.affine, original.affine, atol=1e-5)
    np.testing.assert_array_equal(np.asanyarray(saved.dataobj), np.asanyarray(original.dataobj))
