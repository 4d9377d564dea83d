"""A writer killed with SIGKILL in the middle of each long command, and two writers at once.

After each kill the project opens for writing, its catalog is sound, everything saved before is
there, and what the dead process left half-done is never taken for finished work.
"""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from conftest_faults import (
    Saved,
    add_history,
    assert_intact,
    start_weaksam,
    wait_until,
    weaksam,
)

from napari_weaksam.project import Project
from napari_weaksam.sample import make_sample_project

pytestmark = pytest.mark.slow


def _count(root: Path, sql: str) -> int:
    conn = sqlite3.connect(f"{(root / 'catalog.sqlite').as_uri()}?mode=ro", uri=True)
    try:
        return int(conn.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:  # the catalog is being created
        return 0
    finally:
        conn.close()


def _kill(proc) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def _wait_for_line(proc, text: str, timeout: float = 600) -> None:
    for line in proc.stdout:
        if text in line:
            return
    raise AssertionError(f"the command ended before printing {text!r}: {proc.stderr.read()}")


def _done_round_of_ones(root: Path) -> dict[int, int]:
    """A finished round whose proposal for every item is all ones; returns proposal ids."""
    with Project.open(root) as project:
        round_id = project.rounds.start_round("manual")
        ids = {}
        for item in project.catalog.items():
            mask = np.ones((item.height, item.width), np.uint8)
            ids[item.id] = project.labels.add_proposal(item.id, mask, method="manual",
                                                       round_id=round_id).id
        project.rounds.finish_round(round_id, "done")
    return ids


@pytest.mark.parametrize("command", [["embed", "--batch-size", "1"], ["run", "--ensemble", "1"]],
                         ids=["embed", "run-embedding-stage"])
def test_killed_during_embedding(tmp_path, command):
    root = make_sample_project(tmp_path / "sample")
    add_history(root)
    before = Saved.read(root)
    assert before.reviews and before.rounds
    proc = start_weaksam(command[0], root, *command[1:])
    wait_until(lambda: len(list((root / "cache" / "embeddings").rglob("*.zarr"))) >= 2)
    _kill(proc)
    assert_intact(root, before)
    with Project.open(root) as project:
        assert len(project.catalog.items()) == 33
        assert [r.status for r in project.rounds.rounds()] == ["done"]


def test_killed_during_training_leaves_no_new_round(sample_copy):
    root = sample_copy()
    add_history(root)
    before = Saved.read(root)
    proc = start_weaksam("run", root, "--ensemble", "1")
    _wait_for_line(proc, "training: ")
    _kill(proc)
    assert_intact(root, before)
    with Project.open(root) as project:
        assert [r.status for r in project.rounds.rounds()] == ["done"]


def test_killed_during_pseudo_labels_keeps_the_previous_round_current(sample_copy, tmp_path):
    root = sample_copy()
    previous = _done_round_of_ones(root)
    before = Saved.read(root)
    proc = start_weaksam("run", root, "--ensemble", "1", "--epochs", "1", "--min-steps", "10")
    wait_until(lambda: _count(root, "SELECT COUNT(*) FROM proposals p JOIN rounds r ON"
                                    " r.id = p.round_id WHERE r.status = 'running'") >= 1)
    _kill(proc)
    assert_intact(root, before)
    status = weaksam("status", root)  # read-only: sees the round still 'running'
    assert status.code == 0
    with Project.open(root) as project:  # opened for writing: the dead round is interrupted
        assert [r.status for r in project.rounds.rounds()] == ["done", "interrupted"]
        for item in project.catalog.items():
            assert project.labels.latest_proposal(item.id).id == previous[item.id]
    assert "interrupted" in weaksam("status", root).out
    out = tmp_path / "export"
    assert weaksam("export", root, out, "--proposals").code == 0
    written = iio.imread(next(out.glob("adenocarcinoma*.tif")))
    assert written.min() == 1  # the previous round's all-ones masks, not the partial ones


def test_killed_during_import_keeps_the_sources_it_finished(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(300):
        iio.imwrite(folder / f"img{i:03d}.png", np.full((64, 64), i % 256, np.uint8))
    root = tmp_path / "p"
    proc = start_weaksam("create", root, folder)
    wait_until(lambda: (root / "project.json").exists()
               and _count(root, "SELECT COUNT(*) FROM sources") >= 5, every=0.05)
    _kill(proc)
    with Project.open(root) as project:
        kept = project.catalog.sources()
        assert all(len(project.catalog.items(s.id)) == 1 for s in kept)
    result = weaksam("add", root, folder)
    assert result.code == 0 and f"{len(kept)} already in the project" in result.out
    with Project.open(root, read_only=True) as project:
        assert project.catalog.count_items() == 300


def test_killed_during_export_changes_nothing_in_the_project(sample_copy, tmp_path):
    root = sample_copy()
    add_history(root)
    before = Saved.read(root)
    proc = start_weaksam("export", root, tmp_path / "out", "--proposals", "--format", "nifti")
    wait_until(lambda: (tmp_path / "out").exists(), every=0.02)
    _kill(proc)
    assert_intact(root, before)


def test_a_second_writer_is_told_who_holds_the_project(sample_copy, tmp_path):
    root = sample_copy()
    add_history(root)
    before = Saved.read(root)
    holder = start_weaksam("run", root, "--ensemble", "1")
    try:
        _wait_for_line(holder, "training: ")
        tags = tmp_path / "tags.csv"
        tags.write_text("filename,label\nbrain1.nii.gz,0\n", encoding="utf-8")
        line = weaksam("import-tags", root, tags).error_line()
        assert "open for writing by process" in line and str(holder.pid) in line
        assert weaksam("status", root).code == 0  # a reader is never refused
    finally:
        _kill(holder)
    assert_intact(root, before)
