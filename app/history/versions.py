"""An answer's versions: Regenerate keeps the earlier answers of the same user turn (schema v3).

The messages row always holds the selected version; the others wait in answer_versions under
their numbers. Selecting swaps a version with the row's content, so the message id, its position,
the search index and every reader of messages follow the selection without knowing of versions.
These functions run inside the store's transactions.
"""

from __future__ import annotations

import sqlite3
import time

from app.history import queries as q
from app.history.records import StoredMessage

# The columns of MESSAGE (queries.py), in its order, so q.messages turns these rows into records.
_AS_MESSAGE = """
SELECT m.id, m.conversation_id, m.position, m.role, v.content, v.reasoning, v.status, v.effort,
       v.created_at, v.tool_calls, v.stats, v.error, v.version
FROM answer_versions AS v JOIN messages AS m ON m.id = v.message_id
"""


def alternatives(
    db: sqlite3.Connection, conversation_id: int
) -> dict[int, tuple[StoredMessage, ...]]:
    """The versions not selected, by the id of the answer they belong to, oldest first."""
    rows = db.execute(
        _AS_MESSAGE + "WHERE m.conversation_id = ? ORDER BY m.id, v.version", (conversation_id,)
    ).fetchall()
    found: dict[int, list[StoredMessage]] = {}
    for record in q.messages(rows, []):
        found.setdefault(record.id, []).append(record)
    return {message_id: tuple(records) for message_id, records in found.items()}


def of_answer(db: sqlite3.Connection, message_id: int) -> list[StoredMessage]:
    """Every version of an answer, the selected one included, by number. KeyError if none."""
    row = db.execute(q.MESSAGE + "WHERE id = ?", (message_id,)).fetchone()
    if row is None:
        raise KeyError(f"message {message_id} does not exist")
    others = db.execute(
        _AS_MESSAGE + "WHERE v.message_id = ? ORDER BY v.version", (message_id,)
    ).fetchall()
    return sorted(q.messages([row, *others], []), key=lambda m: m.version)


def begin_again(
    db: sqlite3.Connection, conversation_id: int, effort: str, writer: str
) -> int | None:
    """Turn the answer to the last user message into a new, empty, streaming version; the one
    it had is kept as a version unless nothing was written. None: there is no answer to keep
    (the caller starts one). Anything after that answer is deleted, as Regenerate always did."""
    position = q.last_user_position(db, conversation_id)
    row = db.execute(
        "SELECT id, version, content, reasoning, tool_calls FROM messages "
        "WHERE conversation_id = ? AND position = ? AND role = 'assistant'",
        (conversation_id, position + 1),
    ).fetchone()
    db.execute(
        "DELETE FROM messages WHERE conversation_id = ? AND position > ?",
        (conversation_id, position + (row is not None)),
    )
    if row is None:
        return None
    message_id, version, content, reasoning, tool_calls = row
    if content or reasoning or tool_calls != "[]":
        _keep_row(db, message_id)
        newest = db.execute(
            "SELECT max(version) FROM answer_versions WHERE message_id = ?", (message_id,)
        ).fetchone()[0]
        version = max(version, newest) + 1
    db.execute(
        "UPDATE messages SET content = '', reasoning = '', tool_calls = '[]', "
        "status = 'streaming', effort = ?, stats = '{}', error = NULL, created_at = ?, "
        "writer = ?, version = ? WHERE id = ?",
        (effort, time.time(), writer, version, message_id),
    )
    return int(message_id)


def select(db: sqlite3.Connection, message_id: int, version: int) -> None:
    """Make `version` the one the answer shows and the conversation continues from.

    KeyError for an unknown answer or version; ValueError while the answer is being written.
    """
    row = db.execute(
        "SELECT version, status FROM messages WHERE id = ? AND role = 'assistant'", (message_id,)
    ).fetchone()
    if row is None:
        raise KeyError(f"answer {message_id} does not exist")
    if row[0] == version:
        return
    if row[1] == "streaming":
        raise ValueError(f"answer {message_id} is still being written")
    wanted = {"id": message_id, "version": version}
    if (
        db.execute(
            "SELECT 1 FROM answer_versions WHERE message_id = :id AND version = :version", wanted
        ).fetchone()
        is None
    ):
        raise KeyError(f"answer {message_id} has no version {version}")
    _keep_row(db, message_id)
    db.execute(
        "UPDATE messages SET (content, reasoning, tool_calls, status, effort, stats, error, "
        "created_at, version) = (SELECT content, reasoning, tool_calls, status, effort, stats, "
        "error, created_at, version FROM answer_versions "
        "WHERE message_id = :id AND version = :version) WHERE id = :id",
        wanted,
    )
    db.execute("DELETE FROM answer_versions WHERE message_id = :id AND version = :version", wanted)


def _keep_row(db: sqlite3.Connection, message_id: int) -> None:
    # A version left streaming has no writer any more once it is set aside: it reads as cut off.
    db.execute(
        "INSERT INTO answer_versions (message_id, version, content, reasoning, tool_calls, "
        "status, effort, stats, error, created_at) "
        "SELECT id, version, content, reasoning, tool_calls, "
        "CASE status WHEN 'streaming' THEN 'interrupted' ELSE status END, "
        "effort, stats, error, created_at FROM messages WHERE id = ?",
        (message_id,),
    )
