"""Import of the real PyRadiomics volumes (optional data next to the repository)."""

from __future__ import annotations

import csv
from pathlib import Path

from napari_weaksam.project.importer import import_images
from napari_weaksam.project.tags_csv import import_tags


def test_pyradiomics_volumes_with_slice_labels(project, shared_data):
    folder = shared_data / "pyradiomics_3d"
    with open(folder / "slice_labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    positives = {(r["filename"], int(r["slice_index"])) for r in rows if r["label"] == "1"}

    report = import_images(project, [folder / "images"])
    assert report.skipped == []
    assert project.catalog.count_items() == 130 == len(rows)

    tags = import_tags(project, folder / "slice_labels.csv")
    assert (tags.applied, tags.unmatched, tags.errors) == (130, [], [])
    assert project.catalog.tag_counts()["tumour"] == len(positives)
    sources = {s.id: Path(s.path).name for s in project.catalog.sources()}
    tagged = {(sources[project.catalog.item(i).source_id], project.catalog.item(i).slice_index)
              for i, classes in project.catalog.all_tags().items() if classes}
    assert tagged == positives


def test_lgg_pngs_with_their_labels_csv(project, shared_data):
    folder = shared_data / "lgg_mri_dev"
    with open(folder / "labels.csv", newline="") as handle:
        all_rows = list(csv.DictReader(handle))
    rows = all_rows[:40]
    import_images(project, [folder / "images" / r["filename"] for r in rows])
    assert project.catalog.count_items() == 40

    report = import_tags(project, folder / "labels.csv")
    assert report.applied == 40 and report.errors == []
    assert len(report.unmatched) == len(all_rows) - 40
    assert project.catalog.tag_counts()["tumour"] == sum(r["label"] == "1" for r in rows)
