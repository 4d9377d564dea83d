"""The bundled sample data and the sample project made from it."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from napari_weaksam.project import Project
from napari_weaksam.sample import SAMPLE_CLASS, make_sample_project, sample_dir


def _csv_positives() -> int:
    with open(sample_dir() / "tags.csv", newline="") as handle:
        return sum(row["label"] == "1" for row in csv.DictReader(handle))


@pytest.fixture(scope="module")
def sample_root(tmp_path_factory) -> Path:
    return make_sample_project(tmp_path_factory.mktemp("sample") / "s")


def test_bundled_sample_files_are_there():
    folder = sample_dir()
    pngs = sorted(p.name for p in (folder / "images").glob("*.png"))
    assert len(pngs) == 8
    assert (folder / "images" / "brain1.nii.gz").is_file()
    assert (folder / "tags.csv").is_file()
    assert sorted(p.name for p in (folder / "masks").glob("*.png")) == pngs


def test_sample_project_has_8_patches_and_25_slices(sample_root):
    with Project.open(sample_root, read_only=True) as project:
        sources = project.catalog.sources()
        assert sorted(s.kind for s in sources) == ["image"] * 8 + ["volume"]
        assert project.catalog.count_items() == 8 + 25
        (volume,) = [s for s in sources if s.kind == "volume"]
        slices = project.catalog.items(volume.id)
        assert sorted(i.slice_index for i in slices) == list(range(25))


def test_sample_tags_are_applied(sample_root):
    with Project.open(sample_root, read_only=True) as project:
        counts = project.catalog.tag_counts()
        assert counts["tagged"] == 33
        assert counts[SAMPLE_CLASS] == _csv_positives() == 4 + 7
        positive_slices = sorted(
            project.catalog.item(i).slice_index for i, tags in project.catalog.all_tags().items()
            if tags and project.catalog.item(i).is_slice
        )
        assert positive_slices == list(range(11, 18))


def test_no_ground_truth_mask_becomes_an_item(sample_root):
    with Project.open(sample_root, read_only=True) as project:
        relpaths = [s.relpath for s in project.catalog.sources()]
        names = [i.name for i in project.catalog.items()]
    assert all(r.startswith("images/") for r in relpaths)
    assert not any("mask" in r for r in relpaths)
    assert len(names) == len(set(names))
    assert not (sample_root / "images" / "masks").exists()


def test_sample_project_is_self_contained(sample_root):
    with Project.open(sample_root, read_only=True) as project:
        for source in project.catalog.sources():
            assert project.source_path(source) == sample_root / source.relpath
        first = project.catalog.items()[0]
        assert np.asarray(project.item_image(first)).shape[:2] == (first.height, first.width)


def test_second_call_reuses_the_project(sample_root):
    marker = sample_root / "project.json"
    before = marker.stat().st_mtime_ns
    assert make_sample_project(sample_root) == sample_root
    assert marker.stat().st_mtime_ns == before
    with Project.open(sample_root, read_only=True) as project:
        assert project.catalog.count_items() == 33
