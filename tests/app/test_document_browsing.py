"""A document too long for the context is searched, not refused: its chip says so, the turn is
indexed into the data folder's library, the model (tiny real engine, scripted tokens of the real
vocabulary) searches, opens and cites, the reasoning pane shows readable steps, and the answer's
citations reach the message resolved to the document's page and lines."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QObject, QUrl, Slot
from PySide6.QtGui import QDesktopServices
from pytestqt.qtbot import QtBot

from app.attachments import AttachmentTray
from app.engine_client import EngineClient
from app.engine_requests import TurnRequest
from app.engine_worker import EngineWorker, load_engine
from app.history.export import export_markdown
from app.main_window import MainWindow
from app.message_widget import AssistantMessageWidget
from app.turn_stream import TurnResult
from engine import AttachedDocument, DocumentDecision, HarmonyTokenizer, extract
from tests.app.conftest import MakeWindow
from tests.app.scripting import ScriptedSessions
from tests.app.test_chat_flow import conversation_of, last_answer, send
from tests.app.test_documents import drop, wait_read
from tests.app.test_engine_worker import TIMEOUT_MS, FakeSession, fake_loader, scripted_turn
from tests.engine.library.documents import filler, write_pdf

pytestmark = pytest.mark.qt_log_ignore(
    "This plugin does not support propagateSizeHints", "This plugin does not support raise"
)

PAGES = 30
FACT_PAGE = 17
FACT = "The Halvorsen turbine was commissioned in 1987 at the Kestrel Bay plant."
CONTEXT = 2000  # ~5,000 tokens of report do not fit: the turn must browse


def report_pdf(path: Path) -> Path:
    pages = [filler(n, 120) for n in range(1, PAGES + 1)]
    pages[FACT_PAGE - 1] = f"{filler(101, 60)} {FACT} {filler(102, 40)}"
    return write_pdf(path, pages)


def browsing_window(make_window: MakeWindow, real_tok: HarmonyTokenizer) -> tuple[
    MainWindow, ScriptedSessions
]:  # fmt: skip
    def small_context(path: str, profile: str, progress: Any) -> Any:
        model, _tokenizer, info = load_engine(path, profile, progress)
        return model, real_tok, replace(info, context_tokens=CONTEXT)

    script = ScriptedSessions(real_tok)
    return make_window(session_factory=script, loader=small_context), script


def script_tokens(script: ScriptedSessions, *parts: str) -> None:
    for part in parts:
        script.sampler.extend(script.tok.encode(part, allowed_special="all"))


def browser_call(function: str, arguments: str) -> str:
    return f"<|channel|>analysis to=browser.{function} code<|message|>{arguments}<|call|>"


def final(text: str) -> str:
    return (
        "<|channel|>analysis<|message|>I have what I need.<|end|>"
        f"<|start|>assistant<|channel|>final<|message|>{text}<|return|>"
    )


def test_a_long_pdf_is_searched_opened_and_cited_through_the_app(
    qtbot: QtBot,
    make_window: MakeWindow,
    real_tok: HarmonyTokenizer,
    tmp_path: Path,
    data_dir: Path,
) -> None:
    window, script = browsing_window(make_window, real_tok)
    pdf = report_pdf(tmp_path / "report.pdf")
    drop(window, [pdf])
    wait_read(qtbot, window, 1)
    tray = window.composer.tray
    assert isinstance(tray, AttachmentTray)
    # Indexing started when the text was read; once it is done the chip says only how it is read.
    searched = f"report.pdf · {PAGES} pages · will be searched"
    qtbot.waitUntil(lambda: [c.label.text() for c in tray.chips()] == [searched])
    assert not window.banners.banners()  # not refused, nothing to warn about

    answer = "It was commissioned in 1987 【1†L1-L2】; the annex 【7†L3】 I never opened."
    script_tokens(
        script,
        "<|channel|>analysis<|message|>Search the report.<|end|><|start|>assistant",
        browser_call("search", '{"query": "Halvorsen turbine commissioned"}'),
        browser_call("open", '{"id": 0}'),
        final(answer),
    )
    result = send(qtbot, window, "When was the Halvorsen turbine commissioned?")
    assert result.status == "complete" and result.answer == answer

    # The model read a note naming the searchable document, not its text.
    sent = script.sessions[-1].messages[0].text
    assert sent.startswith("Attached (too long to include, searchable with the browser tool): ")
    assert "report.pdf (pdf, 30 pages)" in sent and "Halvorsen" not in sent.split("\n\n")[0]
    assert "Kestrel Bay" not in sent
    assert (data_dir / "library.sqlite3").is_file()

    widget = last_answer(window)
    search, opened = widget.thinking.steps
    assert search.startswith("searched: Halvorsen turbine commissioned (")
    assert opened.startswith(f"opened report.pdf p. {FACT_PAGE}, lines ")
    assert "searched: Halvorsen" in widget.thinking.text
    assert widget.thinking.isVisible()

    assert result.citations is not None
    found, nowhere = result.citations.citations
    assert found.target is not None and nowhere.target is None
    assert found.target.path == pdf.resolve() and found.target.page == FACT_PAGE
    assert (found.target.first_line, found.target.last_line) == (1, 2)

    # The answer shows numbered citation links; the one pointing nowhere is marked, not dropped.
    labels = widget.answer.prose_labels()
    shown = "".join(label.text() for label in labels)
    assert '<a href="cite:1:1:2" style="text-decoration: none"><sup>[1]</sup></a>' in shown
    assert '<a href="cite:7:3:3" style="text-decoration: line-through"><sup>[2?]</sup></a>' in shown
    assert "【" not in shown

    # Clicking a citation opens the PDF at its page in the system viewer.
    viewer = UrlCatcher()
    # PySide6 takes the slot name as str at run time; its stubs say bytes.
    QDesktopServices.setUrlHandler("file", viewer, "catch")  # type: ignore[arg-type]
    try:
        labels[0].linkActivated.emit("cite:1:1:2")
        assert [u.toLocalFile() for u in viewer.urls] == [str(pdf.resolve())]
        assert viewer.urls[0].fragment() == f"page={FACT_PAGE}"
        labels[0].linkActivated.emit("cite:7:3:3")
        assert len(viewer.urls) == 1
        assert widget.status_label.text().startswith("Citation [2] points to nothing")

        # Where the citations lead is saved with the answer: a reopened chat opens them too.
        summary, stored = window.store.get_conversation(conversation_of(window))
        cited = stored[1].stats["citations"]
        assert [c.get("page") for c in cited] == [FACT_PAGE, None]
        restored = AssistantMessageWidget(stored[1].id, "medium")
        qtbot.addWidget(restored)
        restored.restore(stored[1])
        restored.answer.prose_labels()[0].linkActivated.emit("cite:1:1:2")
        assert len(viewer.urls) == 2 and viewer.urls[1] == viewer.urls[0]
    finally:
        QDesktopServices.unsetUrlHandler("file")

    # Export keeps the citations as footnotes, the one pointing nowhere included.
    exported = export_markdown(summary, stored)
    assert "It was commissioned in 1987 [^1]; the annex [^2] I never opened." in exported
    assert f"[^1]: report.pdf, page {FACT_PAGE}, lines 1-2 (<{pdf.resolve().as_uri()}#page=" in (
        exported
    )
    assert "[^2]: 【7†L3】 points to nothing the model opened." in exported

    # A follow-up about the same report keeps the browser (the chat searched it before): the
    # model searches again and the step shows, rather than being told no tools exist.
    script_tokens(
        script,
        browser_call("search", '{"query": "Kestrel Bay plant"}'),
        final("At the Kestrel Bay plant."),
    )
    live = send(qtbot, window, "Where was it?")
    assert live.status == "complete" and live.answer == "At the Kestrel Bay plant."
    (again_searched,) = last_answer(window).thinking.steps
    assert again_searched.startswith("searched: Kestrel Bay plant (")
    follow_note = [m.text for m in script.sessions[-1].messages if m.role == "user"][-1]
    assert follow_note.startswith("Attached (too long to include, searchable with the browser")
    assert follow_note.endswith("\n\nWhere was it?")

    # After a restart the chat continues from the store: the searched message comes back as
    # the note the model read, not as the whole report (which would not fit the context), and
    # the browser is still there for the next follow-up.
    again, script_2 = browsing_window(make_window, real_tok)
    again.controller.open_conversation(conversation_of(window))
    script_tokens(
        script_2,
        browser_call("search", '{"query": "Halvorsen turbine"}'),
        final("Yes, the Halvorsen turbine."),
    )
    follow_up = send(qtbot, again, "Which turbine?")
    assert follow_up.status == "complete"
    (rebuilt,) = script_2.sessions
    assert rebuilt.messages[0].text == sent
    assert [m.text for m in rebuilt.messages if m.role == "user"][1] == follow_note
    (searched_again,) = last_answer(again).thinking.steps
    assert searched_again.startswith("searched: Halvorsen turbine (")
    assert follow_up.stats["prompt_tokens"] < 3 * CONTEXT  # three notes and views, no report


class UrlCatcher(QObject):
    """Stands in for the system viewer: QDesktopServices hands it the file URLs it would open."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[QUrl] = []

    @Slot(QUrl)
    def catch(self, url: QUrl) -> None:
        self.urls.append(url)


def test_a_browse_turn_without_a_library_is_refused_with_what_to_do(
    qtbot: QtBot, tmp_path: Path
) -> None:
    """The window refuses first (tests/app/test_documents.py); the worker refuses too, rather
    than answer without the documents the message says it can search."""
    notes = tmp_path / "notes.txt"
    notes.write_text("The launch is on Tuesday.\n")
    decision = DocumentDecision(
        "browse",
        "notes.txt: the model will search it.",
        None,
        (AttachedDocument(extract(notes), 9),),
    )
    session = FakeSession([scripted_turn("Should not run")])
    worker = EngineWorker(
        history_path=None,
        loader=fake_loader(),
        session_factory=lambda model, tok, history: session,
    )
    client = EngineClient(worker)
    try:
        with qtbot.waitSignal(client.model_loaded, timeout=TIMEOUT_MS):
            client.load("/models/fake", "full")
        request = TurnRequest(client.next_turn_id(), 1, 0, "send", "Hi", (), "high")
        with qtbot.waitSignal(client.turn_finished, timeout=TIMEOUT_MS) as finished:
            client.start_turn(replace(request, documents=decision))
        result: TurnResult = finished.args[0]
        assert result.status == "error" and result.error is not None
        assert result.error.text.startswith(
            "The attached documents are too long to read whole, and searching them is off"
        )
        assert session.calls == []  # the model was never asked
    finally:
        assert client.shutdown()
