"""Float maps per item (CAM per class, affinity source map, refined map) for people to inspect."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .arrays import ArrayStore
from .db import Database, utc_now

MAP_PREFIX = "maps"
MAP_KINDS = ("cam", "affinity", "refined")


@dataclass(frozen=True)
class MapRecord:
    id: int
    item_id: int
    round_id: int | None
    kind: str
    class_id: int | None
    array_key: str


class MapStore:
    """Maps are stored as float16 zarr arrays and listed in the ``maps`` table."""

    def __init__(self, db: Database, arrays: ArrayStore) -> None:
        self.db = db
        self.arrays = arrays

    def add(self, item_id: int, kind: str, data: np.ndarray, *, round_id: int | None = None,
            class_id: int | None = None) -> MapRecord:
        if kind not in MAP_KINDS:
            raise ValueError(f"map kind {kind!r}: choose one of {', '.join(MAP_KINDS)}")
        key = self.arrays.write(f"{MAP_PREFIX}/{kind}", np.asarray(data, dtype=np.float16))
        with self.db.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO maps (item_id, round_id, kind, class_id, array_key, created_at)"
                " VALUES (?,?,?,?,?,?)", (item_id, round_id, kind, class_id, key, utc_now()),
            )
        return MapRecord(int(cur.lastrowid), item_id, round_id, kind, class_id, key)

    def latest(self, item_id: int, kind: str, class_id: int | None = None) -> MapRecord | None:
        row = self.db.row(
            "SELECT * FROM maps WHERE item_id = ? AND kind = ? AND class_id IS ?"
            " ORDER BY id DESC LIMIT 1", (item_id, kind, class_id),
        )
        return None if row is None else MapRecord(
            row["id"], row["item_id"], row["round_id"], row["kind"], row["class_id"],
            row["array_key"])

    def read(self, record: MapRecord) -> np.ndarray:
        return self.arrays.read(record.array_key).astype(np.float32)

    def referenced_keys(self) -> set[str]:
        return {r[0] for r in self.db.rows("SELECT array_key FROM maps")}
