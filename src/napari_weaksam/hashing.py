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
