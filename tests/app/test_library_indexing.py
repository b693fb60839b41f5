"""Attaching a document indexes it in the background (app/library_indexer.py): the chip shows the
progress, removing the chip cancels and leaves no half document, a file deleted meanwhile gives a
clear note, a turn that needs the document waits with the progress in its status (Stop ends the
wait), and quitting stops the indexing thread. The indexing thread is held at a page batch by a
slot connected directly to it, so every step is deterministic; everything else is real (reader
process, tiny engine with scripted tokens, SQLite on disk)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.attachments import AttachmentTray
from app.library_indexer import LibraryIndexer
from app.main_window import MainWindow
from app.turn_stream import TurnResult
from engine import HarmonyTokenizer, JobState, Library
from tests.app.conftest import TURN_TIMEOUT_MS, MakeWindow
from tests.app.scripting import ScriptedSessions
from tests.app.test_chat_flow import last_answer
from tests.app.test_document_browsing import (
    browser_call,
    browsing_window,
    final,
    script_tokens,
)
from tests.app.test_documents import drop, wait_read
from tests.engine.library.documents import filler, write_text

pytestmark = pytest.mark.qt_log_ignore(
    "This plugin does not support propagateSizeHints", "This plugin does not support raise"
)


SECTIONS = 200  # about 400 sections of the text (paging.py): several batches of 64 pages
FACT = "The Halvorsen turbine was commissioned in 1987 at the Kestrel Bay plant."
HOLD_S = 20.0


def notes(folder: Path) -> Path:
    sections = [filler(n, 600) for n in range(SECTIONS)]
    sections[150] = f"{filler(150, 300)} {FACT} {filler(151, 200)}"
    return write_text(folder / "notes.txt", "\n\n".join(sections))


class Gate:
    """Connected directly to the indexer's job_changed, so it runs on the indexing thread: holds
    that thread after the first committed batch until `release` is set."""

    def __init__(self, indexer: LibraryIndexer) -> None:
        self.held = threading.Event()
        self.release = threading.Event()
        indexer.job_changed.connect(self._changed, Qt.ConnectionType.DirectConnection)

    def _changed(self, state: JobState) -> None:
        first_batch = state.status == "indexing" and 0 < state.pages_done < state.pages_total
        if first_batch and not self.held.is_set():
            self.held.set()
            self.release.wait(HOLD_S)


def held_window(
    qtbot: QtBot, make_window: MakeWindow, tok: HarmonyTokenizer, folder: Path
) -> tuple[MainWindow, ScriptedSessions, LibraryIndexer, Gate, Path]:
    """A window whose notes.txt is attached and half indexed, the indexing thread held."""
    window, script = browsing_window(make_window, tok)
    indexer = window.library
    assert isinstance(indexer, LibraryIndexer)
    gate = Gate(indexer)
    path = notes(folder)
    drop(window, [path])
    wait_read(qtbot, window, 1)
    qtbot.waitUntil(gate.held.is_set, timeout=TURN_TIMEOUT_MS)
    return window, script, indexer, gate, path


def chip_texts(window: MainWindow) -> list[str]:
    tray = window.composer.tray
    assert isinstance(tray, AttachmentTray)
    return [chip.label.text() for chip in tray.chips()]


def pages_total(indexer: LibraryIndexer, path: Path) -> int:
    assert indexer.jobs is not None
    state = indexer.jobs.state(path)
    assert state is not None and state.pages_total > 128
    return state.pages_total


def job_ended(indexer: LibraryIndexer, path: Path) -> Callable[[], bool]:
    def ended() -> bool:
        assert indexer.jobs is not None
        state = indexer.jobs.state(path)
        return state is not None and not state.running

    return ended


def test_the_chip_shows_progress_and_removing_it_cancels_without_a_half_document(
    qtbot: QtBot,
    make_window: MakeWindow,
    real_tok: HarmonyTokenizer,
    tmp_path: Path,
    data_dir: Path,
) -> None:
    window, _script, indexer, gate, path = held_window(qtbot, make_window, real_tok, tmp_path)
    total = pages_total(indexer, path)
    expected = [f"notes.txt · will be searched · indexing 64/{total} pages"]
    qtbot.waitUntil(lambda: chip_texts(window) == expected)
    with Library(data_dir / "library.sqlite3") as library:
        half = library.document_by_path(path)
        assert half is not None and half.status == "indexing" and half.pages_done == 64

    tray = window.composer.tray
    assert isinstance(tray, AttachmentTray)
    tray.chips()[0].remove_button.click()
    gate.release.set()
    qtbot.waitUntil(job_ended(indexer, path), timeout=TURN_TIMEOUT_MS)
    assert indexer.jobs is not None and indexer.jobs.state(path).status == "cancelled"  # type: ignore[union-attr]
    assert window.attachments.items() == []
    with Library(data_dir / "library.sqlite3") as library:
        assert library.document_by_path(path) is None
        assert library.passage_count() == 0
    assert not window.banners.banners()  # a cancel is not a problem


def test_a_document_deleted_while_it_is_indexed_gives_a_clear_note(
    qtbot: QtBot,
    make_window: MakeWindow,
    real_tok: HarmonyTokenizer,
    tmp_path: Path,
    data_dir: Path,
) -> None:
    window, _script, _indexer, gate, path = held_window(qtbot, make_window, real_tok, tmp_path)
    path.unlink()
    gate.release.set()
    qtbot.waitUntil(lambda: bool(window.banners.banners()), timeout=TURN_TIMEOUT_MS)
    (banner,) = window.banners.banners()
    assert banner.message.level == "warning"
    assert banner.message.text == (
        "notes.txt was moved or deleted while it was being indexed; put it back and attach it "
        "again to search it."
    )
    assert chip_texts(window) == ["notes.txt · will be searched"]
    with Library(data_dir / "library.sqlite3") as library:
        assert library.documents() == [] and library.passage_count() == 0


def send_now(qtbot: QtBot, window: MainWindow, text: str) -> None:
    window.composer.set_text(text)
    qtbot.keyClick(window.composer.input, Qt.Key.Key_Return)


def test_a_turn_waits_for_its_document_with_the_progress_in_its_status(
    qtbot: QtBot,
    make_window: MakeWindow,
    real_tok: HarmonyTokenizer,
    tmp_path: Path,
    data_dir: Path,
) -> None:
    window, script, indexer, gate, path = held_window(qtbot, make_window, real_tok, tmp_path)
    total = pages_total(indexer, path)
    script_tokens(
        script,
        browser_call("search", '{"query": "Halvorsen turbine"}'),
        browser_call("open", '{"id": 0}'),
        final("In 1987 【1†L1】."),
    )
    with qtbot.waitSignal(window.controller.turn_completed, timeout=TURN_TIMEOUT_MS) as done:
        send_now(qtbot, window, "When was the Halvorsen turbine commissioned?")
        waiting = f"Indexing notes.txt (64/{total} pages). The answer starts when it is searchable."
        qtbot.waitUntil(lambda: last_answer(window).status_label.text() == waiting)
        assert window.attachments.items() == []  # sent: the chip went, the indexing did not
        gate.release.set()
    result: TurnResult = done.args[0]
    assert result.status == "complete" and result.error is None
    searched, opened = last_answer(window).thinking.steps
    assert searched.startswith("searched: Halvorsen turbine (")
    assert opened.startswith("opened notes.txt, section ")  # beyond the first batch
    assert result.citations is not None
    (cited,) = result.citations.citations
    assert cited.target is not None and cited.target.path == path.resolve()
    with Library(data_dir / "library.sqlite3") as library:  # found in the complete index
        info = library.document_by_path(path)
        assert info is not None and info.status == "ready"
        page = library.page(info.id, cited.target.page)
        assert page is not None and FACT in " ".join(page.text.split())


def test_stop_ends_the_wait_for_a_document_being_indexed(
    qtbot: QtBot,
    make_window: MakeWindow,
    real_tok: HarmonyTokenizer,
    tmp_path: Path,
    data_dir: Path,
) -> None:
    window, script, indexer, gate, path = held_window(qtbot, make_window, real_tok, tmp_path)
    script.reply("Never written.")
    try:
        with qtbot.waitSignal(window.controller.turn_completed, timeout=TURN_TIMEOUT_MS) as done:
            send_now(qtbot, window, "When was it commissioned?")
            qtbot.waitUntil(lambda: last_answer(window).status_label.text().startswith("Indexing"))
            window.controller.stop()
        result: TurnResult = done.args[0]
        assert result.status == "cancelled" and result.answer == ""
        assert script.sampler.remaining > 0  # the model was never asked
    finally:
        gate.release.set()
    # The document goes on being indexed: the next question finds it complete.
    qtbot.waitUntil(job_ended(indexer, path), timeout=TURN_TIMEOUT_MS)
    with Library(data_dir / "library.sqlite3") as library:
        done_doc = library.document_by_path(path)
        assert done_doc is not None and done_doc.status == "ready"


def test_quitting_stops_the_indexing_thread_and_keeps_what_it_committed(
    qtbot: QtBot,
    make_window: MakeWindow,
    real_tok: HarmonyTokenizer,
    tmp_path: Path,
    data_dir: Path,
) -> None:
    _window, _script, indexer, gate, path = held_window(qtbot, make_window, real_tok, tmp_path)
    threading.Timer(0.2, gate.release.set).start()  # the held batch ends while quitting waits
    indexer.shutdown()
    with Library(data_dir / "library.sqlite3") as library:
        kept = library.document_by_path(path)
        assert kept is not None and kept.status == "indexing"
        assert 0 < kept.pages_done < kept.pages_total  # stopped after a batch: resumable
    threading.Event().wait(0.3)
    with Library(data_dir / "library.sqlite3") as library:
        still = library.document_by_path(path)
        assert still is not None and still.pages_done == kept.pages_done
