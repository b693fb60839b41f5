"""Schema versioning: user_version, WAL, foreign keys, migrations that can grow further."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from app.history import SCHEMA_VERSION, HistoryError, HistoryStore, schema


def test_a_new_file_is_at_the_current_version_in_wal_mode(
    store: HistoryStore, raw: sqlite3.Connection
) -> None:
    assert SCHEMA_VERSION == 4
    assert raw.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert store._conn.execute("PRAGMA foreign_keys").fetchone() == (1,)
    tables = {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"conversations", "messages", "attachments", "messages_fts"} <= tables


def test_reopening_does_not_migrate_again(store: HistoryStore, db_path: Path) -> None:
    conv = store.create_conversation(title="survivor")
    store.close()
    with HistoryStore(db_path) as reopened:
        assert reopened.get_conversation(conv)[0].title == "survivor"


def _add_pinned(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE conversations ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0")


def test_a_later_migration_runs_once_on_an_existing_file(
    store: HistoryStore, db_path: Path
) -> None:
    store.create_conversation(title="old")
    store.close()
    conn = sqlite3.connect(db_path, isolation_level=None)
    assert schema.migrate(conn, (*schema.MIGRATIONS, _add_pinned)) == SCHEMA_VERSION
    # nothing left to do the second time
    assert schema.migrate(conn, (*schema.MIGRATIONS, _add_pinned)) == SCHEMA_VERSION + 1
    assert conn.execute("SELECT title, pinned FROM conversations").fetchall() == [("old", 0)]
    assert schema.user_version(conn) == SCHEMA_VERSION + 1
    conn.close()


def test_a_failed_migration_leaves_the_previous_version(store: HistoryStore, db_path: Path) -> None:
    store.close()

    def broken(conn: sqlite3.Connection) -> None:
        _add_pinned(conn)
        raise RuntimeError("bug in migration")

    conn = sqlite3.connect(db_path, isolation_level=None)
    with pytest.raises(RuntimeError):
        schema.migrate(conn, (*schema.MIGRATIONS, broken))
    assert schema.user_version(conn) == SCHEMA_VERSION
    columns = [row[1] for row in conn.execute("PRAGMA table_info(conversations)")]
    assert "pinned" not in columns
    conn.close()


def test_a_file_from_a_newer_app_is_refused_untouched(store: HistoryStore, db_path: Path) -> None:
    store.close()
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = db_path.read_bytes()
    with pytest.raises(HistoryError) as caught:
        HistoryStore(db_path)
    assert caught.value.kind == "newer"
    assert str(caught.value).startswith(f"The conversation history file {db_path} was written")
    assert db_path.read_bytes() == before
