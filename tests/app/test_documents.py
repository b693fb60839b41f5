"""Documents: dropped on the window, opened from Finder/Dock (QFileOpenEvent), read off the UI
thread, counted by the engine's tokenizer, sent inside the user message; broken files explain
themselves in the banner and break nothing else; a document too big for the context is searched
(and refused, with the numbers, without a library)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QFileOpenEvent
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from app.banner import MAX_BANNERS
from app.engine_client import EngineClient
from app.engine_worker import load_engine
from app.main_window import MainWindow
from app.messages import MessageBridge, UserMessage
from engine import HarmonyTokenizer
from tests.app.conftest import TURN_TIMEOUT_MS, MakeWindow
from tests.app.scripting import ScriptedSessions
from tests.app.test_chat_flow import conversation_of, send
from tests.engine.documents.samples import write_docx, write_pdf

# The offscreen platform cannot size or raise windows and says so; nothing of ours.
pytestmark = pytest.mark.qt_log_ignore(
    "This plugin does not support propagateSizeHints", "This plugin does not support raise"
)


def drop(target: QWidget, paths: list[Path]) -> None:
    """Drop `paths` on `target` (the window or the composer's field)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(
        QPointF(50, 50),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    # Qt delivers a drop only inside a real drag, so the handler is called as Qt would call it.
    target.dropEvent(event)
    assert event.isAccepted()


def wait_read(qtbot: QtBot, window: MainWindow, count: int) -> None:
    qtbot.waitUntil(
        lambda: len(window.attachments.items()) == count and not window.attachments.pending(),
        timeout=TURN_TIMEOUT_MS,
    )


def supported_files(folder: Path) -> list[Path]:
    folder.mkdir()
    (folder / "notes.txt").write_text("Plain notes about the launch.\n")
    (folder / "readme.md").write_text("# Title\n\nSome *markdown* text.\n")
    (folder / "table.csv").write_text("name,score\nada,3\nbob,5\n")
    (folder / "page.html").write_text("<html><body><h1>Hello</h1><p>A web page.</p></body></html>")
    (folder / "script.py").write_text("def add(a, b):\n    return a + b\n")
    write_docx(folder / "report.docx")
    write_pdf(folder / "slides.pdf", ["First page text.", "Second page text."])
    return sorted(folder.iterdir())


def test_each_supported_type_is_read_counted_shown_and_sent(
    qtbot: QtBot, make_window: MakeWindow, tok: HarmonyTokenizer, tmp_path: Path
) -> None:
    script = ScriptedSessions(tok)
    window = make_window(session_factory=script)
    files = supported_files(tmp_path / "docs")
    drop(window, files)
    wait_read(qtbot, window, len(files))
    chips = {chip.label.text().split(" · ")[0]: chip.label.text() for chip in _chips(window)}
    assert set(chips) == {f.name for f in files}
    assert chips["slides.pdf"].startswith("slides.pdf · 2 pages · ")
    assert all(text.endswith(" tokens") for text in chips.values())
    assert all(a.tokens and a.tokens > 0 for a in window.attachments.items())

    script.reply("Read them all.")
    send(qtbot, window, "Summarise these")
    sent = script.sessions[-1].messages[0].text  # the user message the model read
    for f in files:
        assert f'<document name="{f.name}"' in sent
    assert '<document name="slides.pdf" kind="pdf" pages="2">' in sent
    assert "Second page text." in sent and "Quarterly report" in sent
    assert sent.endswith("Summarise these")
    assert not _chips(window)  # sent with the message
    _, stored = window.store.get_conversation(conversation_of(window))
    assert len(stored[0].attachments) == len(files) and stored[0].content == "Summarise these"


def test_broken_files_explain_themselves_and_the_rest_still_works(
    qtbot: QtBot,
    make_window: MakeWindow,
    tok: HarmonyTokenizer,
    tmp_path: Path,
    fresh_bridge: MessageBridge,
) -> None:
    script = ScriptedSessions(tok)
    window = make_window(session_factory=script)
    posted: list[UserMessage] = []
    fresh_bridge.message_posted.connect(posted.append)
    good = tmp_path / "good.txt"
    good.write_text("Fine text.")
    corrupt = tmp_path / "broken.pdf"
    corrupt.write_bytes(b"%PDF-1.7\n this is not really a pdf")
    locked = write_pdf(tmp_path / "locked.pdf", ["secret"], user_password="pw")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    sheet = tmp_path / "numbers.xlsx"
    sheet.write_bytes(b"PK\x03\x04 not really")
    drop(window.composer.input, [good, corrupt, locked, empty, sheet])
    wait_read(qtbot, window, 1)
    qtbot.waitUntil(lambda: len(posted) == 4)
    assert all(m.level == "error" for m in posted)
    texts = " | ".join(m.text for m in posted)
    for name in ("broken.pdf", "locked.pdf", "empty.txt", "numbers.xlsx"):
        assert name in texts
    assert "password" in texts and "export the sheet as .csv" in texts
    assert len(window.banners.banners()) == MAX_BANNERS  # the newest few; older ones make room
    assert [a.path.name for a in window.attachments.items()] == ["good.txt"]
    script.reply("Fine.")
    result = send(qtbot, window, "And this one?")
    assert result.status == "complete"


def test_a_document_too_big_for_the_context_is_searched_or_refused_without_a_library(
    qtbot: QtBot,
    make_window: MakeWindow,
    tok: HarmonyTokenizer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def small_context(path: str, profile: str, progress: Any) -> Any:
        model, tokenizer, info = load_engine(path, profile, progress)
        return model, tokenizer, replace(info, context_tokens=800)

    window = make_window(session_factory=ScriptedSessions(tok), loader=small_context)
    big = tmp_path / "book.txt"
    big.write_text("chapter " * 1500)
    drop(window, [big])
    wait_read(qtbot, window, 1)
    (chip,) = _chips(window)
    assert chip.label.text() == "book.txt · will be searched"
    assert not window.banners.banners()
    window.attachments.clear()

    # Without a document library (the worker was made without one) it is refused as before.
    monkeypatch.setattr(EngineClient, "library_path", property(lambda _self: None))
    drop(window, [big])
    wait_read(qtbot, window, 1)
    qtbot.waitUntil(lambda: bool(window.banners.banners()))
    warning = window.banners.banners()[-1].message
    assert warning.level == "warning"
    assert "book.txt is about" in warning.text and "600-token context" in warning.text
    assert _chips(window)[0].label.text().endswith(" tokens")
    window.composer.set_text("Summarise")
    qtbot.keyClick(window.composer.input, Qt.Key.Key_Return)
    assert window.controller.conversation_id is None  # nothing was sent or saved
    assert window.composer.text() == "Summarise"
    assert window.banners.banners()[-1].message.level == "error"


def test_files_opened_from_finder_or_the_dock_become_attachments(
    qtbot: QtBot, make_window: MakeWindow, tok: HarmonyTokenizer, tmp_path: Path
) -> None:
    window = make_window(session_factory=ScriptedSessions(tok))
    doc = tmp_path / "opened.md"
    doc.write_text("# Opened with OSS Desk\n")
    app = QApplication.instance()
    assert app is not None
    QApplication.sendEvent(app, QFileOpenEvent(str(doc)))
    wait_read(qtbot, window, 1)
    chip = _chips(window)[0]
    assert chip.label.text().startswith("opened.md · ")
    qtbot.mouseClick(chip.remove_button, Qt.MouseButton.LeftButton)
    assert window.attachments.items() == []


def _chips(window: MainWindow) -> list[Any]:
    return window.composer.tray.chips()  # type: ignore[attr-defined]
