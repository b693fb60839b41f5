"""Sidebar search off the UI thread: a slow search never stalls the window, each keystroke
supersedes the search before it, and a failure is reported once."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from app.history import HistoryStore, SearchHit
from app.history import searcher as searcher_module
from app.messages import MessageBridge, UserMessage
from app.sidebar import BackgroundSearch, Sidebar

HEARTBEAT_MS = 10
MAX_STALL_S = 0.100
SEARCH_TIMEOUT_MS = 30_000


@pytest.fixture
def db_path(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "history.sqlite3"
    with HistoryStore(path) as store:
        for i in range(10):
            conv = store.create_conversation()
            store.add_user_message(conv, f"question {i}")
            answer = store.begin_assistant_message(conv, "low")
            store.append_to_message(answer, f"the wombat number {i}")
            store.finish_message(answer, "complete")
        yield path


@pytest.fixture
def slow_steps(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """A pause of 1 ms at every SQLite step: one search of these chats takes about a second."""
    monkeypatch.setattr(searcher_module, "PROGRESS_STEPS", 1)
    return lambda: time.sleep(0.001)


@pytest.fixture
def sidebar(qtbot: QtBot) -> Sidebar:
    widget = Sidebar()
    qtbot.addWidget(widget)
    return widget


class Heartbeat:
    """A 10 ms timer on the UI thread; the longest gap between its ticks is how long the UI
    thread was busy elsewhere."""

    def __init__(self) -> None:
        self.ticks: list[float] = []
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(HEARTBEAT_MS)
        self._timer.timeout.connect(lambda: self.ticks.append(time.monotonic()))
        self._timer.start()

    def stop(self) -> float:
        self._timer.stop()
        return max(b - a for a, b in zip(self.ticks, self.ticks[1:], strict=False))


def shown_hits(sidebar: Sidebar) -> list[str]:
    labels = [sidebar.list.itemWidget(sidebar.list.item(i)) for i in range(sidebar.list.count())]
    return [label.text() for label in labels if isinstance(label, QLabel)]


def test_a_slow_search_never_stalls_the_ui(
    qtbot: QtBot, sidebar: Sidebar, db_path: Path, slow_steps: Callable[[], None]
) -> None:
    sidebar.use_background_search(BackgroundSearch(db_path, on_step=slow_steps))
    asked: list[str] = []
    sidebar.search_changed.connect(asked.append)
    heartbeat = Heartbeat()
    started = time.monotonic()
    qtbot.keyClicks(sidebar.search, "wombat")
    qtbot.waitUntil(lambda: len(shown_hits(sidebar)) == 10, timeout=SEARCH_TIMEOUT_MS)
    took = time.monotonic() - started
    longest_gap = heartbeat.stop()
    assert took > 0.5  # the search really was slow...
    assert longest_gap < HEARTBEAT_MS / 1000 + MAX_STALL_S, longest_gap  # ...and the UI ran on
    assert all("<b>wombat</b>" in text for text in shown_hits(sidebar))
    assert asked == []  # the owner was not asked to search on the UI thread


def test_each_keystroke_supersedes_the_running_search(
    qtbot: QtBot,
    sidebar: Sidebar,
    db_path: Path,
    slow_steps: Callable[[], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sidebar.use_background_search(BackgroundSearch(db_path, on_step=slow_steps))
    shown: list[list[SearchHit]] = []
    show = sidebar.show_hits

    def record(hits: list[SearchHit]) -> None:
        shown.append(list(hits))
        show(hits)

    monkeypatch.setattr(sidebar, "show_hits", record)
    qtbot.keyClicks(sidebar.search, "wom")
    qtbot.wait(400)  # the debounce has passed: the search for "wom" is running
    qtbot.keyClicks(sidebar.search, "bat 7")
    qtbot.waitUntil(lambda: len(shown) == 1, timeout=SEARCH_TIMEOUT_MS)
    qtbot.wait(300)
    assert len(shown) == 1  # nothing for "wom" came, before or after
    [hit] = shown[0]
    assert hit.title == "question 7"


def test_clearing_the_search_returns_to_the_list_and_drops_a_late_result(
    qtbot: QtBot, sidebar: Sidebar, db_path: Path, slow_steps: Callable[[], None]
) -> None:
    sidebar.use_background_search(BackgroundSearch(db_path, on_step=slow_steps))
    with qtbot.waitSignal(sidebar.search_changed, timeout=5000) as cleared:
        qtbot.keyClicks(sidebar.search, "wombat")
        qtbot.wait(400)
        sidebar.search.clear()
    assert cleared.args == [""]  # the owner shows the conversations again
    qtbot.wait(1500)
    assert shown_hits(sidebar) == []


def test_a_failing_search_is_reported_once(
    qtbot: QtBot, sidebar: Sidebar, tmp_path: Path, fresh_bridge: MessageBridge
) -> None:
    damaged = tmp_path / "history.sqlite3"
    damaged.write_bytes(b"not a database " * 100)
    posted: list[UserMessage] = []
    fresh_bridge.attach(posted.append)
    sidebar.use_background_search(BackgroundSearch(damaged))
    qtbot.keyClicks(sidebar.search, "wom")
    qtbot.waitUntil(lambda: len(posted) == 1, timeout=SEARCH_TIMEOUT_MS)
    qtbot.keyClicks(sidebar.search, "bat")
    qtbot.wait(600)
    assert len(posted) == 1
    assert posted[0].level == "error"
    assert posted[0].text.startswith(f"The conversation history file {damaged} is damaged")


def test_without_a_background_search_the_owner_is_asked(qtbot: QtBot, sidebar: Sidebar) -> None:
    with qtbot.waitSignal(sidebar.search_changed, timeout=5000) as asked:
        qtbot.keyClicks(sidebar.search, " kiwi ")
    assert asked.args == ["kiwi"]
    assert not sidebar.refresh_search()


def test_refresh_searches_again_in_the_background(
    qtbot: QtBot, sidebar: Sidebar, db_path: Path
) -> None:
    sidebar.use_background_search(BackgroundSearch(db_path))
    qtbot.keyClicks(sidebar.search, "wombat")
    qtbot.waitUntil(lambda: len(shown_hits(sidebar)) == 10, timeout=SEARCH_TIMEOUT_MS)
    with HistoryStore(db_path) as store:
        store.delete_conversation(3)
    assert sidebar.refresh_search()
    qtbot.waitUntil(lambda: len(shown_hits(sidebar)) == 9, timeout=SEARCH_TIMEOUT_MS)
