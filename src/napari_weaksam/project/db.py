"""The SQLite connection behind a project: WAL journal, full sync, explicit transactions."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import ReadOnlyProjectError
from .schema import check_readable, migrate


def utc_now() -> str:
    """An ISO-8601 UTC timestamp with milliseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def to_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=_json_default)


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in the project catalog")


class Database:
    """One connection to ``catalog.sqlite``; writes go through :meth:`transaction`.

    The connection may be used from a background thread (imports, training jobs): every statement
    and every transaction holds one re-entrant lock, so they never interleave.
    """

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self._lock = threading.RLock()
        if read_only:
            # A WAL catalog is read through its -shm file, which cannot be made in a folder this
            # process may not write: there the catalog is read as immutable (a snapshot).
            mode = "ro" if os.access(path.parent, os.W_OK) else "ro&immutable=1"
            uri = f"{path.resolve().as_uri()}?mode={mode}"
            self.conn = sqlite3.connect(
                uri, uri=True, isolation_level=None, timeout=30, check_same_thread=False
            )
        else:
            self.conn = sqlite3.connect(
                path, isolation_level=None, timeout=30, check_same_thread=False
            )
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = FULL")
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA foreign_keys = ON")
        if read_only:
            check_readable(self.conn, str(path))
        else:
            migrate(self.conn, str(path))

    def ensure_writable(self) -> None:
        if self.read_only:
            raise ReadOnlyProjectError(
                f"{self.path.parent}: the project is open read-only; close the other "
                "napari-weaksam window or process that has it open for writing, then reopen it."
            )

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the block as one atomic write (``BEGIN IMMEDIATE`` … ``COMMIT``)."""
        self.ensure_writable()
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def rows(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self.conn.execute(sql, params).fetchall()

    def row(self, sql: str, params: tuple | dict = ()) -> sqlite3.Row | None:
        with self._lock:
            return self.conn.execute(sql, params).fetchone()

    def scalar(self, sql: str, params: tuple | dict = ()) -> Any:
        with self._lock:
            found = self.conn.execute(sql, params).fetchone()
        return None if found is None else found[0]

    def close(self) -> None:
        with self._lock:
            self.conn.close()
