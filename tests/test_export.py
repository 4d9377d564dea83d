"""Exporting reviewed masks of the bundled sample project as label files."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_weaksam.cli import main
from napari_weaksam.export import EXPORT_FORMATS, export_masks
from napari_weaksam.io import read_image
from napari_weaksam.project import Item, Project
from napari_weaksam.sample import make_sample_project, sample_dir

BRAIN = sample_dir() / "images" / "brain1.nii.gz"
ACCEPTED, CORRECTED, REJECTED, WAITING = (
    "adenocarcinoma_GT2001837-1-400-002", "normal_GT2000000-1-400-001",
    "polyp_GT2001818-1-400-001", "polyp_GT2012173-1-400-003",
)
SLICE_CORRECTED, SLICE_ACCEPTED = 13, 6  # display indices of brain1 slices


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_sample_project(tmp_path / "p")


def items_by_name(project: Project) -> dict[str, Item]:
    return {item.name: item for item in project.catalog.items()}


def brain_items(project: Project) -> list[Item]:
    [brain] = [s for s in project.catalog.sources() if s.kind == "volume"]
    return project.catalog.items(brain.id)


def random_labels(seed: int, shape: tuple[int, int]) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 3, shape, dtype=np.uint8)


def brain_labels(project: Project, item: Item) -> np.ndarray:
    """Labels that follow the anatomy: 1 above a low, 2 above a high intensity."""
    plane = project.item_image(item)
    return (plane > 100).astype(np.uint8) + (plane > 400)


@pytest.fixture
def reviewed_2d(root: Path) -> dict[str, np.ndarray]:
    """Four PNG items: accepted, corrected, rejected and waiting; their expected masks."""
    expected = {}
    with Project.open(root) as project:
        items = items_by_name(project)
        for seed, name in enumerate((ACCEPTED, CORRECTED, REJECTED, WAITING)):
            item = items[name]
            expected[name] = random_labels(seed, (item.height, item.width))
            project.labels.add_proposal(item.id, expected[name], method="manual")
        project.labels.review(items[ACCEPTED].id, "accepted")
        expected[CORRECTED] = random_labels(99, expected[CORRECTED].shape)
        project.labels.review(items[CORRECTED].id, "corrected", expected[CORRECTED])
        project.labels.review(items[REJECTED].id, "rejected")
    return expected


@pytest.fixture
def reviewed_brain(root: Path) -> dict[int, np.ndarray]:
    """Two brain1 slices reviewed (one corrected, one accepted); masks by display index."""
    with Project.open(root) as project:
        slices = {i.display_index: i for i in brain_items(project)}
        corrected, accepted = slices[SLICE_CORRECTED], slices[SLICE_ACCEPTED]
        masks = {SLICE_CORRECTED: brain_labels(project, corrected),
                 SLICE_ACCEPTED: brain_labels(project, accepted)}
        project.labels.add_proposal(corrected.id, np.zeros_like(masks[SLICE_CORRECTED]),
                                    method="manual")
        project.labels.review(corrected.id, "corrected", masks[SLICE_CORRECTED])
        project.labels.add_proposal(accepted.id, masks[SLICE_ACCEPTED], method="manual")
        project.labels.review(accepted.id, "accepted")
    assert all(m.any() for m in masks.values()) and (masks[SLICE_CORRECTED] == 2).any()
    return masks


def export(root: Path, dest: Path, **kwargs):
    with Project.open(root, read_only=True) as project:
        return export_masks(project, dest, **kwargs)


def test_reviewed_2d_masks_are_written_exactly(root, reviewed_2d, tmp_path):
    report = export(root, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        f"{ACCEPTED}.tif", f"{CORRECTED}.tif"]
    assert sorted(report.files) == sorted((tmp_path / "out").iterdir())
    for name in (ACCEPTED, CORRECTED):
        np.testing.assert_array_equal(read_image(tmp_path / "out" / f"{name}.tif").data,
                                      reviewed_2d[name])
    assert report.items == 2 and report.by_state == {"accepted": 1, "corrected": 1}
    assert f"{REJECTED}: rejected" in report.skipped
    assert f"{WAITING}: proposal not reviewed" in report.skipped
    assert any(s.startswith("brain1: no slice") for s in report.skipped)


def test_proposals_fill_in_unreviewed_but_never_rejected(root, reviewed_2d, tmp_path):
    report = export(root, tmp_path / "out", include_proposals=True)
    names = {p.name for p in report.files}
    assert names == {f"{ACCEPTED}.tif", f"{CORRECTED}.tif", f"{WAITING}.tif"}
    np.testing.assert_array_equal(read_image(tmp_path / "out" / f"{WAITING}.tif").data,
                                  reviewed_2d[WAITING])
    assert report.by_state == {"accepted": 1, "corrected": 1, "proposed": 1}
    assert not (tmp_path / "out" / f"{REJECTED}.tif").exists()


def test_only_the_requested_review_states(root, reviewed_2d, tmp_path):
    report = export(root, tmp_path / "out", states=("corrected",), fmt="zarr")
    assert [p.name for p in report.files] == [f"{CORRECTED}.zarr"]
    np.testing.assert_array_equal(np.asarray(read_image(report.files[0]).data),
                                  reviewed_2d[CORRECTED])
    assert f"{ACCEPTED}: accepted, not among the exported states" in report.skipped


def test_volume_as_nifti_lands_on_the_source_voxels(root, reviewed_brain, tmp_path):
    report = export(root, tmp_path / "out", fmt="nifti")
    out = tmp_path / "out" / "brain1.nii.gz"
    assert report.files == [out] and report.items == 2
    assert report.by_state == {"accepted": 1, "corrected": 1}
    source, written = nib.load(BRAIN), nib.load(out)
    assert written.shape == source.shape
    np.testing.assert_allclose(written.affine, source.affine, atol=1e-5)
    # independent of the project's geometry code: nibabel's raw voxels, same thresholds
    raw, labels = np.asarray(source.dataobj), np.asarray(written.dataobj)
    with Project.open(root, read_only=True) as project:
        slice_of = {i.display_index: i.slice_index for i in brain_items(project)}
    for display, mask in reviewed_brain.items():
        k = slice_of[display]
        expected = (raw[..., k] > 100).astype(np.uint8) + (raw[..., k] > 400)
        np.testing.assert_array_equal(labels[..., k], expected)
        assert int((labels[..., k] > 0).sum()) == int((mask > 0).sum())
    others = [k for d, k in slice_of.items() if d not in reviewed_brain]
    assert not labels[..., others].any()
    back = read_image(out)
    assert back.data.shape == (25, 256, 256)
    for display, mask in reviewed_brain.items():
        np.testing.assert_array_equal(back.slice(display), mask)
    unmarked = [d for d in range(25) if d not in reviewed_brain]
    assert not np.asarray(back.data)[unmarked].any()


def test_volume_as_tiff_and_zarr_matches_nifti(root, reviewed_brain, tmp_path):
    volumes = {}
    for fmt, suffix in EXPORT_FORMATS.items():
        [out] = export(root, tmp_path / fmt, fmt=fmt).files
        assert out.name == f"brain1{suffix}"
        image = read_image(out)
        volumes[fmt] = np.asarray(image.data)
        assert image.spacing == pytest.approx((6.5, 0.78125, 0.78125), abs=1e-4)
    assert volumes["tiff"].shape == (25, 256, 256)
    np.testing.assert_array_equal(volumes["tiff"], volumes["nifti"])
    np.testing.assert_array_equal(volumes["zarr"], volumes["nifti"])
    np.testing.assert_array_equal(volumes["tiff"][SLICE_CORRECTED], reviewed_brain[SLICE_CORRECTED])


def test_existing_files_are_not_overwritten(root, reviewed_2d, tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / f"{CORRECTED}.tif").write_bytes(b"someone else's file")
    with pytest.raises(FileExistsError, match=CORRECTED):
        export(root, dest)
    assert sorted(p.name for p in dest.iterdir()) == [f"{CORRECTED}.tif"]
    assert (dest / f"{CORRECTED}.tif").read_bytes() == b"someone else's file"
    export(root, dest, overwrite=True)
    np.testing.assert_array_equal(read_image(dest / f"{CORRECTED}.tif").data,
                                  reviewed_2d[CORRECTED])
    assert not list(dest.glob(".*"))  # no temporary files left behind


def test_bad_format_and_states(root, tmp_path):
    with pytest.raises(ValueError, match="tiff, nifti, zarr"):
        export(root, tmp_path / "out", fmt="png")
    with pytest.raises(ValueError, match="rejected"):
        export(root, tmp_path / "out", states=("accepted", "rejected"))
    assert not (tmp_path / "out").exists()


def test_cli_round_trip(root, reviewed_2d, reviewed_brain, tmp_path, capsys):
    dest = tmp_path / "cli"
    args = ["export", str(root), str(dest), "--format", "nifti", "--proposals"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.strip() == (f"{dest}: 4 files written (5 items: accepted 2, corrected 2, "
                           "proposed 1), 5 left out")
    np.testing.assert_array_equal(read_image(dest / f"{WAITING}.nii.gz").data,
                                  reviewed_2d[WAITING])
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "weaksam: error:" in err and "already exist" in err
    assert main([*args, "--overwrite"]) == 0
    with pytest.raises(SystemExit) as exited:
        main(["export", str(root), str(dest), "--format", "png"])
    assert exited.value.code == 2
