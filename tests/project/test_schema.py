"""Catalog schema: version stamp, WAL journal, refusal of newer catalogs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from napari_weaksam.project import Project
from napari_weaksam.project.schema import (
    LATEST_VERSION,
    SchemaVersionError,
    migrate,
    schema_version,
)

TABLES = {"sources", "items", "classes", "tags", "rounds", "checkpoints", "proposals", "reviews",
          "jobs", "settings"}


def _set_user_version(catalog: Path, version: int) -> None:
    conn = sqlite3.connect(catalog)
    conn.execute(f"PRAGMA user_version = {version}")
    conn.commit()
    conn.close()


def _pragma(catalog: Path, name: str):
    conn = sqlite3.connect(catalog)
    try:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        conn.close()


def test_new_catalog_has_latest_user_version(tmp_path):
    Project.create(tmp_path / "p").close()
    assert LATEST_VERSION >= 1
    assert _pragma(tmp_path / "p" / "catalog.sqlite", "user_version") == LATEST_VERSION


def test_new_catalog_uses_wal_journal(tmp_path):
    with Project.create(tmp_path / "p") as project:
        assert project.db.scalar("PRAGMA journal_mode") == "wal"
        assert project.db.scalar("PRAGMA synchronous") == 2  # FULL
    assert _pragma(tmp_path / "p" / "catalog.sqlite", "journal_mode") == "wal"


def test_new_catalog_has_every_table(tmp_path):
    with Project.create(tmp_path / "p") as project:
        names = {r[0] for r in project.db.rows("SELECT name FROM sqlite_master")}
    assert names >= TABLES


def test_migrate_empty_database_to_latest(tmp_path):
    conn = sqlite3.connect(tmp_path / "c.sqlite", isolation_level=None)
    assert schema_version(conn) == 0
    assert migrate(conn, "c.sqlite") == LATEST_VERSION
    assert schema_version(conn) == LATEST_VERSION
    assert migrate(conn, "c.sqlite") == LATEST_VERSION  # idempotent
    conn.close()


def test_newer_catalog_raises_schema_version_error(tmp_path):
    Project.create(tmp_path / "p").close()
    _set_user_version(tmp_path / "p" / "catalog.sqlite", LATEST_VERSION + 1)
    with pytest.raises(SchemaVersionError, match="Upgrade napari-weaksam"):
        Project.open(tmp_path / "p")


def test_newer_catalog_error_releases_the_lock(tmp_path):
    Project.create(tmp_path / "p").close()
    catalog = tmp_path / "p" / "catalog.sqlite"
    _set_user_version(catalog, LATEST_VERSION + 5)
    with pytest.raises(SchemaVersionError):
        Project.open(tmp_path / "p")
    _set_user_version(catalog, LATEST_VERSION)
    Project.open(tmp_path / "p").close()  # would raise ProjectLockedError if still held


def test_newer_catalog_refused_read_only_too(tmp_path):
    Project.create(tmp_path / "p").close()
    _set_user_version(tmp_path / "p" / "catalog.sqlite", LATEST_VERSION + 1)
    with pytest.raises(SchemaVersionError):
        Project.open(tmp_path / "p", read_only=True).close()


def test_version_1_catalog_is_migrated_and_keeps_its_data(tmp_path):
    import json
    import sqlite3

    from napari_weaksam.project import Project
    from napari_weaksam.project.schema import SCHEMA_V1

    root = tmp_path / "old"
    root.mkdir()
    (root / "project.json").write_text(json.dumps({"format": "napari-weaksam project"}))
    conn = sqlite3.connect(root / "catalog.sqlite")
    conn.executescript(SCHEMA_V1 + "\nPRAGMA user_version = 1;")
    conn.execute("INSERT INTO classes (name, label_value, color, created_at)"
                 " VALUES ('tumour', 1, '#E69F00', 'then')")
    conn.commit()
    conn.close()
    with Project.open(root) as project:
        assert project.db.scalar("PRAGMA user_version") == LATEST_VERSION >= 2
        assert [c.name for c in project.catalog.classes()] == ["tumour"]
        assert project.db.scalar("SELECT COUNT(*) FROM maps") == 0
