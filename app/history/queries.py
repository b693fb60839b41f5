"""The SQL the store runs inside its own transactions, and the mapping of rows to records."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from app.history.records import (
    ConversationSummary,
    NewAttachment,
    StoredAttachment,
    StoredMessage,
    ToolCall,
)

DEFAULT_TITLE = "New chat"
TITLE_CHARS = 60
PREVIEW_CHARS = 120

SUMMARY = """
SELECT c.id, c.title, c.created_at, c.updated_at, c.reasoning_effort, c.instructions,
       (SELECT count(*) FROM messages AS m WHERE m.conversation_id = c.id),
       coalesce((SELECT substr(m.content, 1, 4 * :preview) FROM messages AS m
                 WHERE m.conversation_id = c.id AND m.content != ''
                   AND m.role IN ('user', 'assistant')
                 ORDER BY m.position DESC LIMIT 1), '')
FROM conversations AS c
"""
MESSAGE = """
SELECT id, conversation_id, position, role, content, reasoning, status, effort, created_at,
       tool_calls, stats, error, version
FROM messages
"""
ATTACHMENT = "SELECT a.message_id, a.id, a.name, a.kind, a.pages, a.token_count, a.text, a.sha256"


def auto_title(text: str, attachments: Sequence[NewAttachment] = ()) -> str:
    """A sidebar title from a first message: its first line, cut at a word near TITLE_CHARS."""
    line = next((ln for ln in text.splitlines() if ln.strip()), "")
    words = " ".join(line.split())
    if not words:
        return attachments[0].name if attachments else DEFAULT_TITLE
    if len(words) <= TITLE_CHARS:
        return words
    cut = words[:TITLE_CHARS].rsplit(" ", 1)[0] or words[:TITLE_CHARS]
    return cut.rstrip(",.;:-") + "…"


def touch(db: sqlite3.Connection, conversation_id: int) -> None:
    # Sidebar order must follow the user's actions even if two land in the same clock tick or
    # the clock steps back, so updated_at never goes below the newest one plus a microsecond.
    db.execute(
        "UPDATE conversations SET updated_at = max(:now, "
        "(SELECT max(updated_at) FROM conversations) + 0.000001) WHERE id = :id",
        {"now": time.time(), "id": conversation_id},
    )


def rowid(cursor: sqlite3.Cursor) -> int:
    assert cursor.lastrowid is not None  # always set after a one-row INSERT
    return cursor.lastrowid


def next_position(db: sqlite3.Connection, conversation_id: int) -> int:
    row = db.execute(
        "SELECT (SELECT 1 FROM conversations WHERE id = :id), "
        "coalesce((SELECT max(position) + 1 FROM messages WHERE conversation_id = :id), 0)",
        {"id": conversation_id},
    ).fetchone()
    if row[0] is None:
        raise KeyError(f"conversation {conversation_id} does not exist")
    position: int = row[1]
    return position


def last_user_position(db: sqlite3.Connection, conversation_id: int) -> int:
    row = db.execute(
        "SELECT max(position) FROM messages WHERE conversation_id = ? AND role = 'user'",
        (conversation_id,),
    ).fetchone()
    if row[0] is None:
        raise ValueError(f"conversation {conversation_id} has no user message")
    position: int = row[0]
    return position


def load_tool_calls(db: sqlite3.Connection, message_id: int) -> list[ToolCall]:
    row = db.execute("SELECT tool_calls FROM messages WHERE id = ?", (message_id,)).fetchone()
    if row is None:
        raise KeyError(f"message {message_id} does not exist")
    return [ToolCall.from_json(call) for call in json.loads(row[0])]


def save_tool_calls(db: sqlite3.Connection, message_id: int, calls: list[ToolCall]) -> None:
    payload = [c.to_json() for c in calls]
    db.execute("UPDATE messages SET tool_calls = ? WHERE id = ?", (json.dumps(payload), message_id))


def summary(row: sqlite3.Row | tuple[Any, ...]) -> ConversationSummary:
    id_, title, created_at, updated_at, effort, instructions, count, preview = row
    preview = " ".join(preview.split())
    if len(preview) > PREVIEW_CHARS:
        preview = preview[: PREVIEW_CHARS - 1] + "…"
    return ConversationSummary(
        id_, title, created_at, updated_at, effort, count, preview, instructions
    )


def messages(
    rows: list[Any],
    attachment_rows: list[Any],
    alternatives: dict[int, tuple[StoredMessage, ...]] | None = None,
) -> list[StoredMessage]:
    """Records from MESSAGE rows, with their ATTACHMENT rows (message_id first) attached, and
    each answer's other versions (versions.alternatives) when given."""
    attachments: dict[int, list[StoredAttachment]] = {}
    for message_id, *fields in attachment_rows:
        attachments.setdefault(message_id, []).append(StoredAttachment(*fields))
    others = alternatives or {}
    result = []
    for row in rows:
        (id_, conversation_id, position, role, content, reasoning, status, effort, created_at,
         tool_calls, stats, error, version) = row  # fmt: skip
        result.append(
            StoredMessage(
                id=id_,
                conversation_id=conversation_id,
                position=position,
                role=role,
                content=content,
                reasoning=reasoning,
                status=status,
                effort=effort,
                created_at=created_at,
                tool_calls=tuple(ToolCall.from_json(call) for call in json.loads(tool_calls)),
                stats=json.loads(stats),
                error=error,
                attachments=tuple(attachments.get(id_, ())),
                version=version,
                alternatives=others.get(id_, ()),
            )
        )
    return result
