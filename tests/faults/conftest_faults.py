"""The fault suite: bad input, full disks, read-only folders, killed writers, hostile files.

Each case checks the same three things: the command ends with one line naming the file or value
and what to do (no traceback), the catalog passes ``PRAGMA integrity_check``, and every tag,
review and finished round saved before the fault is still there. The number of fault cases run
is printed at the end of the test session.
"""

from __future__ import annotations

import os
import resource
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

FAULTS_DIR = Path(__file__).parent


@dataclass
class Finished:
    code: int
    out: str
    err: str

    def error_line(self) -> str:
        """The one-line message of a failed command (asserting there is no traceback)."""
        assert self.code != 0, f"expected a failure, got exit 0:\n{self.out}\n{self.err}"
        assert "Traceback" not in self.err, self.err
        lines = [line for line in self.err.splitlines() if line.startswith("weaksam: error:")]
        assert len(lines) == 1, f"expected one error line, got:\n{self.err}"
        return lines[0]


def weaksam(*args: str, file_size_limit: int | None = None, user: int | None = None,
            env: dict[str, str] | None = None, timeout: float = 600) -> Finished:
    """Run the ``weaksam`` command in a child process (optionally with RLIMIT_FSIZE, or as
    another user), and wait for it."""
    proc = subprocess.run([sys.executable, "-m", "napari_weaksam.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout,
                          preexec_fn=_limits(file_size_limit, user),
                          env=os.environ | (env or {}))
    return Finished(proc.returncode, proc.stdout, proc.stderr)


def start_weaksam(*args: str) -> subprocess.Popen:
    """Start ``weaksam`` without waiting (to kill it mid-way)."""
    return subprocess.Popen([sys.executable, "-m", "napari_weaksam.cli", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _limits(file_size_limit: int | None, user: int | None):
    if file_size_limit is None and user is None:
        return None

    def apply() -> None:
        if file_size_limit is not None:  # writes past it fail with EFBIG, like a full disk
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))
        if user is not None:
            os.setgid(user)
            os.setuid(user)

    return apply


def wait_until(condition, timeout: float = 300, every: float = 0.2) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("the condition was not reached in time")
        time.sleep(every)


@dataclass(frozen=True)
class Saved:
    """What a person has saved in a project: tags, reviews and finished rounds."""

    tags: frozenset
    tagged: frozenset
    reviews: frozenset
    rounds: frozenset

    @classmethod
    def read(cls, root: Path) -> Saved:
        conn = _connect(root)
        try:
            rows = lambda sql: frozenset(tuple(r) for r in conn.execute(sql))  # noqa: E731
            return cls(
                tags=rows("SELECT item_id, class_id FROM tags"),
                tagged=rows("SELECT id FROM items WHERE tagged_at IS NOT NULL"),
                reviews=rows("SELECT item_id, state, proposal_id, array_key FROM reviews"),
                rounds=rows("SELECT id, method, status FROM rounds WHERE status = 'done'"),
            )
        finally:
            conn.close()


def add_history(root: Path) -> None:
    """What a person has done before the fault: a finished round of proposals, one accepted and
    one corrected, so that reviews and rounds are there to lose."""
    import numpy as np

    from napari_weaksam.project import Project

    with Project.open(root) as project:
        round_id = project.rounds.start_round("manual")
        items = project.catalog.items()
        for item in items:
            mask = np.ones((item.height, item.width), np.uint8)
            project.labels.add_proposal(item.id, mask, method="manual", round_id=round_id)
        project.rounds.finish_round(round_id, "done")
        project.labels.review(items[0].id, "accepted")
        corrected = np.zeros((items[1].height, items[1].width), np.uint8)
        corrected[:4, :4] = 1
        project.labels.review(items[1].id, "corrected", corrected)


def _connect(root: Path) -> sqlite3.Connection:
    """A read-only connection (immutable where the folder cannot be written)."""
    mode = "ro" if os.access(root, os.W_OK) else "ro&immutable=1"
    return sqlite3.connect(f"{(root / 'catalog.sqlite').as_uri()}?mode={mode}", uri=True)


def assert_intact(root: Path, before: Saved) -> None:
    """The catalog is sound and holds everything saved before the fault."""
    conn = _connect(root)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    after = Saved.read(root)
    assert before.tags <= after.tags and before.tagged <= after.tagged
    assert before.reviews <= after.reviews
    assert before.rounds <= after.rounds


def _in_faults(nodeid: str) -> bool:
    return f"/{FAULTS_DIR.name}/" in "/" + nodeid.split("::")[0]


def pytest_terminal_summary(terminalreporter) -> None:
    ran = [report for key in ("passed", "failed")
           for report in terminalreporter.stats.get(key, [])
           if report.when == "call" and _in_faults(report.nodeid)]
    if ran:
        failed = sum(report.failed for report in ran)
        terminalreporter.write_line(f"fault suite: {len(ran)} fault cases ran, {failed} failed")
