"""Stored responses for `previous_response_id`: one SQLite file that the server owns.

Each row keeps the conversation as Responses items (every earlier input and output, then this
response's output), so a follow-up needs one lookup, and the response object as returned.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import platformdirs

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    items TEXT NOT NULL,
    response TEXT NOT NULL
)
"""


def default_path() -> Path:
    return Path(platformdirs.user_data_dir("OSS Desk", "OSS Desk")) / "server" / "responses.sqlite3"


class ResponseStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(SCHEMA)

    def save(self, response: dict[str, Any], items: list[dict[str, Any]]) -> None:
        with closing(self._connect()) as db, db:
            db.execute(
                "INSERT OR REPLACE INTO responses (id, created_at, items, response) "
                "VALUES (?, ?, ?, ?)",
                (response["id"], time.time(), json.dumps(items), json.dumps(response)),
            )

    def items(self, response_id: str) -> list[dict[str, Any]] | None:
        """The conversation up to and including the response, or None if it is not stored."""
        with closing(self._connect()) as db:
            row = db.execute("SELECT items FROM responses WHERE id = ?", (response_id,)).fetchone()
        return None if row is None else list(json.loads(row[0]))

    def response(self, response_id: str) -> dict[str, Any] | None:
        with closing(self._connect()) as db:
            row = db.execute(
                "SELECT response FROM responses WHERE id = ?", (response_id,)
            ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10)
