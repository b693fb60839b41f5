"""Every history test gets a real SQLite file on disk in its own temporary folder."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.history import HistoryStore


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "history.sqlite3"


@pytest.fixture
def store(db_path: Path) -> Iterator[HistoryStore]:
    with HistoryStore(db_path) as opened:
        yield opened


@pytest.fixture
def raw(db_path: Path, store: HistoryStore) -> Iterator[sqlite3.Connection]:
    """A second, plain connection for looking behind the store's back."""
    conn = sqlite3.connect(db_path)
    yield conn
    conn.close()
