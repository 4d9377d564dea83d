"""Files that are damaged or hostile: reported by name, never executed, the rest goes on."""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import imageio.v3 as iio
import nibabel as nib
import numpy as np
import pytest
import tifffile
from conftest_faults import weaksam

from napari_weaksam.backbones.loaders import load_backbone
from napari_weaksam.backbones.weights import WeightsError
from napari_weaksam.cli import main


class _Payload:
    """Unpickling this runs ``os.system``: what a hostile checkpoint would do."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return (os.system, (f"touch {self.sentinel}",))


@pytest.fixture
def hostile_checkpoint(tmp_path) -> tuple[Path, Path]:
    sentinel = tmp_path / "executed"
    path = tmp_path / "sam_vit_b_01ec64.pth"
    with open(path, "wb") as handle:
        pickle.dump({"model": _Payload(sentinel)}, handle)
    return path, sentinel


def test_a_hostile_checkpoint_is_refused_without_running_it(hostile_checkpoint):
    path, sentinel = hostile_checkpoint
    with pytest.raises(WeightsError, match="not a readable PyTorch checkpoint"):
        load_backbone("sam_vit_b", checkpoint=path)
    assert not sentinel.exists()


def test_a_hostile_checkpoint_given_to_the_cli_is_one_line(hostile_checkpoint, tmp_path, capsys):
    path, sentinel = hostile_checkpoint
    (tmp_path / "imgs").mkdir()
    iio.imwrite(tmp_path / "imgs" / "a.png", np.zeros((16, 16), np.uint8))
    assert main(["create", str(tmp_path / "p"), str(tmp_path / "imgs")]) == 0
    capsys.readouterr()
    result = weaksam("embed", tmp_path / "p", "--model", "sam_vit_b", "--checkpoint", path)
    line = result.error_line()
    assert str(path) in line and "not a readable PyTorch checkpoint" in line
    assert not sentinel.exists()


def _bad_files(folder: Path) -> dict[str, str]:
    """Damaged and unsupported files; name → a word the skip reason must contain."""
    folder.mkdir()
    iio.imwrite(folder / "good.png", np.full((16, 16), 100, np.uint8))
    (folder / "empty.png").write_bytes(b"")
    png = (folder / "good.png").read_bytes()
    (folder / "truncated.png").write_bytes(png[: len(png) // 2])
    (folder / "not-an-image.tif").write_bytes(b"this is text, not a TIFF" * 10)
    (folder / "corrupt.nii.gz").write_bytes(gzip.compress(b"\x00" * 100))
    tifffile.imwrite(folder / "complex.tif", np.zeros((8, 8), np.complex64))
    nan = np.zeros((8, 8), np.float32)
    nan[2, 2] = np.nan
    tifffile.imwrite(folder / "nan.tif", nan)
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4, 3), np.float32), np.eye(4)),
             folder / "fourd.nii.gz")
    return {"empty.png": "empty.png", "truncated.png": "truncated.png",
            "not-an-image.tif": "not-an-image.tif", "corrupt.nii.gz": "corrupt.nii.gz",
            "complex.tif": "complex", "nan.tif": "NaN", "fourd.nii.gz": "4D"}


def test_damaged_files_are_skipped_by_name_and_the_rest_imported(tmp_path):
    expected = _bad_files(tmp_path / "imgs")
    result = weaksam("create", tmp_path / "p", tmp_path / "imgs")
    assert result.code == 0, result.err
    assert "1 files imported" in result.out and f"{len(expected)} skipped" in result.out
    skipped = [line for line in result.out.splitlines() if line.strip().startswith("skipped ")]
    assert len(skipped) == len(expected)
    for name, word in expected.items():
        assert any(name in line and word in line for line in skipped), (name, skipped)
