"""A full disk in every command that writes: one line, nothing saved before is lost.

The child runs with a file-size limit (RLIMIT_FSIZE): a write past it fails with EFBIG exactly
as a write to a full disk fails with ENOSPC, without needing a small file system.
"""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from conftest_faults import Saved, add_history, assert_intact, weaksam

from napari_weaksam.project import Project
from napari_weaksam.sample import make_sample_project

LIMIT = 2048  # bytes: less than one SQLite WAL frame, an embedding or a checkpoint


@pytest.fixture
def images(tmp_path) -> Path:
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        iio.imwrite(folder / f"img{i}.png", np.full((64, 64), 60 * i, np.uint8))
    return folder


def _full(result) -> str:
    line = result.error_line()
    assert "disk is full" in line and "kept" in line, line
    return line


def test_create_on_a_full_disk_leaves_nothing_and_can_be_retried(tmp_path, images):
    root = tmp_path / "p"
    _full(weaksam("create", root, images, "--copy", file_size_limit=LIMIT))
    assert not root.exists()
    assert weaksam("create", root, images, "--copy").code == 0
    assert Project.is_project(root)


def test_import_tags_on_a_full_disk_keeps_the_old_tags(tmp_path, images):
    root = tmp_path / "p"
    tags = tmp_path / "tags.csv"
    tags.write_text("filename,label\nimg0.png,1\nimg1.png,0\n", encoding="utf-8")
    assert weaksam("create", root, images, "--tags", tags).code == 0
    before = Saved.read(root)
    tags.write_text("filename,label\nimg0.png,0\nimg2.png,1\n", encoding="utf-8")
    _full(weaksam("import-tags", root, tags, file_size_limit=LIMIT))
    assert_intact(root, before)
    assert Saved.read(root).tags == before.tags


def test_export_tags_on_a_full_disk_leaves_no_partial_file(tmp_path, images):
    root = tmp_path / "p"
    assert weaksam("create", root, images).code == 0
    out = tmp_path / "out"
    out.mkdir()
    _full(weaksam("export-tags", root, out / "tags.csv", file_size_limit=64))
    assert list(out.iterdir()) == []


@pytest.mark.slow
def test_embed_on_a_full_disk_keeps_the_project_and_resumes(tmp_path):
    root = make_sample_project(tmp_path / "sample")
    add_history(root)
    before = Saved.read(root)
    _full(weaksam("embed", root, file_size_limit=256 * 1024))
    assert_intact(root, before)
    assert not list((root / "cache" / "embeddings").glob("*.zarr"))


@pytest.mark.slow
def test_run_on_a_full_disk_finishes_no_round(sample_copy):
    root = sample_copy()
    add_history(root)
    before = Saved.read(root)
    _full(weaksam("run", root, "--ensemble", "1", "--epochs", "1", file_size_limit=LIMIT))
    assert_intact(root, before)
    with Project.open(root) as project:  # reopened for writing: nothing is left running
        rounds = project.rounds.rounds()
        assert [r.status for r in rounds if r.status == "done"] == ["done"]
        assert all(r.status != "running" for r in rounds)
        assert all(project.labels.latest_proposal(i.id).round_id == rounds[0].id
                   for i in project.catalog.items())
