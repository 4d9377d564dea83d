"""Exporting reviewed masks of the bundled sample project as label files."""

from __future__ import annotations

import csv
import os
import stat
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_weaksam.cli import main
from napari_weaksam.export import EXPORT_FORMATS, MANIFEST, ExistingFiles, export_masks
from napari_weaksam.io import read_image
from napari_weaksam.project import Item, Project
from napari_weaksam.sample import make_sample_project, sample_dir

BRAIN = sample_dir() / "images" / "brain1.nii.gz"
ACCEPTED, CORRECTED, REJECTED, WAITING = (
    "adenocarcinoma_GT2001837-1-400-002", "normal_GT2000000-1-400-001",
    "polyp_GT2001818-1-400-001", "polyp_GT2012173-1-400-003",
)
SLICE_CORRECTED, SLICE_ACCEPTED, SLICE_PROPOSED = 13, 6, 20  # display indices of brain1 slices
OTHERS_2D = 4  # the sample's 2D images none of the fixtures gives a proposal
HINT = "how to add proposals"


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
        f"{ACCEPTED}.tif", MANIFEST, f"{CORRECTED}.tif"]
    assert sorted([*report.files, report.manifest]) == sorted((tmp_path / "out").iterdir())
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
    with pytest.raises(ExistingFiles, match=CORRECTED) as refused:
        export(root, dest)
    assert refused.value.clashes == [dest / f"{CORRECTED}.tif"]
    assert refused.value.headline() == "1 file already in out"
    assert ExistingFiles([dest], tmp_path / "x" / "exports of 2024-05-17").headline(
        9) == "1 file already in expo…5-17"
    assert refused.value.explain("do this").startswith(f"1 file already exists in {dest}; do this.")
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
                           f"proposed 1), 5 left out: 1 rejected, {OTHERS_2D} without a proposal")
    np.testing.assert_array_equal(read_image(dest / f"{WAITING}.nii.gz").data,
                                  reviewed_2d[WAITING])
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"weaksam: error: 5 files already exist in {dest}; choose another "
                          "folder, or replace them with --overwrite. Existing: ")
    assert main([*args, "--overwrite"]) == 0
    with pytest.raises(SystemExit) as exited:
        main(["export", str(root), str(dest), "--format", "png"])
    assert exited.value.code == 2


def test_cli_summary_tells_how_to_add_the_unreviewed_proposals(root, reviewed_2d, tmp_path,
                                                                capsys):
    assert main(["export", str(root), str(tmp_path / "cli")]) == 0
    assert capsys.readouterr().out.strip().endswith(
        f"{OTHERS_2D} without a proposal, 1 volume with no slice to export"
        " — add --proposals to include unreviewed proposals")


def test_summary_says_what_was_left_out_and_why(root, reviewed_2d, tmp_path):
    report = export(root, tmp_path / "out")
    assert report.summary(HINT) == (
        f"2 files written (2 items: accepted 1, corrected 1), {OTHERS_2D + 3} left out: "
        f"1 not reviewed, 1 rejected, {OTHERS_2D} without a proposal, "
        f"1 volume with no slice to export — {HINT}")
    assert report.summary().endswith("1 volume with no slice to export")
    with_proposals = export(root, tmp_path / "all", include_proposals=True)
    assert with_proposals.summary(HINT) == (
        "3 files written (3 items: accepted 1, corrected 1, proposed 1), "
        f"{OTHERS_2D + 2} left out: 1 rejected, {OTHERS_2D} without a proposal, "
        "1 volume with no slice to export")


def test_a_volume_of_unreviewed_proposals_gets_the_hint(root, tmp_path):
    with Project.open(root) as project:
        item = brain_items(project)[SLICE_PROPOSED]
        project.labels.add_proposal(item.id, brain_labels(project, item), method="manual")
    report = export(root, tmp_path / "out")
    assert report.files == [] and report.manifest is None
    assert report.summary(HINT).endswith(f"1 volume with no slice to export — {HINT}")


def read_manifest(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_manifest_tells_reviewed_slices_from_proposals(root, reviewed_2d, reviewed_brain,
                                                        tmp_path):
    with Project.open(root) as project:
        slices = brain_items(project)
        round_id = project.rounds.start_round("manual")
        for index in (SLICE_PROPOSED, SLICE_ACCEPTED):  # newer than the accepted slice's review
            item = slices[index]
            project.labels.add_proposal(item.id, brain_labels(project, item), method="manual",
                                        round_id=round_id)
        project.rounds.finish_round(round_id, "done")
    report = export(root, tmp_path / "out", fmt="zarr", include_proposals=True)
    rows = read_manifest(report.manifest)
    assert report.manifest == tmp_path / "out" / MANIFEST
    assert [r["file"] for r in rows] == [p.name for p in report.files for _ in
                                         range(25 if p.name.startswith("brain1") else 1)]
    flat = {r["item"]: (r["slice"], r["state"], r["round"]) for r in rows if not r["slice"]}
    assert flat == {ACCEPTED: ("", "accepted", ""), CORRECTED: ("", "corrected", ""),
                    WAITING: ("", "proposal", "")}
    volume = [r for r in rows if r["slice"]]
    assert [int(r["slice"]) for r in volume] == list(range(25))
    assert [int(r["source_slice"]) for r in volume] == [i.slice_index for i in slices]
    assert [r["item"] for r in volume] == [i.name for i in slices]
    states = {int(r["slice"]): (r["state"], r["round"]) for r in volume}
    assert states.pop(SLICE_CORRECTED) == ("corrected", "")
    assert states.pop(SLICE_ACCEPTED) == ("accepted", "")  # the round behind the review
    assert states.pop(SLICE_PROPOSED) == ("proposal", str(round_id))
    assert set(states.values()) == {("absent", "")}
    labels = np.asarray(read_image(tmp_path / "out" / "brain1.zarr").data)
    assert not labels[sorted(states)].any() and labels[SLICE_PROPOSED].any()


def test_manifest_without_proposals_marks_unreviewed_slices_absent(root, reviewed_brain,
                                                                    tmp_path):
    with Project.open(root) as project:
        item = brain_items(project)[SLICE_PROPOSED]
        project.labels.add_proposal(item.id, brain_labels(project, item), method="manual")
    report = export(root, tmp_path / "out", fmt="nifti")
    states = {int(r["slice"]): r["state"] for r in read_manifest(report.manifest)}
    assert states[SLICE_PROPOSED] == "absent" and states[SLICE_CORRECTED] == "corrected"


def test_an_existing_manifest_is_not_overwritten(root, reviewed_2d, tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / MANIFEST).write_text("mine\n", encoding="utf-8")
    with pytest.raises(ExistingFiles, match=MANIFEST):
        export(root, dest)
    assert sorted(p.name for p in dest.iterdir()) == [MANIFEST]
    export(root, dest, overwrite=True)
    assert len(read_manifest(dest / MANIFEST)) == 2
    assert not list(dest.glob(".*"))


@pytest.mark.parametrize("umask", [0o022, 0o027], ids=["umask022", "umask027"])
def test_exported_files_get_the_mode_of_any_new_file(root, reviewed_2d, reviewed_brain, tmp_path,
                                                     umask):
    old = os.umask(umask)
    try:
        reports = [export(root, tmp_path / fmt, fmt=fmt) for fmt in EXPORT_FORMATS]
        again = export(root, tmp_path / "tiff", overwrite=True)
    finally:
        os.umask(old)
    for report in [*reports, again]:
        for path in [*report.files, report.manifest]:
            found = [path, *path.rglob("*")] if path.is_dir() else [path]
            for each in found:
                expected = (0o777 if each.is_dir() else 0o666) & ~umask
                assert stat.S_IMODE(each.stat().st_mode) == expected, each
