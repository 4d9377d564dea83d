"""What went wrong, in one line a person can act on (the CLI prints it; docks show it).

Every write of a project is atomic (see docs/architecture.md), so a failure mid-command loses
nothing that was saved before it; the messages say so where it matters.
"""

from __future__ import annotations

import errno
import sqlite3

from .io import ImageReadError
from .project import ProjectError

_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
KEPT = "everything saved before is kept"


def describe_failure(error: BaseException, where: str = "") -> tuple[str, int]:
    """``(one-line message, exit code)`` for an error that ended a command.

    ``where`` names what the command was working on (a project folder) when the error itself
    names no file. Exit codes: 2 for a value the person gave, 1 for everything else.
    """
    if isinstance(error, ProjectError | ImageReadError | FileNotFoundError):
        return str(error), 1
    if isinstance(error, ValueError):  # an OptionError too: a value the person gave
        return str(error), 2
    if _is_full(error):
        target = _target(error, where)
        return (f"the disk is full (or a file-size limit was reached) while writing {target}: "
                f"free some space and run the command again; {KEPT}"), 1
    if isinstance(error, PermissionError) or _sqlite_code(error) == sqlite3.SQLITE_READONLY:
        target = _target(error, where)
        return (f"permission denied writing {target}: ask for write access to the project "
                "folder, or use a command that only reads it (status, export, export-tags, "
                "evaluate)"), 1
    if isinstance(error, MemoryError):
        return (f"out of memory{' in ' + where if where else ''}: close other programs or use "
                f"a smaller batch or image size; {KEPT}"), 1
    if isinstance(error, OSError):
        return f"{_target(error, where)}: {error.strerror or error}; {KEPT}", 1
    detail = str(error).strip().splitlines()
    first = detail[0] if detail else ""
    return (f"{type(error).__name__}: {first} ({KEPT}; run again with --debug for the details, "
            "and please report it)"), 1


def _is_full(error: BaseException) -> bool:
    if isinstance(error, OSError) and error.errno in _FULL:
        return True
    code = _sqlite_code(error)
    if code in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR):
        return True
    text = str(error)
    # torch.save reports a failed write as a RuntimeError from its zip writer
    return isinstance(error, RuntimeError) and ("file write failed" in text
                                                or "PytorchStreamWriter failed" in text)


def _sqlite_code(error: BaseException) -> int | None:
    if not isinstance(error, sqlite3.Error):
        return None
    code = getattr(error, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def _target(error: BaseException, where: str) -> str:
    filename = getattr(error, "filename", None)
    return str(filename) if filename else (where or "the project")
