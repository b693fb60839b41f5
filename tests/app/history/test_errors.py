"""File and disk failures become HistoryError with a human first sentence; the store survives."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from app.history import HistoryError, HistoryStore, move_aside


def _cap_file_size(store: HistoryStore, extra_pages: int) -> None:
    # max_page_count is per connection, so it has to be set on the store's own one: the only
    # portable way to make SQLite see a full disk.
    conn: sqlite3.Connection = store._conn
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + extra_pages}")


def test_full_disk_is_reported_and_nothing_is_half_written(
    store: HistoryStore, raw: sqlite3.Connection
) -> None:
    conv = store.create_conversation()
    store.add_user_message(conv, "keep me")
    _cap_file_size(store, 1)
    with pytest.raises(HistoryError) as caught:
        store.add_user_message(conv, "x" * 500_000)
    error = caught.value
    assert error.kind == "disk_full"
    assert str(error).startswith(
        "The disk is full, so the conversation history could not be saved."
    )
    assert "SQLITE_FULL" in error.details
    assert [m.content for m in store.get_conversation(conv)[1]] == ["keep me"]
    _cap_file_size(store, 100_000)  # the user freed some space
    store.add_user_message(conv, "x" * 500_000)
    assert store.get_conversation(conv)[0].message_count == 2
    assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_stream_resumes_after_a_full_disk_when_the_delta_is_resent(store: HistoryStore) -> None:
    conv = store.create_conversation()
    answer = store.begin_assistant_message(conv, "low")
    store.append_to_message(answer, "Saved. ")
    _cap_file_size(store, 0)
    pending = "y" * 200_000
    with pytest.raises(HistoryError):
        store.append_to_message(answer, pending)
    _cap_file_size(store, 100_000)
    assert store.append_to_message(answer, pending + "z")  # what the GUI kept, plus the next delta
    assert store.get_message(answer).content == "Saved. " + pending + "z"


def test_random_bytes_are_reported_as_a_damaged_file(db_path: Path) -> None:
    db_path.write_bytes(os.urandom(16384))
    with pytest.raises(HistoryError) as caught:
        HistoryStore(db_path)
    assert caught.value.kind == "corrupt"
    assert caught.value.path == db_path
    assert str(caught.value).startswith(f"The conversation history file {db_path} is damaged")


def test_a_damaged_file_can_be_moved_aside_to_start_fresh(db_path: Path) -> None:
    garbage = os.urandom(16384)
    db_path.write_bytes(garbage)
    kept = move_aside(db_path)
    assert kept.read_bytes() == garbage
    assert kept.parent == db_path.parent and kept.name.startswith("history.sqlite3.damaged-")
    with HistoryStore(db_path) as fresh:
        assert fresh.list_conversations() == []


def test_a_missing_folder_is_reported_as_unavailable(tmp_path: Path) -> None:
    with pytest.raises(HistoryError) as caught:
        HistoryStore(tmp_path / "no such folder" / "history.sqlite3")
    assert caught.value.kind == "unavailable"
    assert "no such folder" in str(caught.value)


def test_a_locked_database_is_reported_and_the_store_recovers(db_path: Path) -> None:
    with HistoryStore(db_path, timeout_s=0.05) as store:
        conv = store.create_conversation()
        blocker = sqlite3.connect(db_path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        with pytest.raises(HistoryError) as caught:
            store.add_user_message(conv, "blocked")
        assert caught.value.kind == "locked"
        blocker.execute("ROLLBACK")
        blocker.close()
        store.add_user_message(conv, "now it works")
        assert store.get_conversation(conv)[0].message_count == 1


def test_programming_errors_are_not_disguised(store: HistoryStore) -> None:
    # Bugs (here a bad statement) must stay loud instead of looking like a disk problem.
    with pytest.raises(sqlite3.OperationalError), store._write() as db:
        db.execute("SELECT * FROM no_such_table")
    assert store.list_conversations() == []  # and the transaction was rolled back
