"""One writer per project: the lock, read-only access while another process writes."""

from __future__ import annotations

import os

import numpy as np
import pytest
from project_helpers import add_fake_items

from napari_weaksam.project import Project, ProjectLockedError, ReadOnlyProjectError

HOLD = """
import sys, time
from napari_weaksam.project import Project
project = Project.open(sys.argv[1])
tumour = project.catalog.ensure_class("tumour")
first = project.catalog.items()[0]
project.catalog.set_tags(first.id, {tumour.id})
print("ready", flush=True)
for line in sys.stdin:  # one more tag per line received
    item = project.catalog.items()[int(line)]
    project.catalog.set_tags(item.id, {tumour.id})
    print("tagged", flush=True)
time.sleep(600)
"""

TRY_WRITE = """
import sys
from napari_weaksam.project import Project, ProjectLockedError
try:
    Project.open(sys.argv[1])
except ProjectLockedError as error:
    print("locked:", error, flush=True)
else:
    print("opened", flush=True)
"""

READ = """
import sys
from napari_weaksam.project import Project
project = Project.open(sys.argv[1], read_only=True)
print("ready", flush=True)
for _line in sys.stdin:
    print(len(project.catalog.all_tags()), flush=True)
"""


@pytest.fixture
def root(tmp_path):
    with Project.create(tmp_path / "p") as project:
        add_fake_items(project, 5)
    return tmp_path / "p"


def test_second_process_gets_locked_error_naming_this_pid(root, spawn):
    with Project.open(root):
        answer = spawn(TRY_WRITE, str(root)).readline()
    assert answer.startswith("locked:")
    assert f"process {os.getpid()} on" in answer
    assert "read-only" in answer


def test_lock_is_free_after_a_clean_close(root):
    Project.open(root).close()
    with Project.open(root) as project:  # a second open in this process would also be refused
        with pytest.raises(ProjectLockedError):
            Project.open(root)
        assert project.catalog.count_items() == 5


def test_holder_pid_is_named_and_lock_frees_when_holder_is_killed(root, spawn):
    holder = spawn(HOLD, str(root))
    holder.wait_for("ready")
    with pytest.raises(ProjectLockedError, match=f"process {holder.pid} on"):
        Project.open(root)
    holder.kill()
    with Project.open(root) as project:
        assert len(project.catalog.all_tags()) == 1


def test_read_only_sees_commits_of_a_live_writer(root, spawn):
    holder = spawn(HOLD, str(root))
    holder.wait_for("ready")
    with Project.open(root, read_only=True) as reader:
        assert len(reader.catalog.all_tags()) == 1
        assert holder.ask("3") == "tagged"
        assert holder.ask("4") == "tagged"
        tumour = reader.catalog.class_by_name("tumour").id
        tagged = {reader.catalog.item(i).name for i, t in reader.catalog.all_tags().items()
                  if t == {tumour}}
        assert tagged == {"fake z000", "fake z003", "fake z004"}


def test_read_only_process_sees_commits_of_this_writer(root, spawn):
    with Project.open(root) as project:
        tumour = project.catalog.add_class("tumour")
        items = project.catalog.items()
        reader = spawn(READ, str(root))
        reader.wait_for("ready")
        assert reader.ask() == "0"
        project.catalog.set_tags(items[0].id, {tumour.id})
        assert reader.ask() == "1"
        project.catalog.set_many_tags({items[1].id: set(), items[2].id: {tumour.id}})
        assert reader.ask() == "3"


@pytest.mark.parametrize("write", [
    lambda p: p.catalog.add_class("x"),
    lambda p: p.catalog.set_tags(p.catalog.items()[0].id, set()),
    lambda p: p.catalog.clear_tags(p.catalog.items()[0].id),
    lambda p: p.set_setting("k", 1),
    lambda p: p.rounds.start_round("cam"),
    lambda p: p.rounds.start_job("train"),
    lambda p: p.labels.review(p.catalog.items()[0].id, "rejected"),
], ids=["add_class", "set_tags", "clear_tags", "set_setting", "start_round", "start_job",
        "review"])
def test_writes_through_read_only_project_raise(root, write):
    with Project.open(root, read_only=True) as project:
        with pytest.raises(ReadOnlyProjectError, match="read-only"):
            write(project)
        assert project.catalog.all_tags() == {}
        assert project.catalog.classes() == []


def test_add_proposal_through_read_only_project_raises_read_only_error(root):
    with Project.open(root, read_only=True) as project:
        item = project.catalog.items()[0]
        with pytest.raises(ReadOnlyProjectError):
            project.labels.add_proposal(item.id, np.zeros((256, 256), np.uint8), method="m")


def test_read_only_open_does_not_take_the_lock(root):
    with Project.open(root, read_only=True), Project.open(root) as writer:
        assert not writer.read_only
