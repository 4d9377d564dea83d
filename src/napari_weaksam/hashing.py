"""SHA-256 of files, read in 1 MiB blocks so large files never sit in memory."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any


def update_from_file(digest: Any, path: Path) -> None:
    """Feed the bytes of ``path`` into ``digest``."""
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    update_from_file(digest, path)
    return digest.hexdigest()


def content_sha256(path: Path) -> str:
    """Hash of a file's bytes; for a folder (zarr), of its file names and bytes."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(file.relative_to(path).as_posix().encode())
        update_from_file(digest, file)
    return digest.hexdigest()
