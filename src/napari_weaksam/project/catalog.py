"""Sources, items, classes and image-level tags of a project."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .db import Database, to_json, utc_now
from .errors import ProjectError

_RETIRED_LABEL = "highest_removed_label_value"   # settings key: label values never reused
# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
CLASS_COLORS = (
    "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#999999",
)


@dataclass(frozen=True)
class Source:
    """A file that was imported: a 2D image or a volume."""

    id: int
    path: str
    relpath: str | None
    format: str
    kind: str
    shape: tuple[int, ...]
    axes: str
    dtype: str
    spacing: tuple[float, ...]
    geometry: dict[str, Any] | None
    modality: str | None
    sha256: str
    tiling: dict[str, Any] | None = None   # a slide's tiling (see project.tiles.Tiling)

    @property
    def is_slide(self) -> bool:
        return self.kind == "slide"

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Source:
        return cls(
            id=row["id"], path=row["path"], relpath=row["relpath"], format=row["format"],
            kind=row["kind"], shape=tuple(json.loads(row["shape"])), axes=row["axes"],
            dtype=row["dtype"], spacing=tuple(json.loads(row["spacing"])),
            geometry=json.loads(row["geometry"]) if row["geometry"] else None,
            modality=row["modality"], sha256=row["sha256"],
            tiling=json.loads(row["tiling"]) if row["tiling"] else None,
        )


@dataclass(frozen=True)
class TilePlace:
    """Where a tile item lies in its slide: pyramid level, left column and top row there."""

    level: int
    x: int
    y: int


@dataclass(frozen=True)
class Item:
    """One 2D image to tag and segment: a whole image or one slice of a volume."""

    id: int
    source_id: int
    name: str
    slice_index: int | None
    display_index: int
    height: int
    width: int
    channels: int
    tagged: bool
    tile: TilePlace | None = None

    @property
    def is_slice(self) -> bool:
        return self.slice_index is not None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Item:
        tile = (TilePlace(row["tile_level"], row["tile_x"], row["tile_y"])
                if row["tile_level"] is not None else None)
        return cls(
            id=row["id"], source_id=row["source_id"], name=row["name"],
            slice_index=row["slice_index"], display_index=row["display_index"],
            height=row["height"], width=row["width"], channels=row["channels"],
            tagged=row["tagged_at"] is not None, tile=tile,
        )


@dataclass(frozen=True)
class ImageClass:
    """A finding that can be present in an item; ``label_value`` is its value in label images."""

    id: int
    name: str
    label_value: int
    color: str


@dataclass(frozen=True)
class NewItem:
    """What the importer knows about an item before it is stored."""

    name: str
    height: int
    width: int
    channels: int = 1
    slice_index: int | None = None
    display_index: int = 0
    tile: TilePlace | None = None


class Catalog:
    """Queries and updates on sources, items, classes and tags."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- sources and items -------------------------------------------------------------------
    def add_source(self, *, path: str, relpath: str | None, format: str, kind: str,
                   shape: tuple[int, ...], axes: str, dtype: str, spacing: tuple[float, ...],
                   sha256: str, items: list[NewItem], geometry: dict[str, Any] | None = None,
                   modality: str | None = None, tiling: dict[str, Any] | None = None) -> int:
        """Store a source and its items in one transaction; returns the source id."""
        with self.db.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO sources (path, relpath, format, kind, shape, axes, dtype, spacing,"
                " geometry, modality, sha256, added_at, tiling)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (path, relpath, format, kind, to_json(list(shape)), axes, dtype,
                 to_json(list(spacing)), to_json(geometry) if geometry else None, modality,
                 sha256, utc_now(), to_json(tiling) if tiling else None),
            )
            source_id = int(cur.lastrowid)
            conn.executemany(
                "INSERT INTO items (source_id, slice_index, display_index, name, height, width,"
                " channels, tile_level, tile_x, tile_y) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [(source_id, i.slice_index, i.display_index, i.name, i.height, i.width,
                  i.channels, *(_tile_columns(i.tile))) for i in items],
            )
        return source_id

    def source(self, source_id: int) -> Source:
        row = self.db.row("SELECT * FROM sources WHERE id = ?", (source_id,))
        if row is None:
            raise ProjectError(f"no source with id {source_id}")
        return Source.from_row(row)

    def sources(self) -> list[Source]:
        return [Source.from_row(r) for r in self.db.rows("SELECT * FROM sources ORDER BY id")]

    def source_by_path(self, path: str) -> Source | None:
        row = self.db.row("SELECT * FROM sources WHERE path = ?", (path,))
        return None if row is None else Source.from_row(row)

    def item(self, item_id: int) -> Item:
        row = self.db.row("SELECT * FROM items WHERE id = ?", (item_id,))
        if row is None:
            raise ProjectError(f"no item with id {item_id}")
        return Item.from_row(row)

    def items(self, source_id: int | None = None) -> list[Item]:
        """Items in project order: by source, then by position in the volume."""
        sql = "SELECT * FROM items"
        params: tuple = ()
        if source_id is not None:
            sql += " WHERE source_id = ?"
            params = (source_id,)
        rows = self.db.rows(sql + " ORDER BY source_id, display_index, id", params)
        return [Item.from_row(r) for r in rows]

    def item_ids(self, *, min_channels: int = 1) -> list[int]:
        """Ids of the items with at least ``min_channels`` channels per pixel, in project
        order (see :meth:`items`)."""
        rows = self.db.rows("SELECT id FROM items WHERE channels >= ? "
                            "ORDER BY source_id, display_index, id", (min_channels,))
        return [int(row[0]) for row in rows]

    def item_names(self) -> set[str]:
        return {r[0] for r in self.db.rows("SELECT name FROM items")}

    def count_items(self) -> int:
        return int(self.db.scalar("SELECT COUNT(*) FROM items"))

    def count_items_by_channels(self) -> dict[int, int]:
        """Channels per pixel → how many items have that many."""
        rows = self.db.rows("SELECT channels, COUNT(*) FROM items GROUP BY channels")
        return {int(channels): int(count) for channels, count in rows}

    # -- classes ---------------------------------------------------------------------------
    def add_class(self, name: str, color: str | None = None) -> ImageClass:
        """Create a class; its label value is the next free one."""
        name = _clean_name(name)
        with self.db.transaction() as conn:
            if conn.execute("SELECT 1 FROM classes WHERE name = ?", (name,)).fetchone():
                raise ProjectError(f"a class named {name!r} already exists")
            value = conn.execute("SELECT COALESCE(MAX(label_value), 0) FROM classes")
            label_value = max(int(value.fetchone()[0]), self._retired_label()) + 1
            color = color or CLASS_COLORS[(label_value - 1) % len(CLASS_COLORS)]
            cur = conn.execute(
                "INSERT INTO classes (name, label_value, color, created_at) VALUES (?,?,?,?)",
                (name, label_value, color, utc_now()),
            )
        return ImageClass(int(cur.lastrowid), name, label_value, color)

    def ensure_class(self, name: str) -> ImageClass:
        found = self.class_by_name(name)
        return found if found is not None else self.add_class(name)

    def rename_class(self, class_id: int, new_name: str) -> ImageClass:
        new_name = _clean_name(new_name)
        clash = self.class_by_name(new_name)
        if clash is not None and clash.id != class_id:
            raise ProjectError(f"a class named {new_name!r} already exists")
        with self.db.transaction() as conn:
            conn.execute("UPDATE classes SET name = ? WHERE id = ?", (new_name, class_id))
        return self.class_(class_id)

    def class_(self, class_id: int) -> ImageClass:
        row = self.db.row("SELECT * FROM classes WHERE id = ?", (class_id,))
        if row is None:
            raise ProjectError(f"no class with id {class_id}")
        return _class_from_row(row)

    def class_by_name(self, name: str) -> ImageClass | None:
        row = self.db.row("SELECT * FROM classes WHERE name = ?", (name.strip(),))
        return None if row is None else _class_from_row(row)

    def classes(self) -> list[ImageClass]:
        rows = self.db.rows("SELECT * FROM classes ORDER BY label_value")
        return [_class_from_row(r) for r in rows]

    # -- tags ------------------------------------------------------------------------------
    def tags(self, item_id: int) -> set[int]:
        """Ids of the classes present in the item."""
        rows = self.db.rows("SELECT class_id FROM tags WHERE item_id = ?", (item_id,))
        return {r[0] for r in rows}

    def absent_values(self, item_id: int) -> set[int]:
        """Label values of the classes a person tagged *absent* in the item (none when the item
        is not tagged): a proposal must hold none of them."""
        if self.db.scalar("SELECT tagged_at FROM items WHERE id = ?", (item_id,)) is None:
            return set()
        present = self.tags(item_id)
        return {c.label_value for c in self.classes() if c.id not in present}

    def set_tags(self, item_id: int, class_ids: set[int]) -> None:
        """Record that exactly ``class_ids`` are present in the item (empty: no finding)."""
        now = utc_now()
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM tags WHERE item_id = ?", (item_id,))
            conn.executemany(
                "INSERT INTO tags (item_id, class_id, tagged_at) VALUES (?,?,?)",
                [(item_id, c, now) for c in sorted(class_ids)],
            )
            conn.execute("UPDATE items SET tagged_at = ? WHERE id = ?", (now, item_id))

    def toggle_tag(self, item_id: int, class_id: int) -> bool:
        """Flip one class in the item; returns whether it is now present."""
        present = self.tags(item_id) ^ {class_id}
        self.set_tags(item_id, present)
        return class_id in present

    def clear_tags(self, item_id: int) -> None:
        """Forget every tag of the item: it becomes untagged again."""
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM tags WHERE item_id = ?", (item_id,))
            conn.execute("UPDATE items SET tagged_at = NULL WHERE id = ?", (item_id,))

    def set_many_tags(self, tags: dict[int, set[int]]) -> None:
        """Set the tags of many items in one transaction (imports)."""
        now = utc_now()
        with self.db.transaction() as conn:
            for item_id, class_ids in tags.items():
                conn.execute("DELETE FROM tags WHERE item_id = ?", (item_id,))
                conn.executemany(
                    "INSERT INTO tags (item_id, class_id, tagged_at) VALUES (?,?,?)",
                    [(item_id, c, now) for c in sorted(class_ids)],
                )
                conn.execute("UPDATE items SET tagged_at = ? WHERE id = ?", (now, item_id))

    def update_tags(self, updates: dict[int, dict[int, bool]]) -> None:
        """Set some classes present or absent in many items, in one transaction (imports).

        Classes an update does not name keep their tags; every updated item counts as tagged.
        """
        now = utc_now()
        with self.db.transaction() as conn:
            for item_id, flags in updates.items():
                for class_id, present in flags.items():
                    if present:
                        conn.execute("INSERT OR IGNORE INTO tags (item_id, class_id, tagged_at)"
                                     " VALUES (?,?,?)", (item_id, class_id, now))
                    else:
                        conn.execute("DELETE FROM tags WHERE item_id = ? AND class_id = ?",
                                     (item_id, class_id))
                conn.execute("UPDATE items SET tagged_at = ? WHERE id = ?", (now, item_id))

    def tag_slide(self, source_id: int, class_ids: set[int]) -> int:
        """Tag a whole slide: ``class_ids`` present somewhere in it, or none (a negative slide).

        A negative slide makes every tile negative (refused when a tile is tagged with a class,
        naming how many); a positive slide leaves its tiles as they are: untagged tiles stay
        unknown, for the methods' classifier to decide. Returns how many tiles were tagged.
        """
        source = self.source(source_id)
        if not source.is_slide:
            raise ProjectError(f"{source.path}: not a slide imported as tiles; tag its items")
        now = utc_now()
        with self.db.transaction() as conn:
            tiles = [r[0] for r in conn.execute(
                "SELECT id FROM items WHERE source_id = ?", (source_id,))]
            if not class_ids:
                positive = conn.execute(
                    "SELECT COUNT(DISTINCT t.item_id) FROM tags t JOIN items i ON i.id = t.item_id"
                    " WHERE i.source_id = ?", (source_id,)).fetchone()[0]
                if positive:
                    raise ProjectError(
                        f"{Path(source.path).name}: {positive} of its tiles are tagged with a "
                        "class, so the slide cannot be negative; clear those tiles' tags first")
                conn.execute("UPDATE items SET tagged_at = ? WHERE source_id = ?",
                             (now, source_id))
            conn.execute("DELETE FROM slide_tags WHERE source_id = ?", (source_id,))
            conn.executemany(
                "INSERT INTO slide_tags (source_id, class_id, tagged_at) VALUES (?,?,?)",
                [(source_id, c, now) for c in sorted(class_ids)])
            conn.execute("UPDATE sources SET tagged_at = ? WHERE id = ?", (now, source_id))
        return 0 if class_ids else len(tiles)

    def slide_tags(self, source_id: int) -> set[int] | None:
        """Classes tagged present in the whole slide (empty: a negative slide), None when the
        slide was not tagged as a whole."""
        if self.db.scalar("SELECT tagged_at FROM sources WHERE id = ?", (source_id,)) is None:
            return None
        rows = self.db.rows("SELECT class_id FROM slide_tags WHERE source_id = ?", (source_id,))
        return {r[0] for r in rows}

    def remove_class(self, class_id: int, *, force: bool = False) -> int:
        """Delete a class and its tags; returns how many tags went with it.

        Refused while items are tagged with it, unless ``force``. Its label value is never
        given to a later class, so masks that used it cannot change meaning.
        """
        image_class = self.class_(class_id)
        tagged = int(self.db.scalar("SELECT COUNT(*) FROM tags WHERE class_id = ?", (class_id,)))
        if tagged and not force:
            raise ProjectError(f"class {image_class.name!r}: {tagged} items are tagged with it; "
                               "remove it anyway with --force (their tags for it are deleted)")
        with self.db.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)",
                         (_RETIRED_LABEL, to_json(max(self._retired_label(),
                                                      image_class.label_value))))
            conn.execute("DELETE FROM maps WHERE class_id = ?", (class_id,))
            conn.execute("DELETE FROM classes WHERE id = ?", (class_id,))
        return tagged

    def _retired_label(self) -> int:
        value = self.db.scalar("SELECT value FROM settings WHERE key = ?", (_RETIRED_LABEL,))
        return 0 if value is None else int(json.loads(value))

    def all_tags(self) -> dict[int, set[int]]:
        """Tags of every tagged item (untagged items are absent)."""
        result: dict[int, set[int]] = {
            r[0]: set() for r in self.db.rows("SELECT id FROM items WHERE tagged_at IS NOT NULL")
        }
        for item_id, class_id in self.db.rows("SELECT item_id, class_id FROM tags"):
            result.setdefault(item_id, set()).add(class_id)
        return result

    def tag_counts(self) -> dict[str, int]:
        """``items``, ``tagged``, ``no_finding`` and, per class name, the positive count."""
        counts = {
            "items": self.count_items(),
            "tagged": int(self.db.scalar("SELECT COUNT(*) FROM items WHERE tagged_at IS NOT NULL")),
            "no_finding": int(self.db.scalar(
                "SELECT COUNT(*) FROM items WHERE tagged_at IS NOT NULL"
                " AND id NOT IN (SELECT item_id FROM tags)"
            )),
        }
        for row in self.db.rows(
            "SELECT c.name, COUNT(t.item_id) FROM classes c LEFT JOIN tags t ON t.class_id = c.id"
            " GROUP BY c.id ORDER BY c.label_value"
        ):
            counts[row[0]] = int(row[1])
        return counts


def _tile_columns(tile: TilePlace | None) -> tuple[int | None, int | None, int | None]:
    return (None, None, None) if tile is None else (tile.level, tile.x, tile.y)


def _clean_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise ProjectError("a class name cannot be empty")
    if name.isdigit():
        raise ProjectError(f"class name {name!r}: use a word, not a number")
    return name


def _class_from_row(row: sqlite3.Row) -> ImageClass:
    return ImageClass(row["id"], row["name"], row["label_value"], row["color"])
