"""A project: one folder a person can copy, holding the catalog, arrays and checkpoints.

Layout::

    <project>/
      project.json        marker with the format version
      catalog.sqlite      items, classes, tags, labels, rounds, jobs (SQLite, WAL)
      arrays/             masks and maps (zarr), written atomically
      checkpoints/        model weights of each round
      cache/              recomputable data (embeddings)
      .lock               held by the one process that writes
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..backbones.embedding_cache import EmbeddingCache
    from ..backbones.sam import SamBackbone

from .. import __version__
from ..hashing import content_sha256
from ..io import ImageData, item_plane, read_image, tile_plane
from .arrays import ArrayStore
from .catalog import Catalog, Item, Source
from .db import Database, to_json
from .errors import ProjectError
from .labels import CORRECTION_PREFIX, PROPOSAL_PREFIX, LabelStore
from .lock import ProjectLock
from .maps import MAP_PREFIX, MapStore
from .rounds import RoundLog

MARKER = "project.json"
CATALOG = "catalog.sqlite"
FORMAT = "napari-weaksam project"


class Project:
    """Open with :meth:`create` or :meth:`open`; close (or use ``with``) when done."""

    def __init__(self, root: Path, *, read_only: bool) -> None:
        self.root = root
        self.read_only = read_only
        self._lock = ProjectLock(root / ".lock")
        if not read_only:
            self._lock.acquire()
        try:
            self.db = Database(root / CATALOG, read_only=read_only)
        except Exception:
            self._lock.release()
            raise
        self.arrays = ArrayStore(root / "arrays", read_only=read_only)
        self.catalog = Catalog(self.db)
        self.labels = LabelStore(self.db, self.arrays)
        self.rounds = RoundLog(self.db, root / "checkpoints")
        self.maps = MapStore(self.db, self.arrays)
        self._load_source = lru_cache(maxsize=4)(self._read_source)
        self._verified: set[int] = set()   # sources whose bytes were checked against the catalog
        if not read_only:
            self._recover()

    # -- opening -----------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, *, exist_ok: bool = False) -> Project:
        """Make a new project folder (or open it, with ``exist_ok``)."""
        root = Path(path).expanduser().absolute()
        if exist_ok and (root / MARKER).exists():
            return cls.open(root)
        cls.check_new_folder(root)
        root.mkdir(parents=True, exist_ok=True)
        for sub in ("arrays", "checkpoints", "cache"):
            (root / sub).mkdir(exist_ok=True)
        project = cls(root, read_only=False)
        marker = {"format": FORMAT, "created_with": __version__}
        tmp = root / f".{MARKER}.partial"
        tmp.write_text(json.dumps(marker, indent=2), encoding="utf-8")
        os.replace(tmp, root / MARKER)  # written last: a half-made folder is not a project
        return project

    @staticmethod
    def check_new_folder(root: Path) -> None:
        """A ProjectError unless a new project may be made at ``root`` (new or empty)."""
        if (root / MARKER).exists():
            raise ProjectError(f"{root}: a project already exists here; open it instead")
        if root.exists() and any(root.iterdir()):
            raise ProjectError(f"{root}: folder is not empty; choose a new or empty folder")

    @classmethod
    def open(cls, path: str | Path, *, read_only: bool = False) -> Project:
        """Open an existing project; ``read_only`` works while another process writes."""
        root = Path(path).expanduser().absolute()
        if not (root / MARKER).is_file() or not (root / CATALOG).is_file():
            raise ProjectError(
                f"{root}: not a napari-weaksam project (no {MARKER}); "
                "create one with `weaksam create` or the Tag tab of the WeakSAM panel"
            )
        return cls(root, read_only=read_only)

    @staticmethod
    def is_project(path: str | Path) -> bool:
        return (Path(path) / MARKER).is_file()

    def check_outside(self, path: str | Path, what: str) -> Path:
        """``path`` resolved; a ProjectError when it lies inside the project folder, where a
        file written by an export could replace the catalog, a source or an array."""
        resolved, root = Path(path).expanduser().resolve(), self.root.resolve()
        if resolved == root or root in resolved.parents:
            raise ProjectError(
                f"{path}: {what} would be written inside the project folder {self.root}, "
                "where it could replace the project's own files; choose a place outside it"
            )
        return resolved

    def close(self) -> None:
        self.db.close()
        self._lock.release()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _recover(self) -> None:
        """Finish what a crash left: drop half-written arrays, fail jobs that died."""
        referenced = self.labels.referenced_keys() | self.maps.referenced_keys()
        self.arrays.sweep([PROPOSAL_PREFIX, CORRECTION_PREFIX, MAP_PREFIX], referenced)
        for partial in self.rounds.checkpoint_dir.glob(".*.partial"):
            partial.unlink(missing_ok=True)
        self.rounds.mark_interrupted()

    # -- settings ----------------------------------------------------------------------------
    def setting(self, key: str, default: Any = None) -> Any:
        value = self.db.scalar("SELECT value FROM settings WHERE key = ?", (key,))
        return default if value is None else json.loads(value)

    def set_setting(self, key: str, value: Any) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, to_json(value))
            )

    # -- pixels ------------------------------------------------------------------------------
    def source_path(self, source: Source) -> Path:
        """Where the source file is now: inside the project first, then where it was imported."""
        if source.relpath is not None and (self.root / source.relpath).exists():
            return self.root / source.relpath
        if Path(source.path).exists():
            return Path(source.path)
        raise ProjectError(
            f"{source.path}: the image file is missing. Put it back, or copy it into "
            f"{self.root} (at {source.relpath or 'the same relative place'})."
        )

    def source_image(self, source_id: int) -> ImageData:
        """The decoded source (the last few are kept in memory)."""
        return self._load_source(source_id)

    def item_image(self, item: Item | int) -> np.ndarray:
        """The pixels of one item in the pipeline's layout: (H, W) grey or (H, W, 3) RGB."""
        item = self.catalog.item(item) if isinstance(item, int) else item
        image = self.source_image(item.source_id)
        if item.tile is not None:
            tile = item.tile
            return tile_plane(image, tile.level, tile.x, tile.y, item.height, item.width)
        return item_plane(image, item.display_index)

    def embedding_cache(self, backbone: SamBackbone) -> EmbeddingCache:
        """The project's cache of ``backbone``'s embeddings (under ``cache/embeddings``)."""
        from ..backbones.embedding_cache import EmbeddingCache

        return EmbeddingCache(self.root / "cache" / "embeddings", backbone)

    def _read_source(self, source_id: int) -> ImageData:
        source = self.catalog.source(source_id)
        path = self.source_path(source)
        self._check_unchanged(source, path)
        return read_image(path, lazy=source.is_slide)  # a slide is read a tile at a time

    def _check_unchanged(self, source: Source, path: Path) -> None:
        """Refuse a source whose bytes differ from those imported (checked once per opening)."""
        if source.id in self._verified:
            return
        if content_sha256(path) != source.sha256:
            raise ProjectError(
                f"{path}: the file changed since it was imported (its SHA-256 differs), so "
                "results computed from it would silently change. Put the original back, or "
                "import the new file as a new image (`weaksam add`)."
            )
        self._verified.add(source.id)
