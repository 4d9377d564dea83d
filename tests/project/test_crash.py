"""A writer killed with SIGKILL mid-write loses nothing it reported as committed."""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest
from project_helpers import add_fake_items

from napari_weaksam.project import Project
from napari_weaksam.project.labels import CORRECTION_PREFIX, PROPOSAL_PREFIX

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

N_ITEMS = 80

WRITER = """
import sys
import numpy as np
from napari_weaksam.project import Project

def expected_mask(step):
    mask = np.full((256, 256), step % 250 + 1, dtype=np.uint8)
    mask[step % 256, :] = 0
    return mask

project = Project.open(sys.argv[1])
tumour = project.catalog.class_by_name("tumour").id
items = project.catalog.items()
print("ready", flush=True)
step = 0
while True:
    item = items[step % len(items)]
    present = project.catalog.toggle_tag(item.id, tumour)
    print(f"tag {step} {int(present)}", flush=True)
    project.labels.add_proposal(item.id, expected_mask(step), method="crash",
                                params={"step": step})
    print(f"proposal {step}", flush=True)
    step += 1
"""


def expected_mask(step: int) -> np.ndarray:
    mask = np.full((256, 256), step % 250 + 1, dtype=np.uint8)
    mask[step % 256, :] = 0
    return mask


@pytest.fixture
def root(tmp_path):
    with Project.create(tmp_path / "p") as project:
        add_fake_items(project, N_ITEMS)
        project.catalog.add_class("tumour")
    return tmp_path / "p"


def _run_and_kill(spawn, root, n_committed: int, delay: float) -> list[str]:
    """Start the writer, read ``n_committed`` commit lines, wait ``delay`` s, SIGKILL it.

    Returns every line the writer printed before it died: each one is a committed write.
    """
    writer = spawn(WRITER, str(root))
    writer.wait_for("ready")
    lines = [writer.readline() for _ in range(n_committed)]
    time.sleep(delay)
    writer.kill()
    assert writer.proc.returncode == -9
    return lines + writer.drain()


@pytest.mark.parametrize("n_committed, delay", [(1, 0.0), (7, 0.002), (24, 0.011)])
def test_killed_writer_loses_no_committed_write(root, spawn, n_committed, delay):
    lines = _run_and_kill(spawn, root, n_committed, delay)
    tagged_steps = [int(line.split()[1]) for line in lines if line.startswith("tag")]
    proposed_steps = [int(line.split()[1]) for line in lines if line.startswith("proposal")]
    assert len(lines) >= n_committed
    assert len(lines) < 2 * N_ITEMS - 2, "the writer went through every item before the kill"

    with Project.open(root) as project:
        assert project.db.scalar("PRAGMA integrity_check") == "ok"
        tumour = project.catalog.class_by_name("tumour").id
        items = project.catalog.items()
        tags = project.catalog.all_tags()
        last = max(tagged_steps)
        for step, item in enumerate(items):
            if step <= last:  # reported: must be there
                assert tags.get(item.id) == {tumour}, f"tag of step {step} lost"
            elif step > last + 1:  # never started: must not be there
                assert item.id not in tags
            else:  # the write in flight at the kill: all or nothing
                assert tags.get(item.id) in (None, {tumour})

        proposals = project.db.rows("SELECT * FROM proposals ORDER BY id")
        by_item = {}
        for row in proposals:
            by_item.setdefault(row["item_id"], []).append(row)
        for step in proposed_steps:
            assert len(by_item.get(items[step].id, [])) == 1, f"proposal of step {step} lost"
        assert len(proposals) in (len(proposed_steps), len(proposed_steps) + 1)
        for row in proposals:  # every stored proposal, reported or not, is whole
            (step,) = [s for s, item in enumerate(items) if item.id == row["item_id"]]
            assert project.arrays.exists(row["array_key"])
            proposal = project.labels.proposal(row["id"])
            assert proposal.params == {"step": step}
            np.testing.assert_array_equal(project.labels.proposal_mask(proposal),
                                          expected_mask(step))

        assert not (project.arrays.root / ".tmp").exists()
        stored = set(project.arrays.keys(PROPOSAL_PREFIX)) | set(
            project.arrays.keys(CORRECTION_PREFIX))
        assert stored == project.labels.referenced_keys()


def test_project_is_writable_again_after_repeated_kills(root, spawn):
    for n in (2, 5):
        _run_and_kill(spawn, root, n, 0.001)
    with Project.open(root) as project:
        assert project.db.scalar("PRAGMA integrity_check") == "ok"
        item = project.catalog.items()[-1]
        project.labels.add_proposal(item.id, expected_mask(0), method="after")
        assert project.labels.latest_proposal(item.id).method == "after"


def test_read_only_open_right_after_a_kill_sees_committed_writes(root, spawn):
    lines = _run_and_kill(spawn, root, 6, 0.0)
    tagged = {int(line.split()[1]) for line in lines if line.startswith("tag")}
    with Project.open(root, read_only=True) as project:
        items = project.catalog.items()
        tags = project.catalog.all_tags()
        assert all(items[step].id in tags for step in tagged)
