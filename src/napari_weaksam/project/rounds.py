"""Training rounds, their checkpoints and background jobs, as recorded in the catalog."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..hashing import file_sha256
from ..progress import Cancelled
from .db import Database, to_json, utc_now
from .errors import ProjectError

FINISHED = ("done", "failed", "cancelled")
INTERRUPTED = "interrupted"   # left running by a process that died; found when next opened


@dataclass(frozen=True)
class Round:
    id: int
    method: str
    params: dict[str, Any]
    status: str
    checkpoint_id: int | None
    metrics: dict[str, Any]
    started_at: str
    finished_at: str | None


@dataclass(frozen=True)
class Checkpoint:
    id: int
    round_id: int | None
    path: Path
    sha256: str
    description: str


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    status: str
    progress: float
    message: str


class RoundLog:
    """Rounds, checkpoints (files under ``<project>/checkpoints``) and jobs."""

    def __init__(self, db: Database, checkpoint_dir: Path) -> None:
        self.db = db
        self.checkpoint_dir = checkpoint_dir

    def start_round(self, method: str, params: dict[str, Any] | None = None) -> int:
        with self.db.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO rounds (method, params, status, started_at) VALUES (?,?,?,?)",
                (method, to_json(params or {}), "running", utc_now()),
            )
        return int(cur.lastrowid)

    def finish_round(self, round_id: int, status: str, *, metrics: dict[str, Any] | None = None,
                     checkpoint_id: int | None = None) -> None:
        if status not in FINISHED:
            raise ProjectError(f"a round finishes as one of {FINISHED}, not {status!r}")
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE rounds SET status = ?, metrics = ?, checkpoint_id = ?, finished_at = ?"
                " WHERE id = ?",
                (status, to_json(metrics or {}), checkpoint_id, utc_now(), round_id),
            )

    def abandon_round(self, round_id: int, error: BaseException) -> None:
        """Record why a round ended early: ``cancelled`` when stopped, else ``failed``.

        Never masks ``error``: when even this write fails (a full disk), the round stays
        'running' and is marked interrupted when the project is next opened.
        """
        stopped = isinstance(error, KeyboardInterrupt | Cancelled)
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        with contextlib.suppress(Exception):  # the original error is the one to report
            self.finish_round(round_id, "cancelled" if stopped else "failed",
                              metrics={"error": reason})

    def rounds(self) -> list[Round]:
        return [_round(r) for r in self.db.rows("SELECT * FROM rounds ORDER BY id")]

    def add_checkpoint(self, file: Path, *, round_id: int | None = None,
                       description: str = "") -> Checkpoint:
        """Copy a checkpoint file into the project (atomically) and record it."""
        self.db.ensure_writable()
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        name = f"{uuid.uuid4().hex}{''.join(Path(file).suffixes) or '.pt'}"
        staging = self.checkpoint_dir / f".{name}.partial"
        shutil.copyfile(file, staging)
        with open(staging, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(staging, self.checkpoint_dir / name)
        relpath = f"checkpoints/{name}"
        sha = file_sha256(self.checkpoint_dir / name)
        with self.db.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO checkpoints (round_id, relpath, sha256, description, created_at)"
                " VALUES (?,?,?,?,?)",
                (round_id, relpath, sha, description, utc_now()),
            )
        return self.checkpoint(int(cur.lastrowid))

    def checkpoint(self, checkpoint_id: int) -> Checkpoint:
        row = self.db.row("SELECT * FROM checkpoints WHERE id = ?", (checkpoint_id,))
        if row is None:
            raise ProjectError(f"no checkpoint with id {checkpoint_id}")
        path = self.checkpoint_dir.parent / row["relpath"]
        return Checkpoint(row["id"], row["round_id"], path, row["sha256"], row["description"])

    def start_job(self, kind: str, params: dict[str, Any] | None = None) -> int:
        with self.db.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO jobs (kind, params, status, pid, started_at) VALUES (?,?,?,?,?)",
                (kind, to_json(params or {}), "running", os.getpid(), utc_now()),
            )
        return int(cur.lastrowid)

    def update_job(self, job_id: int, *, progress: float | None = None,
                   message: str | None = None, status: str | None = None) -> None:
        sets, values = [], []
        for column, value in (("progress", progress), ("message", message), ("status", status)):
            if value is not None:
                sets.append(f"{column} = ?")
                values.append(value)
        if status in FINISHED:
            sets.append("finished_at = ?")
            values.append(utc_now())
        if sets:
            with self.db.transaction() as conn:
                conn.execute(f"UPDATE jobs SET {', '.join(sets)} WHERE id = ?", (*values, job_id))

    def jobs(self) -> list[Job]:
        rows = self.db.rows("SELECT id, kind, status, progress, message FROM jobs ORDER BY id")
        return [Job(*r) for r in rows]

    def mark_interrupted(self) -> int:
        """Rounds and jobs left 'running' by a process that died become 'interrupted'.

        Called when the project is opened for writing: the lock guarantees no live process is
        running them. Returns how many rounds were interrupted; their partial proposals stay as
        history and never become the current ones.
        """
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE jobs SET status = ?, message = 'the process running it ended',"
                " finished_at = ? WHERE status = 'running'", (INTERRUPTED, utc_now()),
            )
            cur = conn.execute(
                "UPDATE rounds SET status = ?, finished_at = ? WHERE status = 'running'",
                (INTERRUPTED, utc_now()),
            )
        return cur.rowcount


def _round(row) -> Round:
    return Round(
        id=row["id"], method=row["method"], params=json.loads(row["params"]),
        status=row["status"], checkpoint_id=row["checkpoint_id"],
        metrics=json.loads(row["metrics"]), started_at=row["started_at"],
        finished_at=row["finished_at"],
    )
