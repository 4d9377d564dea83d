"""SQLite schema of the project catalog, versioned with ``PRAGMA user_version``.

Each entry of :data:`MIGRATIONS` moves the catalog one version forward. A migration runs in one
transaction, so a crash during an upgrade leaves the previous version intact.
"""

from __future__ import annotations

import sqlite3

SCHEMA_V1 = """
CREATE TABLE sources (
    id          INTEGER PRIMARY KEY,
    path        TEXT NOT NULL UNIQUE,      -- absolute path when imported
    relpath     TEXT,                      -- path relative to the project folder, when inside it
    format      TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('image', 'volume')),
    shape       TEXT NOT NULL,             -- JSON list, display order
    axes        TEXT NOT NULL,
    dtype       TEXT NOT NULL,
    spacing     TEXT NOT NULL,             -- JSON list, one per non-channel axis
    geometry    TEXT,                      -- JSON: NIfTI affine and orientation, if any
    modality    TEXT,
    sha256      TEXT NOT NULL,
    added_at    TEXT NOT NULL
);
CREATE TABLE items (
    id            INTEGER PRIMARY KEY,
    source_id     INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    slice_index   INTEGER,                 -- voxel index along the source slice axis; NULL for 2D
    display_index INTEGER NOT NULL DEFAULT 0,  -- plane index in the displayed volume
    name          TEXT NOT NULL UNIQUE,
    height        INTEGER NOT NULL,
    width         INTEGER NOT NULL,
    channels      INTEGER NOT NULL DEFAULT 1,
    tagged_at     TEXT,                    -- NULL: nobody has tagged this item yet
    UNIQUE (source_id, slice_index)
);
CREATE INDEX items_source ON items(source_id, display_index);
CREATE TABLE classes (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE COLLATE NOCASE,
    label_value INTEGER NOT NULL UNIQUE CHECK (label_value > 0),
    color       TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE TABLE tags (                        -- a row means: class present in item
    item_id     INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    class_id    INTEGER NOT NULL REFERENCES classes(id) ON DELETE CASCADE,
    tagged_at   TEXT NOT NULL,
    PRIMARY KEY (item_id, class_id)
) WITHOUT ROWID;
CREATE TABLE rounds (
    id            INTEGER PRIMARY KEY,
    method        TEXT NOT NULL,
    params        TEXT NOT NULL DEFAULT '{}',
    status        TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'cancelled')),
    checkpoint_id INTEGER REFERENCES checkpoints(id),
    metrics       TEXT NOT NULL DEFAULT '{}',
    started_at    TEXT NOT NULL,
    finished_at   TEXT
);
CREATE TABLE checkpoints (
    id          INTEGER PRIMARY KEY,
    round_id    INTEGER REFERENCES rounds(id),
    relpath     TEXT NOT NULL UNIQUE,
    sha256      TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL
);
CREATE TABLE proposals (                   -- model output; never edited by a person
    id            INTEGER PRIMARY KEY,
    item_id       INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    round_id      INTEGER REFERENCES rounds(id),
    checkpoint_id INTEGER REFERENCES checkpoints(id),
    method        TEXT NOT NULL,
    params        TEXT NOT NULL DEFAULT '{}',
    confidence    REAL,
    array_key     TEXT NOT NULL,
    created_at    TEXT NOT NULL
);
CREATE INDEX proposals_item ON proposals(item_id, id);
CREATE TABLE reviews (                     -- the person's decision; only these labels are final
    item_id     INTEGER PRIMARY KEY REFERENCES items(id) ON DELETE CASCADE,
    state       TEXT NOT NULL CHECK (state IN ('accepted', 'corrected', 'rejected')),
    proposal_id INTEGER REFERENCES proposals(id),
    array_key   TEXT,                      -- the corrected mask
    updated_at  TEXT NOT NULL
);
CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    params      TEXT NOT NULL DEFAULT '{}',
    status      TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'cancelled')),
    progress    REAL NOT NULL DEFAULT 0,
    message     TEXT NOT NULL DEFAULT '',
    pid         INTEGER,
    started_at  TEXT NOT NULL,
    finished_at TEXT
);
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
"""

SCHEMA_V2 = """
CREATE TABLE maps (                        -- per-item float maps a method produced
    id          INTEGER PRIMARY KEY,
    item_id     INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    round_id    INTEGER REFERENCES rounds(id),
    kind        TEXT NOT NULL,             -- 'cam', 'affinity', 'refined'
    class_id    INTEGER REFERENCES classes(id),
    array_key   TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX maps_item ON maps(item_id, kind, id);
"""

# Rounds and jobs left running by a process that died are "interrupted" (SQLite cannot change a
# CHECK constraint in place: the two tables are rebuilt, with foreign keys off during the step).
SCHEMA_V3 = """
CREATE TABLE rounds_v3 (
    id            INTEGER PRIMARY KEY,
    method        TEXT NOT NULL,
    params        TEXT NOT NULL DEFAULT '{}',
    status        TEXT NOT NULL
                  CHECK (status IN ('running', 'done', 'failed', 'cancelled', 'interrupted')),
    checkpoint_id INTEGER REFERENCES checkpoints(id),
    metrics       TEXT NOT NULL DEFAULT '{}',
    started_at    TEXT NOT NULL,
    finished_at   TEXT
);
INSERT INTO rounds_v3 SELECT id, method, params, status, checkpoint_id, metrics, started_at,
    finished_at FROM rounds;
DROP TABLE rounds;
ALTER TABLE rounds_v3 RENAME TO rounds;
CREATE TABLE jobs_v3 (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    params      TEXT NOT NULL DEFAULT '{}',
    status      TEXT NOT NULL
                CHECK (status IN ('running', 'done', 'failed', 'cancelled', 'interrupted')),
    progress    REAL NOT NULL DEFAULT 0,
    message     TEXT NOT NULL DEFAULT '',
    pid         INTEGER,
    started_at  TEXT NOT NULL,
    finished_at TEXT
);
INSERT INTO jobs_v3 SELECT id, kind, params, status, progress, message, pid, started_at,
    finished_at FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_v3 RENAME TO jobs;
"""

# Whole slides: a source may be a slide cut into tile items (each knows its level and position),
# with the tiling it was cut with, and a slide may be tagged as a whole.
SCHEMA_V4 = """
CREATE TABLE sources_v4 (
    id          INTEGER PRIMARY KEY,
    path        TEXT NOT NULL UNIQUE,
    relpath     TEXT,
    format      TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('image', 'volume', 'slide')),
    shape       TEXT NOT NULL,
    axes        TEXT NOT NULL,
    dtype       TEXT NOT NULL,
    spacing     TEXT NOT NULL,
    geometry    TEXT,
    modality    TEXT,
    sha256      TEXT NOT NULL,
    added_at    TEXT NOT NULL,
    tiling      TEXT,                      -- JSON: how a slide was cut into tiles
    tagged_at   TEXT                       -- set when the slide was tagged as a whole
);
INSERT INTO sources_v4 SELECT id, path, relpath, format, kind, shape, axes, dtype, spacing,
    geometry, modality, sha256, added_at, NULL, NULL FROM sources;
DROP TABLE sources;
ALTER TABLE sources_v4 RENAME TO sources;
ALTER TABLE items ADD COLUMN tile_level INTEGER;   -- pyramid level a tile is read from
ALTER TABLE items ADD COLUMN tile_x INTEGER;       -- its left column at that level
ALTER TABLE items ADD COLUMN tile_y INTEGER;       -- its top row at that level
CREATE TABLE slide_tags (                  -- a row means: class present somewhere in the slide
    source_id   INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    class_id    INTEGER NOT NULL REFERENCES classes(id) ON DELETE CASCADE,
    tagged_at   TEXT NOT NULL,
    PRIMARY KEY (source_id, class_id)
) WITHOUT ROWID;
"""

MIGRATIONS: tuple[str, ...] = (SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4)
LATEST_VERSION = len(MIGRATIONS)


class SchemaVersionError(RuntimeError):
    """The catalog was written by a newer napari-weaksam."""


def schema_version(conn: sqlite3.Connection) -> int:
    """The catalog's schema version (0 for an empty database)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _refuse_newer(current: int, path: str) -> None:
    if current > LATEST_VERSION:
        raise SchemaVersionError(
            f"{path}: the project catalog has schema version {current}, but this napari-weaksam "
            f"knows up to {LATEST_VERSION}. Upgrade napari-weaksam to open it."
        )


def check_readable(conn: sqlite3.Connection, path: str) -> None:
    """A read-only open needs the current schema: it cannot migrate."""
    current = schema_version(conn)
    _refuse_newer(current, path)
    if current < LATEST_VERSION:
        raise SchemaVersionError(
            f"{path}: the project catalog has the older schema version {current}; open it for "
            "writing once (e.g. in the WeakSAM panel) to upgrade it, then read it."
        )


def migrate(conn: sqlite3.Connection, path: str) -> int:
    """Bring the catalog to :data:`LATEST_VERSION`, one transaction per step."""
    current = schema_version(conn)
    _refuse_newer(current, path)
    if current == LATEST_VERSION:
        return current
    conn.execute("PRAGMA foreign_keys = OFF")  # tables are rebuilt; checked before each commit
    try:
        for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
            _migrate_step(conn, script, version)
    finally:
        conn.execute("PRAGMA foreign_keys = ON")
    return LATEST_VERSION


def _migrate_step(conn: sqlite3.Connection, script: str, version: int) -> None:
    try:
        conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {version};")
        broken = conn.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise sqlite3.IntegrityError(f"migration to version {version} broke {len(broken)} "
                                         "references")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
