from __future__ import annotations

import numpy as np
import pytest

from napari_weaksam.io import SUPPORTED_SUFFIXES, ImageReadError, is_supported, read_image
from napari_weaksam.io.readers import split_suffix


@pytest.mark.parametrize(
    "name,supported",
    [
        ("a.png", True),
        ("a.JPG", True),
        ("a.jpeg", True),
        ("a.tif", True),
        ("a.ome.tiff", True),
        ("brain.nii.gz", True),
        ("brain.nii", True),
        ("img.ome.zarr", True),
        ("notes.txt", False),
        ("archive.gz", False),
        ("noext", False),
    ],
)
def test_is_supported(name, supported):
    assert is_supported(name) is supported


def test_split_suffix_keeps_compound_suffixes():
    assert split_suffix("dir/Brain.Scan.nii.gz") == ("Brain.Scan", ".nii.gz")
    assert split_suffix("x.ome.tif") == ("x", ".ome.tif")
    assert {".png", ".nii.gz", ".ome.zarr", ".tiff"} <= set(SUPPORTED_SUFFIXES)


def test_unsupported_suffix_lists_formats(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("a,b\n")
    with pytest.raises(ImageReadError, match=r"table\.csv: unsupported .*\.nii\.gz"):
        read_image(path)


@pytest.mark.parametrize("name", ["empty.png", "empty.tif", "empty.nii.gz", "empty.jpg"])
def test_empty_file(tmp_path, name):
    (tmp_path / name).write_bytes(b"")
    with pytest.raises(ImageReadError, match=f"{name}: file is empty"):
        read_image(tmp_path / name)


def test_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match="ghost.png: file not found"):
        read_image(tmp_path / "ghost.png")


def test_errors_are_value_errors_and_chained(tmp_path):
    (tmp_path / "bad.tif").write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError) as info:
        read_image(tmp_path / "bad.tif")
    assert isinstance(info.value, ImageReadError)
    assert info.value.__cause__ is not None
    assert "bad.tif" in str(info.value)


def test_str_and_path_accepted(tmp_path):
    import tifffile

    tifffile.imwrite(tmp_path / "x.tif", np.zeros((4, 4), np.uint8))
    assert read_image(str(tmp_path / "x.tif")).path == tmp_path / "x.tif"
