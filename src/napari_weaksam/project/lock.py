"""An exclusive, process-level lock on a project folder (released by the OS if the process dies)."""

from __future__ import annotations

import errno
import json
import os
import socket
from pathlib import Path
from typing import IO

from .errors import ProjectLockedError, ReadOnlyProjectError

if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(handle: IO[str]) -> bool:
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(handle: IO[str]) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(handle: IO[str]) -> bool:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True

    def _unlock(handle: IO[str]) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class ProjectLock:
    """Held by the one process that may write to a project."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        try:
            handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release()
        except OSError as error:
            if error.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
            raise ReadOnlyProjectError(
                f"{self.path.parent}: the project folder is not writable for you "
                f"({error.strerror}). Ask for write access, or use the commands that only read "
                "it (status, export, export-tags, evaluate) or open it read-only in napari."
            ) from error
        if not _try_lock(handle):
            holder = self.holder()
            handle.close()
            raise ProjectLockedError(
                f"{self.path.parent}: the project is open for writing by {holder}. Close it there, "
                "or open this project read-only (Project.open(..., read_only=True), "
                "`weaksam status` only reads)."
            )
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
        handle.flush()
        self._handle = handle

    def holder(self) -> str:
        """Who holds the lock, as written in the lock file."""
        try:
            info = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return "another process"
        if not info:
            return "another process"
        return f"process {info.get('pid')} on {info.get('host')}"

    def release(self) -> None:
        if self._handle is None:
            return
        _unlock(self._handle)
        self._handle.close()
        self._handle = None
