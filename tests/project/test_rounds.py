"""Rounds, checkpoints and jobs, including jobs left running by a killed process."""

from __future__ import annotations

import hashlib

import pytest

from napari_weaksam.project import Project, ProjectError
from napari_weaksam.project.rounds import file_sha256


@pytest.fixture
def weights(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(bytes(range(256)) * 500)
    return path


def test_round_starts_running_and_finishes_with_metrics(project):
    rid = project.rounds.start_round("cam", {"epochs": 3})
    (started,) = project.rounds.rounds()
    assert (started.id, started.status, started.params) == (rid, "running", {"epochs": 3})
    assert started.finished_at is None
    project.rounds.finish_round(rid, "done", metrics={"dice": 0.81})
    (done,) = project.rounds.rounds()
    assert (done.status, done.metrics) == ("done", {"dice": 0.81})
    assert done.finished_at is not None


def test_round_cannot_finish_as_running(project):
    rid = project.rounds.start_round("cam")
    with pytest.raises(ProjectError, match="not 'running'"):
        project.rounds.finish_round(rid, "running")


def test_checkpoint_is_copied_into_project_with_sha256(project, weights):
    rid = project.rounds.start_round("sam")
    ckpt = project.rounds.add_checkpoint(weights, round_id=rid, description="after round 1")
    assert ckpt.path.parent == project.root / "checkpoints"
    assert ckpt.path.suffix == ".pt"
    assert ckpt.path.read_bytes() == weights.read_bytes()
    assert ckpt.sha256 == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert file_sha256(ckpt.path) == ckpt.sha256
    assert (ckpt.round_id, ckpt.description) == (rid, "after round 1")
    assert not list(ckpt.path.parent.glob(".*.partial"))


def test_checkpoint_survives_reopen_without_the_original(tmp_path, weights):
    with Project.create(tmp_path / "p") as project:
        rid = project.rounds.start_round("sam")
        ckpt = project.rounds.add_checkpoint(weights, round_id=rid)
        project.rounds.finish_round(rid, "done", checkpoint_id=ckpt.id)
    weights.unlink()
    with Project.open(tmp_path / "p") as project:
        (done,) = project.rounds.rounds()
        again = project.rounds.checkpoint(done.checkpoint_id)
        assert again == ckpt
        assert file_sha256(again.path) == again.sha256


def test_two_checkpoints_of_the_same_file_get_distinct_paths(project, weights):
    a = project.rounds.add_checkpoint(weights)
    b = project.rounds.add_checkpoint(weights)
    assert a.path != b.path and a.sha256 == b.sha256


def test_unknown_checkpoint_raises(project):
    with pytest.raises(ProjectError, match="no checkpoint with id 5"):
        project.rounds.checkpoint(5)


def test_job_progress_and_finish(project):
    job = project.rounds.start_job("embed", {"items": 10})
    project.rounds.update_job(job, progress=0.5, message="5/10")
    (running,) = project.rounds.jobs()
    assert (running.status, running.progress, running.message) == ("running", 0.5, "5/10")
    project.rounds.update_job(job, status="done", progress=1.0)
    (done,) = project.rounds.jobs()
    assert (done.status, done.progress) == ("done", 1.0)
    finished = project.db.scalar("SELECT finished_at FROM jobs WHERE id = ?", (job,))
    assert finished is not None


def test_partial_checkpoint_is_removed_on_reopen(tmp_path):
    Project.create(tmp_path / "p").close()
    partial = tmp_path / "p" / "checkpoints" / ".abc.pt.partial"
    partial.write_bytes(b"half")
    Project.open(tmp_path / "p").close()
    assert not partial.exists()


KILLED_TRAINER = """
import sys, time
from napari_weaksam.project import Project
project = Project.open(sys.argv[1])
done = project.rounds.start_round("cam")
project.rounds.finish_round(done, "done")
project.rounds.start_round("sam")
job = project.rounds.start_job("train")
project.rounds.update_job(job, progress=0.3, message="epoch 3")
finished = project.rounds.start_job("embed")
project.rounds.update_job(finished, status="done")
print("running", flush=True)
time.sleep(600)
"""


def test_jobs_of_a_killed_process_are_marked_interrupted_on_reopen(tmp_path, spawn):
    Project.create(tmp_path / "p").close()
    trainer = spawn(KILLED_TRAINER, str(tmp_path / "p"))
    trainer.wait_for("running")
    with Project.open(tmp_path / "p", read_only=True) as reader:  # seen live, not yet fixed
        assert [j.status for j in reader.rounds.jobs()] == ["running", "done"]
    trainer.kill()
    with Project.open(tmp_path / "p") as project:
        train, embed = project.rounds.jobs()
        assert (train.status, train.progress) == ("interrupted", 0.3)
        assert "ended" in train.message
        assert (embed.status, embed.message) == ("done", "")
        assert [r.status for r in project.rounds.rounds()] == ["done", "interrupted"]
        assert project.rounds.mark_interrupted() == 0


def test_mark_interrupted_counts_running_rounds(project):
    project.rounds.start_job("a")
    done = project.rounds.start_job("c")
    project.rounds.update_job(done, status="cancelled")
    project.rounds.start_round("x")
    project.rounds.start_round("y")
    assert project.rounds.mark_interrupted() == 2
    assert [j.status for j in project.rounds.jobs()] == ["interrupted", "cancelled"]
    assert [r.status for r in project.rounds.rounds()] == ["interrupted", "interrupted"]


def test_read_only_add_checkpoint_writes_nothing(tmp_path, weights):
    Project.create(tmp_path / "p").close()
    with Project.open(tmp_path / "p", read_only=True) as project, pytest.raises(ProjectError):
        project.rounds.add_checkpoint(weights)
    assert list((tmp_path / "p" / "checkpoints").iterdir()) == []
