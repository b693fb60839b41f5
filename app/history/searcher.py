"""Searches on a thread of their own, so typing in the search field never waits for SQLite.

    searcher = Searcher(store.path, deliver=on_result)   # on_result runs on the search thread
    searcher.submit("pyth")                               # returns at once
    searcher.submit("python")                             # the "pyth" search stops early

The thread opens its own read-only connection (WAL lets it read beside the one writer). Only the
newest query matters: submit() supersedes whatever runs, and a progress handler ends a superseded
query within PROGRESS_STEPS SQLite instructions instead of letting it finish. Results and
failures cross back as values (SearchResult); a superseded search delivers nothing.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.history.errors import from_sqlite, is_database_failure
from app.history.records import SearchHit
from app.history.search import search

log = logging.getLogger(__name__)

# SQLite virtual machine instructions between two checks: about 0.1 ms of work, so a superseded
# query stops at once while the check itself costs nothing measurable.
PROGRESS_STEPS = 1000


@dataclass(frozen=True)
class SearchResult:
    generation: int  # as returned by the submit() that asked for it
    text: str
    hits: tuple[SearchHit, ...] = ()
    error: Exception | None = None  # HistoryError, or a bug of ours
    elapsed_s: float = 0.0


class Searcher:
    def __init__(
        self,
        path: Path | str,
        deliver: Callable[[SearchResult], None],
        *,
        limit: int = 50,
        on_step: Callable[[], None] | None = None,
    ) -> None:
        """`deliver` is called on the search thread. `on_step` runs on every progress check
        (tests slow a query down with it)."""
        self.path = Path(path)
        self._deliver = deliver
        self._limit = limit
        self._on_step = on_step
        self._changed = threading.Condition()
        self._generation = 0
        self._running: int | None = None  # the generation of the query SQLite is running
        self._pending: tuple[int, str] | None = None
        self._closed = False
        self._thread: threading.Thread | None = None

    def submit(self, text: str) -> int:
        """Search for `text` once the thread is free, superseding any earlier search."""
        with self._changed:
            if self._closed:
                raise RuntimeError("the searcher is closed")
            self._generation += 1
            self._pending = (self._generation, text)
            if self._thread is None:  # started on first use: most sessions never search
                self._thread = threading.Thread(target=self._run, name="history-search")
                self._thread.daemon = True  # a forgotten close() must not keep the app alive
                self._thread.start()
            self._changed.notify()
            return self._generation

    def cancel(self) -> int:
        """Stop the running search and forget a waiting one; nothing is delivered for them."""
        with self._changed:
            self._generation += 1
            self._pending = None
            return self._generation

    def close(self, timeout_s: float = 5.0) -> bool:
        """Stop the thread (and its search); False if it did not end within timeout_s."""
        with self._changed:
            self._closed = True
            self._generation += 1
            self._pending = None
            self._changed.notify()
            thread = self._thread
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout_s)
        return not thread.is_alive()

    # -- the search thread ----------------------------------------------------------------

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while (job := self._next()) is not None:
                generation, text = job
                if conn is None:
                    conn, error = self._connect()
                    if error is not None:
                        self._send(SearchResult(generation, text, error=error))
                        continue
                assert conn is not None
                result = self._search(conn, generation, text)
                if result is not None:
                    self._send(result)
        finally:
            if conn is not None:
                conn.close()

    def _next(self) -> tuple[int, str] | None:
        with self._changed:
            while self._pending is None and not self._closed:
                self._changed.wait()
            if self._closed:
                return None
            job, self._pending = self._pending, None
            return job

    def _connect(self) -> tuple[sqlite3.Connection | None, Exception | None]:
        try:
            uri = self.path.absolute().as_uri() + "?mode=ro"
            conn = sqlite3.connect(uri, uri=True, isolation_level=None)
        except sqlite3.Error as e:
            return None, from_sqlite(e, self.path)
        conn.set_progress_handler(self._progress, PROGRESS_STEPS)
        return conn, None

    def _progress(self) -> int:
        if self._on_step is not None:
            self._on_step()
        # Reading an int another thread writes is atomic in CPython; a stale read costs one step.
        running = self._running
        return 1 if running is not None and running != self._generation else 0

    def _search(self, conn: sqlite3.Connection, generation: int, text: str) -> SearchResult | None:
        started = time.monotonic()
        try:
            conn.execute("BEGIN")  # one snapshot for the statements of one search
            self._running = generation
            try:
                hits = search(conn, text, self._limit)
            finally:
                self._running = None  # ending the transaction must not be interrupted
                if conn.in_transaction:
                    conn.execute("ROLLBACK")  # it only read
        except sqlite3.OperationalError as e:
            if generation != self._generation and "interrupt" in str(e):
                return None  # superseded: a newer search is waiting
            return self._failed(generation, text, e)
        except Exception as e:  # the thread's boundary: reported as a value, never swallowed
            return self._failed(generation, text, e)
        return SearchResult(generation, text, tuple(hits), None, time.monotonic() - started)

    def _failed(self, generation: int, text: str, error: Exception) -> SearchResult:
        if isinstance(error, sqlite3.Error) and is_database_failure(error):
            return SearchResult(generation, text, error=from_sqlite(error, self.path))
        log.exception("searching the history failed")
        return SearchResult(generation, text, error=error)

    def _send(self, result: SearchResult) -> None:
        if result.generation != self._generation:
            return  # superseded while it finished
        try:
            self._deliver(result)
        except Exception:
            log.exception("delivering a search result failed")
