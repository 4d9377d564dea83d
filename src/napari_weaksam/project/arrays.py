"""Arrays of a project (masks, maps) as standalone zarr arrays, written atomically.

Every write goes to a fresh key: the array is written under ``.tmp/``, flushed to disk and renamed
into place, and only then does the catalog point to it. A crash at any moment therefore leaves
either the old state or the new one; leftovers are swept when the project is next opened for
writing.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from .errors import ProjectError, ReadOnlyProjectError

_TMP = ".tmp"


def _fsync_tree(folder: Path) -> None:
    """Flush every file under ``folder`` and the folders themselves to disk."""
    for dirpath, _dirnames, filenames in os.walk(folder):
        for name in filenames:
            with open(os.path.join(dirpath, name), "rb") as handle:
                os.fsync(handle.fileno())
        _fsync_dir(Path(dirpath))


def _fsync_dir(folder: Path) -> None:
    if os.name == "nt":  # pragma: no cover - directories cannot be fsynced on Windows
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _plane_chunks(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Chunks of at most 512x512 per plane, one plane deep."""
    if len(shape) < 2:
        return shape
    lead = (1,) * (len(shape) - 2)
    return lead + (min(shape[-2], 512), min(shape[-1], 512))


class ArrayStore:
    """Keyed arrays under ``<project>/arrays``; keys look like ``"masks/proposal/<uuid>"``."""

    def __init__(self, root: Path, *, read_only: bool = False) -> None:
        self.root = root
        self.read_only = read_only

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or any(p in ("", ".", "..") for p in parts) or parts[0] == _TMP:
            raise ProjectError(f"invalid array key {key!r}")
        return self.root.joinpath(*parts[:-1], parts[-1] + ".zarr")

    def new_key(self, prefix: str) -> str:
        """A key that has never been used, under ``prefix``."""
        return f"{prefix.strip('/')}/{uuid.uuid4().hex}"

    def write(self, prefix: str, array: np.ndarray, *, attrs: dict[str, Any] | None = None) -> str:
        """Write ``array`` atomically under a new key below ``prefix`` and return the key."""
        if self.read_only:
            raise ReadOnlyProjectError(
                f"{self.root.parent}: the project is open read-only; arrays cannot be written"
            )
        data = np.ascontiguousarray(array)
        key = self.new_key(prefix)
        staging = self.root / _TMP / uuid.uuid4().hex
        staging.parent.mkdir(parents=True, exist_ok=True)
        target = zarr.create_array(
            store=str(staging), shape=data.shape, dtype=data.dtype,
            chunks=_plane_chunks(data.shape), attributes=attrs or {},
        )
        target[...] = data
        _fsync_tree(staging)
        final = self._path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, final)
        _fsync_dir(final.parent)
        return key

    def open(self, key: str) -> zarr.Array:
        """The stored array, lazily."""
        path = self._path(key)
        if not path.exists():
            raise ProjectError(f"{path}: array {key!r} is missing from the project folder")
        return zarr.open_array(str(path), mode="r")

    def read(self, key: str) -> np.ndarray:
        return np.asarray(self.open(key)[...])

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def delete(self, key: str) -> None:
        shutil.rmtree(self._path(key), ignore_errors=True)

    def keys(self, prefix: str) -> list[str]:
        """Every stored key below ``prefix``."""
        base = self.root.joinpath(*prefix.strip("/").split("/"))
        if not base.is_dir():
            return []
        found = []
        for path in base.rglob("*.zarr"):
            rel = path.relative_to(self.root).with_suffix("")
            found.append(rel.as_posix())
        return sorted(found)

    def sweep(self, prefixes: Iterable[str], referenced: set[str]) -> list[str]:
        """Remove unfinished writes and arrays below ``prefixes`` that nothing refers to."""
        shutil.rmtree(self.root / _TMP, ignore_errors=True)
        removed = [k for p in prefixes for k in self.keys(p) if k not in referenced]
        for key in removed:
            self.delete(key)
        return removed
