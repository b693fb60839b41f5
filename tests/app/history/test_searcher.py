"""The search thread: results as values, the newest query wins, a superseded query stops early."""

from __future__ import annotations

import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.history import HistoryError, HistoryStore
from app.history import searcher as searcher_module
from app.history.searcher import Searcher, SearchResult

RESULT_TIMEOUT_S = 10.0


class Results:
    """Collects what a Searcher delivers, from its thread."""

    def __init__(self) -> None:
        self.queue: queue.Queue[SearchResult] = queue.Queue()
        self.threads: set[str] = set()

    def __call__(self, result: SearchResult) -> None:
        self.threads.add(threading.current_thread().name)
        self.queue.put(result)

    def next(self, timeout_s: float = RESULT_TIMEOUT_S) -> SearchResult:
        return self.queue.get(timeout=timeout_s)

    def none_within(self, seconds: float) -> bool:
        try:
            self.queue.get(timeout=seconds)
        except queue.Empty:
            return True
        return False


@pytest.fixture
def results() -> Results:
    return Results()


@pytest.fixture
def make_searcher(db_path: Path, results: Results) -> Iterator[Callable[..., Searcher]]:
    made: list[Searcher] = []

    def make(**kwargs: object) -> Searcher:
        made.append(Searcher(db_path, results, **kwargs))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for searcher in made:
        assert searcher.close(), "the search thread did not end"


def _chats(store: HistoryStore, n: int, text: str) -> list[int]:
    made = []
    for i in range(n):
        conv = store.create_conversation()
        store.add_user_message(conv, f"question {i}")
        answer = store.begin_assistant_message(conv, "low")
        store.append_to_message(answer, f"{text} number {i}")
        store.finish_message(answer, "complete")
        made.append(conv)
    return made


def test_results_arrive_on_the_search_thread_as_values(
    store: HistoryStore, make_searcher: Callable[..., Searcher], results: Results
) -> None:
    chats = _chats(store, 3, "capybara")
    searcher = make_searcher()
    generation = searcher.submit("capybara")
    result = results.next()
    assert (result.generation, result.text, result.error) == (generation, "capybara", None)
    assert sorted(hit.conversation_id for hit in result.hits) == sorted(chats)
    assert results.threads == {"history-search"}


@pytest.fixture
def slow_steps(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Makes a search slow the way a heavy query is: a pause at each of its SQLite steps (1 ms
    every step, so a search of 20 chats takes a second or more), which a superseding query
    must cut short."""
    monkeypatch.setattr(searcher_module, "PROGRESS_STEPS", 1)
    return lambda: time.sleep(0.001)


def test_a_new_query_stops_the_running_one(
    store: HistoryStore,
    make_searcher: Callable[..., Searcher],
    results: Results,
    slow_steps: Callable[[], None],
) -> None:
    _chats(store, 10, "wombat")
    searcher = make_searcher(on_step=slow_steps)
    searcher.submit("wombat")
    whole_s = results.next().elapsed_s  # what the search costs when it runs to its end
    assert whole_s > 0.5
    started = time.monotonic()
    searcher.submit("wombat")
    time.sleep(0.2)  # it is running now
    wanted = searcher.submit("zzzz")  # a quick one: nothing matches
    result = results.next()
    assert (result.generation, result.text, result.hits) == (wanted, "zzzz", ())
    assert time.monotonic() - started < 0.2 + 0.6 * whole_s
    assert results.none_within(0.3)  # the superseded search delivered nothing


def test_only_the_newest_of_many_keystrokes_is_delivered(
    store: HistoryStore,
    make_searcher: Callable[..., Searcher],
    results: Results,
    slow_steps: Callable[[], None],
) -> None:
    _chats(store, 5, "pangolin")
    searcher = make_searcher(on_step=slow_steps)
    for end in range(1, len("pangolin") + 1):
        last = searcher.submit("pangolin"[:end])
        time.sleep(0.02)
    result = results.next()
    assert (result.generation, result.text) == (last, "pangolin")
    assert len(result.hits) == 5
    assert results.none_within(0.3)


def test_cancel_delivers_nothing_and_close_ends_a_running_search(
    store: HistoryStore, db_path: Path, results: Results, slow_steps: Callable[[], None]
) -> None:
    _chats(store, 20, "quoll")
    searcher = Searcher(db_path, results, on_step=slow_steps)
    searcher.submit("quoll")
    time.sleep(0.2)
    searcher.cancel()
    assert results.none_within(0.5)
    searcher.submit("quoll")
    time.sleep(0.2)
    started = time.monotonic()
    assert searcher.close(timeout_s=5)
    assert time.monotonic() - started < 0.5
    assert results.none_within(0.2)
    with pytest.raises(RuntimeError):
        searcher.submit("quoll")


def test_a_search_reads_beside_a_writer_holding_the_write_lock(
    store: HistoryStore, db_path: Path, make_searcher: Callable[..., Searcher], results: Results
) -> None:
    chats = _chats(store, 2, "numbat")
    writer = sqlite3.connect(db_path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE conversations SET title = 'busy'")
    try:
        started = time.monotonic()
        make_searcher().submit("numbat")
        result = results.next()
        assert time.monotonic() - started < 2.0
        assert sorted(h.conversation_id for h in result.hits) == sorted(chats)
        assert {h.title for h in result.hits} != {"busy"}  # the last committed state
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_the_search_connection_cannot_write(
    store: HistoryStore, db_path: Path, make_searcher: Callable[..., Searcher], results: Results
) -> None:
    _chats(store, 1, "dingo")
    searcher = make_searcher()
    searcher.submit("dingo")
    assert results.next().error is None
    before = db_path.stat().st_mtime_ns, Path(f"{db_path}-wal").stat().st_size
    searcher.submit("dingo")
    results.next()
    assert (db_path.stat().st_mtime_ns, Path(f"{db_path}-wal").stat().st_size) == before


def test_a_damaged_file_is_reported_as_a_value(tmp_path: Path, results: Results) -> None:
    damaged = tmp_path / "history.sqlite3"
    damaged.write_bytes(b"this is not a database" * 100)
    searcher = Searcher(damaged, results)
    try:
        searcher.submit("anything")
        result = results.next()
    finally:
        assert searcher.close()
    assert isinstance(result.error, HistoryError) and result.error.kind == "corrupt"
    assert result.hits == ()


def test_a_missing_file_is_reported_and_the_next_search_tries_again(
    tmp_path: Path, results: Results
) -> None:
    path = tmp_path / "later.sqlite3"
    searcher = Searcher(path, results)
    try:
        searcher.submit("emu")
        missing = results.next()
        assert isinstance(missing.error, HistoryError) and missing.error.kind == "unavailable"
        with HistoryStore(path) as store:
            _chats(store, 1, "emu")
            searcher.submit("emu")
            assert len(results.next().hits) == 1
    finally:
        assert searcher.close()
