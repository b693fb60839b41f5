"""The library database's tables and their migrations, one function per version.

`PRAGMA user_version` counts the migrations applied; to change the schema append a function to
MIGRATIONS (never edit a released one). Each runs in one transaction with its version bump.

Passage rowids carry their document: rowid = document_id << PASSAGE_ID_BITS | n. FTS5 cannot
index an UNINDEXED column, but it does seek on rowid ranges, so deleting or scoping a document's
passages never scans the whole index.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

Migration = Callable[[sqlite3.Connection], None]

TOKENIZER = "porter unicode61 remove_diacritics 2"
PASSAGE_ID_BITS = 24  # 16.7 million passages per document: far above a 50 MB text file's ~70,000

# Status values are stored strings; never rename one (records.DocumentStatus lists them).
_V1 = f"""
CREATE TABLE folders (
    id       INTEGER PRIMARY KEY,
    path     TEXT    NOT NULL UNIQUE,
    added_at REAL    NOT NULL
);

CREATE TABLE documents (
    id          INTEGER PRIMARY KEY,
    path        TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    sha256      TEXT    NOT NULL,
    size_bytes  INTEGER NOT NULL,
    mtime_ns    INTEGER NOT NULL,
    paged       INTEGER NOT NULL,            -- 1: PDF pages; 0: sections (see paging.py)
    pages_total INTEGER NOT NULL,
    pages_done  INTEGER NOT NULL DEFAULT 0,  -- pages committed so far; a resume starts after them
    passages    INTEGER NOT NULL DEFAULT 0,  -- its rows in `passages` (search.py counts them)
    status      TEXT    NOT NULL,            -- indexing | ready | failed
    error       TEXT,                        -- why a failed document could not be read
    warnings    TEXT    NOT NULL DEFAULT '', -- the extractor's warnings, one per line
    folder_id   INTEGER REFERENCES folders (id) ON DELETE SET NULL,
    indexed_at  REAL    NOT NULL
);
CREATE INDEX documents_by_folder ON documents (folder_id);
CREATE INDEX documents_by_sha ON documents (sha256);

CREATE TABLE pages (
    document_id INTEGER NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    number      INTEGER NOT NULL,
    text        TEXT    NOT NULL,
    line_count  INTEGER NOT NULL,
    PRIMARY KEY (document_id, number)
) WITHOUT ROWID;

CREATE VIRTUAL TABLE passages USING fts5 (
    text,
    page UNINDEXED,
    first_line UNINDEXED,
    last_line UNINDEXED,
    tokenize = '{TOKENIZER}'
);
-- How many passages hold each (stemmed) term: search.py drops very common words from queries.
CREATE VIRTUAL TABLE passages_vocab USING fts5vocab (passages, 'row');
"""


def _v1_initial(conn: sqlite3.Connection) -> None:
    for statement in _statements(_V1):
        conn.execute(statement)


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


MIGRATIONS: tuple[Migration, ...] = (_v1_initial,)
SCHEMA_VERSION = len(MIGRATIONS)


def user_version(conn: sqlite3.Connection) -> int:
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


def migrate(conn: sqlite3.Connection) -> None:
    """Bring an autocommit connection's database up to SCHEMA_VERSION."""
    for version in range(user_version(conn), SCHEMA_VERSION):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another thread or process may have migrated while we waited for the write lock.
            if user_version(conn) <= version:
                MIGRATIONS[version](conn)
                conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def passage_rowid_range(document_id: int) -> tuple[int, int]:
    """The inclusive rowid range of one document's passages."""
    first = document_id << PASSAGE_ID_BITS
    return first, first + (1 << PASSAGE_ID_BITS) - 1
