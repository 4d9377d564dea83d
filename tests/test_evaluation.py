"""Evaluation of a project's masks against the bundled sample's ground truth."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from pathlib import Path

import imageio.v3 as iio
import nibabel as nib
import numpy as np
import pytest

from napari_weaksam.evaluation import evaluate_project, find_truth
from napari_weaksam.io import read_image
from napari_weaksam.metrics import hd95
from napari_weaksam.project import Project
from napari_weaksam.project.importer import import_images
from napari_weaksam.sample import sample_dir

MASKS = sample_dir() / "masks"
BRAIN = "brain1.nii.gz"
TUMOUR_PNGS = sorted(p.stem for p in MASKS.glob("adenocarcinoma_*.png"))
NORMAL_PNGS = sorted(p.stem for p in MASKS.glob("*.png") if not p.name.startswith("adeno"))


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    proj = Project.create(tmp_path / "proj")
    report = import_images(proj, [sample_dir() / "images"])
    assert not report.skipped
    yield proj
    proj.close()


def by_name(project: Project) -> dict[str, int]:
    return {item.name: item.id for item in project.catalog.items()}


def propose(project: Project, item_id: int, mask: np.ndarray, **kwargs) -> None:
    project.labels.add_proposal(item_id, mask.astype(np.uint8), method="test", **kwargs)


def brain_tumour_slices() -> dict[int, int]:
    """Tumour pixels per source slice index, read with nibabel (not the project's reader)."""
    data = np.asarray(nib.load(MASKS / BRAIN).dataobj)
    counts = (data > 0).sum(axis=(0, 1))
    return {k: int(n) for k, n in enumerate(counts) if n}


def test_sample_masks_are_what_the_tests_assume():
    assert len(TUMOUR_PNGS) == 4 and len(NORMAL_PNGS) == 4
    assert sorted(brain_tumour_slices()) == list(range(11, 18))


def test_find_truth_matches_files_and_volume_slices(project):
    truth = find_truth(project, MASKS)
    names = by_name(project)
    assert len(truth) == len(names) == 8 + 25
    png = TUMOUR_PNGS[0]
    expected = read_image(MASKS / f"{png}.png").data > 0
    np.testing.assert_array_equal(truth[names[png]], expected)
    assert truth[names[png]].dtype == bool
    assert not any(truth[names[n]].any() for n in NORMAL_PNGS)
    slices = {item.slice_index: int(truth[item.id].sum())
              for item in project.catalog.items() if item.is_slice and truth[item.id].any()}
    assert slices == brain_tumour_slices()


def test_find_truth_leaves_out_items_without_a_mask_and_matches_by_stem(project, tmp_path):
    masks = tmp_path / "masks"
    masks.mkdir()
    png = TUMOUR_PNGS[1]
    iio.imwrite(masks / f"{png}.tif", read_image(MASKS / f"{png}.png").data * 255)
    truth = find_truth(project, masks)
    assert list(truth) == [by_name(project)[png]]
    assert truth[by_name(project)[png]].sum() == (read_image(MASKS / f"{png}.png").data > 0).sum()


def test_find_truth_label_value(project, tmp_path):
    masks = tmp_path / "masks"
    masks.mkdir()
    png = TUMOUR_PNGS[0]
    labels = read_image(MASKS / f"{png}.png").data.astype(np.uint8)
    labels[:10] = 3
    iio.imwrite(masks / f"{png}.png", labels)
    only_3 = find_truth(project, masks, label=3)[by_name(project)[png]]
    assert only_3.sum() == 10 * labels.shape[1]
    assert find_truth(project, masks)[by_name(project)[png]].sum() == (labels > 0).sum()


def test_mask_shape_mismatch_names_both_files(project, tmp_path):
    masks = tmp_path / "masks"
    masks.mkdir()
    png = NORMAL_PNGS[0]
    iio.imwrite(masks / f"{png}.png", np.zeros((10, 12), dtype=np.uint8))
    with pytest.raises(ValueError, match="does not match") as error:
        find_truth(project, masks)
    assert str(masks / f"{png}.png") in str(error.value)
    assert str(sample_dir() / "images" / f"{png}.png") in str(error.value)


def test_volume_mask_with_wrong_slice_count_is_rejected(project, tmp_path):
    masks = tmp_path / "masks"
    masks.mkdir()
    img = nib.load(MASKS / BRAIN)
    data = np.asarray(img.dataobj)[..., :20]
    nib.save(nib.Nifti1Image(data, img.affine), masks / BRAIN)
    with pytest.raises(ValueError, match=BRAIN):
        find_truth(project, masks)


def save_volume(src: Path, dest: Path, flip: bool) -> Path:
    """``src`` re-saved, stored upside down along z (same world positions) when ``flip``."""
    img = nib.load(src)
    data, affine = np.asarray(img.dataobj), img.affine
    if flip:
        n = data.shape[2]
        data = data[..., ::-1]
        affine = affine @ np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, -1, n - 1], [0, 0, 0, 1]])
    dest.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, affine), dest)
    return dest


@pytest.mark.parametrize(("flip_image", "flip_mask"), [(True, False), (False, True), (True, True)])
def test_volume_mask_matches_slices_by_orientation(tmp_path, flip_image, flip_mask):
    source = sample_dir() / "images" / BRAIN
    image = save_volume(source, tmp_path / "img" / "brain1.nii", flip_image)
    save_volume(MASKS / BRAIN, tmp_path / "masks" / BRAIN, flip_mask)
    with Project.create(tmp_path / "proj") as proj:
        import_images(proj, [image])
        truth = find_truth(proj, tmp_path / "masks")
        items = proj.catalog.items()
    assert len(truth) == 25
    if flip_image:
        assert any(i.slice_index != i.display_index for i in items)
    found = {i.slice_index: int(truth[i.id].sum()) for i in items if truth[i.id].any()}
    expected = brain_tumour_slices()
    if flip_image:
        expected = {24 - k: n for k, n in expected.items()}
    assert found == expected


def test_evaluate_scores_positive_negative_and_missing(project, tmp_path):
    truth = find_truth(project, MASKS)
    ids = by_name(project)
    exact, shifted, _missing = TUMOUR_PNGS[:2], TUMOUR_PNGS[2], TUMOUR_PNGS[3]
    for name in exact:
        propose(project, ids[name], truth[ids[name]])
    propose(project, ids[shifted], np.roll(truth[ids[shifted]], 7, axis=1))
    blob = np.zeros((224, 224), dtype=bool)
    blob[:16, :28] = True
    propose(project, ids[NORMAL_PNGS[0]], blob)
    propose(project, ids[NORMAL_PNGS[1]], np.zeros_like(blob))
    propose(project, ids[NORMAL_PNGS[2]], np.zeros_like(blob))

    report = evaluate_project(project, MASKS)
    rows = {r["item"]: r for r in report.rows}
    assert len(rows) == 6
    for name in exact:
        assert rows[name]["dice"] == rows[name]["iou"] == 1.0
        assert rows[name]["hd95"] == 0.0 and rows[name]["positive"]
    assert 0.0 < rows[shifted]["dice"] < 1.0
    assert rows[shifted]["hd95"] > 0
    assert rows[NORMAL_PNGS[0]]["predicted_pixels"] == 16 * 28
    assert not rows[NORMAL_PNGS[0]]["positive"]

    s = report.summary()
    assert s["n_positive"] == 3 and s["n_negative"] == 3
    assert s["n_missing"] == 1 + 1 + 25  # one tumour PNG, one normal PNG, every brain slice
    assert set(report.missing) >= {TUMOUR_PNGS[3], NORMAL_PNGS[3], "brain1 z012"}
    assert s["dice_median"] == 1.0
    assert s["dice_mean"] == pytest.approx((2 + rows[shifted]["dice"]) / 3)
    assert s["fp_rate"] == pytest.approx(1 / 3)
    assert s["fp_area_mean"] == pytest.approx(16 * 28 / 224**2 / 3)
    assert s["hd95_median"] == 0.0

    table = report.table()
    assert "| positive items | 3 |" in table
    assert "| false-positive rate | 0.333 |" in table
    assert "| missing (no prediction) | 27 |" in table


def test_csv_and_plot_are_written(project, tmp_path):
    truth = find_truth(project, MASKS)
    ids = by_name(project)
    propose(project, ids[TUMOUR_PNGS[0]], truth[ids[TUMOUR_PNGS[0]]])
    propose(project, ids[NORMAL_PNGS[0]], np.ones((224, 224), dtype=bool))
    report = evaluate_project(project, MASKS)

    path = report.write_csv(tmp_path / "out" / "scores.csv")
    with open(path, newline="") as handle:
        read = list(csv.DictReader(handle))
    assert [r["item"] for r in read] == [r["item"] for r in report.rows]
    assert float(read[0]["dice"]) == 1.0
    assert read[1]["hd95"] == "" and read[1]["predicted_pixels"] == str(224 * 224)
    assert read[0]["slice_index"] == "" and read[0]["method"] == "test"

    png = report.plot(tmp_path / "out" / "scores.png")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000
    assert iio.imread(png).shape[:2] == (320, 800)


def test_round_id_selects_the_proposals_of_that_round(project):
    truth = find_truth(project, MASKS)
    item_id = by_name(project)[TUMOUR_PNGS[0]]
    first = project.rounds.start_round("test")
    second = project.rounds.start_round("test")
    propose(project, item_id, truth[item_id], round_id=first)
    propose(project, item_id, np.zeros((224, 224), dtype=bool), round_id=second)
    for round_id in (first, second):
        project.rounds.finish_round(round_id, "done")

    latest = evaluate_project(project, MASKS).rows
    assert [(r["dice"], r["round"]) for r in latest] == [(0.0, second)]
    assert math.isnan(latest[0]["hd95"])
    chosen = evaluate_project(project, MASKS, round_id=first).rows
    assert [(r["dice"], r["round"]) for r in chosen] == [(1.0, first)]
    with pytest.raises(ValueError, match="no proposals"):
        evaluate_project(project, MASKS, round_id=second + 1)


def test_volume_items_are_scored_per_slice_in_physical_units(project):
    truth = find_truth(project, MASKS)
    slices = [i for i in project.catalog.items() if i.is_slice]
    for item in slices:
        propose(project, item.id, truth[item.id])
    moved = next(i for i in slices if i.slice_index == 14)
    shifted = np.roll(truth[moved.id], 3, axis=1)
    propose(project, moved.id, shifted)

    report = evaluate_project(project, MASKS)
    assert len(report.rows) == 25 and report.summary()["n_missing"] == 8
    positive = {r["slice_index"] for r in report.rows if r["positive"]}
    assert positive == set(brain_tumour_slices())
    assert all(r["dice"] == 1.0 for r in report.rows if r["slice_index"] != 14)
    row = next(r for r in report.rows if r["slice_index"] == 14)
    assert row["source_file"] == BRAIN and row["truth_pixels"] == brain_tumour_slices()[14]
    in_pixels = hd95(shifted, truth[moved.id])
    assert in_pixels > 0
    assert row["hd95"] == pytest.approx(0.78125 * in_pixels)


def test_final_labels_use_the_reviews(project):
    truth = find_truth(project, MASKS)
    ids = [by_name(project)[name] for name in TUMOUR_PNGS[:3]]
    for item_id in ids:
        propose(project, item_id, np.zeros((224, 224), dtype=bool))
    project.labels.review(ids[0], "accepted")
    project.labels.review(ids[1], "corrected", truth[ids[1]].astype(np.uint8))
    project.labels.review(ids[2], "rejected")

    report = evaluate_project(project, MASKS, source="final")
    rows = {r["item_id"]: r for r in report.rows}
    assert set(rows) == {ids[0], ids[1]}
    assert rows[ids[0]]["dice"] == 0.0 and rows[ids[0]]["method"] == "accepted"
    assert rows[ids[1]]["dice"] == 1.0 and rows[ids[1]]["method"] == "corrected"
    assert report.summary()["n_missing"] == 33 - 2
    with pytest.raises(ValueError, match="round_id"):
        evaluate_project(project, MASKS, source="final", round_id=1)
    with pytest.raises(ValueError, match="source"):
        evaluate_project(project, MASKS, source="truth")


def test_class_label_value_in_predictions(project):
    truth = find_truth(project, MASKS)
    item_id = by_name(project)[TUMOUR_PNGS[0]]
    propose(project, item_id, truth[item_id] * 2)
    assert evaluate_project(project, MASKS, label=2).rows[0]["dice"] == 1.0
    assert evaluate_project(project, MASKS, label=1).rows[0]["dice"] == 0.0


def test_empty_report_summarises_without_errors(project, tmp_path):
    report = evaluate_project(project, MASKS)
    s = report.summary()
    assert s["n_positive"] == s["n_negative"] == 0 and s["n_missing"] == 33
    assert math.isnan(s["dice_mean"]) and math.isnan(s["fp_rate"])
    assert "| Dice mean ± sd | – ± – |" in report.table()
    assert report.plot(tmp_path / "empty.png").stat().st_size > 0
    with pytest.raises(FileNotFoundError):
        find_truth(project, tmp_path / "nowhere")
