"""Library: the documents, their pages and the passage index, in one SQLite file (WAL).

The file is a sibling of the history database; the caller passes its path. A Library belongs to
the thread that opened it (sqlite3 enforces this): the indexing thread and the thread serving
the browser tool each open their own on the same path. WAL lets readers run while the indexer
commits, and the busy timeout queues a second writer instead of failing it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from engine.library import schema
from engine.library.errors import LibraryError, from_sqlite
from engine.library.paging import PageText, Passage
from engine.library.records import DocumentInfo, DocumentStatus, PassageHit, StoredPage
from engine.library.schema import PASSAGE_ID_BITS, passage_rowid_range
from engine.library.search import rank_passages

_DOCUMENT_COLUMNS = (
    "id, path, name, kind, sha256, size_bytes, mtime_ns, paged, pages_total, pages_done, "
    "status, error, warnings, folder_id"
)


def canonical(path: str | Path) -> Path:
    """One spelling per file: absolute, `~` expanded, symlinks resolved."""
    return Path(path).expanduser().resolve()


class Library:
    def __init__(self, path: str | Path, *, timeout_s: float = 10.0) -> None:
        self.path = Path(path)
        try:
            self._conn = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None)
        except sqlite3.Error as e:
            raise from_sqlite(e, self.path, "opened") from e
        try:
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._conn.execute("PRAGMA temp_store = MEMORY")  # search.py's scratch tables
            if schema.user_version(self._conn) > schema.SCHEMA_VERSION:
                raise LibraryError(self.path, "was made by a newer version of OSS Desk")
            schema.migrate(self._conn)
        except sqlite3.Error as e:
            self._conn.close()
            raise from_sqlite(e, self.path, "opened") from e
        except BaseException:
            self._conn.close()
            raise

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # Reading

    def documents(self, *, folder_id: int | None = None) -> list[DocumentInfo]:
        where, args = ("WHERE folder_id = ?", (folder_id,)) if folder_id is not None else ("", ())
        rows = self._read(f"SELECT {_DOCUMENT_COLUMNS} FROM documents {where} ORDER BY id", args)
        return [_document(row) for row in rows]

    def document(self, document_id: int) -> DocumentInfo | None:
        rows = self._read(f"SELECT {_DOCUMENT_COLUMNS} FROM documents WHERE id = ?", (document_id,))
        return _document(rows[0]) if rows else None

    def document_by_path(self, path: str | Path) -> DocumentInfo | None:
        rows = self._read(
            f"SELECT {_DOCUMENT_COLUMNS} FROM documents WHERE path = ?", (str(canonical(path)),)
        )
        return _document(rows[0]) if rows else None

    def documents_by_sha(self, sha256: str) -> list[DocumentInfo]:
        rows = self._read(f"SELECT {_DOCUMENT_COLUMNS} FROM documents WHERE sha256 = ?", (sha256,))
        return [_document(row) for row in rows]

    def page(self, document_id: int, number: int) -> StoredPage | None:
        document = self.document(document_id)
        if document is None:
            return None
        rows = self._read(
            "SELECT text, line_count FROM pages WHERE document_id = ? AND number = ?",
            (document_id, number),
        )
        if not rows:
            return None
        text, line_count = rows[0]
        return StoredPage(document, number, text, line_count)

    def has_searchable(self, document_ids: Collection[int] | None = None) -> bool:
        """Whether any (of these) documents has indexed pages."""
        sql = "SELECT 1 FROM documents WHERE status != 'failed' AND pages_done > 0"
        if document_ids is None:
            return bool(self._read(sql + " LIMIT 1", ()))
        ids = list(document_ids)
        return any(self._read(sql + " AND id = ?", (i,)) for i in ids)

    def search(
        self, query: str, *, limit: int = 10, document_ids: Collection[int] | None = None
    ) -> list[PassageHit]:
        """The best passage of each of the `limit` best-ranked pages (BM25), best first."""
        try:
            ranked = rank_passages(self._conn, query, limit, document_ids)
        except sqlite3.Error as e:
            raise from_sqlite(e, self.path, "searched") from e
        documents: dict[int, DocumentInfo | None] = {}
        hits = []
        for r in ranked:
            if r.document_id not in documents:
                documents[r.document_id] = self.document(r.document_id)
            document = documents[r.document_id]
            if document is not None:
                hits.append(
                    PassageHit(
                        document,
                        r.page,
                        r.first_line,
                        r.last_line,
                        r.match_line,
                        r.snippet,
                        r.score,
                    )
                )
        return hits

    def folders(self) -> list[tuple[int, Path]]:
        return [(i, Path(p)) for i, p in self._read("SELECT id, path FROM folders ORDER BY id", ())]

    def passage_count(self) -> int:
        return int(self._read("SELECT count(*) FROM passages", ())[0][0])

    # Writing (the indexer drives these; each call is one transaction unless it says otherwise)

    def add_folder(self, path: str | Path) -> int:
        folder = str(canonical(path))
        with self._transaction():
            self._conn.execute(
                "INSERT OR IGNORE INTO folders (path, added_at) VALUES (?, ?)",
                (folder, time.time()),
            )
            row = self._conn.execute("SELECT id FROM folders WHERE path = ?", (folder,)).fetchone()
        return int(row[0])

    def remove_folder(self, folder_id: int) -> None:
        """Forget a watched folder and the documents found in it."""
        with self._transaction():
            for document in self.documents(folder_id=folder_id):
                self._delete_document(document.id)
            self._conn.execute("DELETE FROM folders WHERE id = ?", (folder_id,))

    def remove_document(self, document_id: int) -> None:
        with self._transaction():
            self._delete_document(document_id)

    def start_document(self, info: dict[str, Any], *, keep_pages: bool) -> int:
        """Create or reset the row for info["path"] in state "indexing"; return its id.

        `keep_pages` resumes an interrupted run of the same content: pages already committed stay.
        """
        with self._transaction():
            row = self._conn.execute(
                "SELECT id FROM documents WHERE path = ?", (info["path"],)
            ).fetchone()
            values = {**info, "status": "indexing", "error": None, "indexed_at": time.time()}
            if row is None:
                columns = ", ".join(values)
                marks = ", ".join(f":{k}" for k in values)
                cursor = self._conn.execute(
                    f"INSERT INTO documents ({columns}, pages_done) VALUES ({marks}, 0)", values
                )
                return int(cursor.lastrowid or 0)
            document_id = int(row[0])
            if not keep_pages:
                self._delete_pages(document_id)
                values["pages_done"] = values["passages"] = 0
            sets = ", ".join(f"{k} = :{k}" for k in values)
            self._conn.execute(
                f"UPDATE documents SET {sets} WHERE id = :id", {**values, "id": document_id}
            )
            return document_id

    def add_pages(
        self, document_id: int, pages: Sequence[tuple[PageText, int, Sequence[Passage]]]
    ) -> None:
        """Append (page, line_count, passages) in one transaction and advance pages_done."""
        first, last = passage_rowid_range(document_id)
        with self._transaction():
            (top,) = self._conn.execute(
                "SELECT max(rowid) FROM passages WHERE rowid BETWEEN ? AND ?", (first, last)
            ).fetchone()
            rowid = first if top is None else top + 1
            for page, line_count, found in pages:
                self._conn.execute(
                    "INSERT INTO pages (document_id, number, text, line_count) VALUES (?, ?, ?, ?)",
                    (document_id, page.number, page.text, line_count),
                )
                rows = []
                for passage in found:
                    rows.append(
                        (rowid, passage.text, page.number, passage.first_line, passage.last_line)
                    )
                    rowid += 1
                if rowid > last + 1:
                    raise ValueError(
                        f"document {document_id} has more than 2**{PASSAGE_ID_BITS} passages"
                    )
                self._conn.executemany(
                    "INSERT INTO passages (rowid, text, page, first_line, last_line) "
                    "VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
            added = sum(len(found) for _, _, found in pages)
            self._conn.execute(
                "UPDATE documents SET pages_done = pages_done + ?, passages = passages + ? "
                "WHERE id = ?",
                (len(pages), added, document_id),
            )

    def finish_document(self, document_id: int) -> None:
        self._update(document_id, status="ready")

    def update_document(self, document_id: int, **values: Any) -> None:
        self._update(document_id, **values)

    def record_failure(self, info: dict[str, Any], message: str) -> None:
        """Keep an unreadable file's identity and reason, so an unchanged file is not retried."""
        with self._transaction():
            row = self._conn.execute(
                "SELECT id FROM documents WHERE path = ?", (info["path"],)
            ).fetchone()
            if row is not None:
                self._delete_document(int(row[0]))
            values = {
                **info,
                "status": "failed",
                "error": message,
                "paged": 0,
                "pages_total": 0,
                "indexed_at": time.time(),
            }
            columns = ", ".join(values)
            marks = ", ".join(f":{k}" for k in values)
            self._conn.execute(f"INSERT INTO documents ({columns}) VALUES ({marks})", values)

    # Internals

    def _read(self, sql: str, args: Iterable[Any]) -> list[Any]:
        try:
            return self._conn.execute(sql, tuple(args)).fetchall()
        except sqlite3.Error as e:
            raise from_sqlite(e, self.path, "read") from e

    def _update(self, document_id: int, **values: Any) -> None:
        sets = ", ".join(f"{k} = :{k}" for k in values)
        with self._transaction():
            self._conn.execute(
                f"UPDATE documents SET {sets} WHERE id = :id", {**values, "id": document_id}
            )

    def _delete_pages(self, document_id: int) -> None:
        first, last = passage_rowid_range(document_id)
        self._conn.execute("DELETE FROM passages WHERE rowid BETWEEN ? AND ?", (first, last))
        self._conn.execute("DELETE FROM pages WHERE document_id = ?", (document_id,))

    def _delete_document(self, document_id: int) -> None:
        self._delete_pages(document_id)
        self._conn.execute("DELETE FROM documents WHERE id = ?", (document_id,))

    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn, self.path)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception; nested use joins the outer one."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self._path = path
        self._outer = False

    def __enter__(self) -> None:
        self._outer = not self._conn.in_transaction
        if self._outer:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise from_sqlite(e, self._path, "updated") from e

    def __exit__(
        self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._outer:
            return
        if kind is None:
            try:
                self._conn.execute("COMMIT")
                return
            except sqlite3.Error as error:
                self._conn.execute("ROLLBACK")
                raise from_sqlite(error, self._path, "updated") from error
        self._conn.execute("ROLLBACK")
        if isinstance(e, sqlite3.Error):
            raise from_sqlite(e, self._path, "updated") from e


def _document(row: tuple[Any, ...]) -> DocumentInfo:
    (i, path, name, kind, sha, size, mtime, paged, total, done, status, error, warnings, folder) = (
        row
    )
    status_value: DocumentStatus = status
    return DocumentInfo(
        id=i,
        path=Path(path),
        name=name,
        kind=kind,
        sha256=sha,
        size_bytes=size,
        mtime_ns=mtime,
        paged=bool(paged),
        pages_total=total,
        pages_done=done,
        status=status_value,
        error=error,
        warnings=tuple(w for w in warnings.split("\n") if w),
        folder_id=folder,
    )
