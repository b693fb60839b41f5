"""The history database's tables and the migrations that build them, one function per version.

`PRAGMA user_version` holds the number of migrations applied. To change the schema, append a
function to MIGRATIONS (never edit a released one); `migrate` runs the missing ones in order, each
in its own transaction together with the version bump, so a crash leaves a whole version or none.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

Migration = Callable[[sqlite3.Connection], None]

# Enum columns have no CHECK constraint on purpose: SQLite cannot alter a CHECK, so adding a
# status in v2 would need a table rebuild. records.check_choice validates on the way in instead.
_V1_TABLES = """
CREATE TABLE conversations (
    id               INTEGER PRIMARY KEY,
    title            TEXT    NOT NULL,
    title_is_auto    INTEGER NOT NULL DEFAULT 1,  -- retitled from the first message until renamed
    reasoning_effort TEXT    NOT NULL,
    created_at       REAL    NOT NULL,
    updated_at       REAL    NOT NULL
);
CREATE INDEX conversations_by_recency ON conversations (updated_at DESC, id DESC);

CREATE TABLE messages (
    id              INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    position        INTEGER NOT NULL,
    role            TEXT    NOT NULL,
    content         TEXT    NOT NULL DEFAULT '',
    reasoning       TEXT    NOT NULL DEFAULT '',
    tool_calls      TEXT    NOT NULL DEFAULT '[]',  -- JSON list of {recipient, arguments, result}
    status          TEXT    NOT NULL,
    effort          TEXT,
    stats           TEXT    NOT NULL DEFAULT '{}',  -- JSON object
    error           TEXT,
    created_at      REAL    NOT NULL,
    UNIQUE (conversation_id, position)
);
CREATE INDEX messages_streaming ON messages (status) WHERE status = 'streaming';

CREATE TABLE attachments (
    id          INTEGER PRIMARY KEY,
    message_id  INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    name        TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    pages       INTEGER,
    token_count INTEGER NOT NULL,
    text        TEXT    NOT NULL,
    sha256      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX attachments_by_message ON attachments (message_id, position);
"""

# External-content FTS5 tables keep one copy of the text. A streaming message is indexed only once
# it stops streaming: re-tokenising a growing answer every 50 ms would be wasted work. The delete
# then insert order inside one trigger matters, since FTS5 lets a later delete marker win.
_V1_SEARCH = """
CREATE VIRTUAL TABLE messages_fts USING fts5 (
    content, reasoning,
    content = 'messages', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'
);
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages
WHEN new.status != 'streaming' BEGIN
    INSERT INTO messages_fts (rowid, content, reasoning)
    VALUES (new.id, new.content, new.reasoning);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
WHEN old.status != 'streaming' BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content, reasoning)
    VALUES ('delete', old.id, old.content, old.reasoning);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF content, reasoning, status ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content, reasoning)
    SELECT 'delete', old.id, old.content, old.reasoning WHERE old.status != 'streaming';
    INSERT INTO messages_fts (rowid, content, reasoning)
    SELECT new.id, new.content, new.reasoning WHERE new.status != 'streaming';
END;

CREATE VIRTUAL TABLE conversations_fts USING fts5 (
    title,
    content = 'conversations', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'
);
CREATE TRIGGER conversations_fts_insert AFTER INSERT ON conversations BEGIN
    INSERT INTO conversations_fts (rowid, title) VALUES (new.id, new.title);
END;
CREATE TRIGGER conversations_fts_delete AFTER DELETE ON conversations BEGIN
    INSERT INTO conversations_fts (conversations_fts, rowid, title)
    VALUES ('delete', old.id, old.title);
END;
CREATE TRIGGER conversations_fts_update AFTER UPDATE OF title ON conversations BEGIN
    INSERT INTO conversations_fts (conversations_fts, rowid, title)
    VALUES ('delete', old.id, old.title);
    INSERT INTO conversations_fts (rowid, title) VALUES (new.id, new.title);
END;
"""


def _v1_initial(conn: sqlite3.Connection) -> None:
    for script in (_V1_TABLES, _V1_SEARCH):
        for statement in _statements(script):
            conn.execute(statement)


def _v2_stream_writer(conn: sqlite3.Connection) -> None:
    # Which process streams an answer (lock.writer_token()): start-up recovery interrupts only
    # the streams of processes that are gone, never one still being written. NULL: a v1 stream.
    conn.execute("ALTER TABLE messages ADD COLUMN writer TEXT")


# Regenerate keeps the earlier answers of a user turn. The messages row holds the selected
# version (what the chat shows, continues from, searches and counts), so every reader of
# messages stays as it was; the other versions wait here, numbered 1, 2, ... in the order written.
_V3_VERSIONS = """
CREATE TABLE answer_versions (
    message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    version    INTEGER NOT NULL,
    content    TEXT    NOT NULL DEFAULT '',
    reasoning  TEXT    NOT NULL DEFAULT '',
    tool_calls TEXT    NOT NULL DEFAULT '[]',
    status     TEXT    NOT NULL,
    effort     TEXT,
    stats      TEXT    NOT NULL DEFAULT '{}',
    error      TEXT,
    created_at REAL    NOT NULL,
    PRIMARY KEY (message_id, version)
) WITHOUT ROWID;
"""


def _v3_versions_and_instructions(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE messages ADD COLUMN version INTEGER NOT NULL DEFAULT 1")
    for statement in _statements(_V3_VERSIONS):
        conn.execute(statement)
    # Per-chat custom instructions; NULL: none of its own, so the app-wide ones apply.
    conn.execute("ALTER TABLE conversations ADD COLUMN instructions TEXT")


def _v4_tool_steps(conn: sqlite3.Connection) -> None:
    # The tool_calls JSON of messages and answer_versions gains optional keys for the calls the
    # tool loop runs (kind, title, language, summary, ok, duration_s, declined: records.ToolCall).
    # Nothing to convert; the version exists so that an older OSS Desk, whose reader would fail
    # on those keys, refuses the file as "newer" instead of failing on one chat.
    del conn


def _statements(script: str) -> list[str]:
    """Split a script into statements; executescript() would COMMIT our open transaction."""
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement in schema: {pending.strip()[:60]!r}")
    return statements


MIGRATIONS: tuple[Migration, ...] = (
    _v1_initial,
    _v2_stream_writer,
    _v3_versions_and_instructions,
    _v4_tool_steps,
)
SCHEMA_VERSION = len(MIGRATIONS)


def user_version(conn: sqlite3.Connection) -> int:
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


def migrate(conn: sqlite3.Connection, migrations: tuple[Migration, ...] = MIGRATIONS) -> int:
    """Bring the database up to len(migrations); return the version found before.

    The caller has checked that the file is not newer than `migrations`. The connection must be in
    autocommit mode (isolation_level=None) so the explicit transactions below are the only ones.
    """
    found = user_version(conn)
    for version in range(found, len(migrations)):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the write lock.
            if user_version(conn) > version:
                conn.execute("COMMIT")
                continue
            migrations[version](conn)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return found
