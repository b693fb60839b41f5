"""Custom instructions and answer length through the whole window on the real engine (tiny
synthetic checkpoint, scripted tokens): what the user writes in Settings or for one chat is what
the model reads in its developer message, and the browser tool still comes with it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.chat_instructions import (
    LENGTH_GUIDANCE,
    ChatInstructionsDialog,
    base_instructions,
    developer_instructions,
)
from app.document_library import DocumentLibrary
from app.main_window import MainWindow
from app.settings import ANSWER_TOKENS, AnswerLength
from app.turn_stream import TurnResult
from engine import (
    AttachedDocument,
    ChatSession,
    HarmonyTokenizer,
    LoadedModel,
    decide_document_mode,
    load_model,
)
from engine.documents.extract import extract
from engine.testing.scripted import ScriptedSampler
from tests.app.conftest import TURN_TIMEOUT_MS, MakeWindow
from tests.app.scripting import ScriptedSessions

# The offscreen platform's own notices when windows are shown and raised; nothing of ours.
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support (propagateSizeHints|raise)")

APP_TEXT = "Always answer like a ship's captain."
CHAT_TEXT = "In this chat, answer in haiku."


def send(qtbot: QtBot, window: MainWindow, text: str) -> TurnResult:
    with qtbot.waitSignal(window.controller.turn_completed, timeout=TURN_TIMEOUT_MS) as done:
        window.composer.set_text(text)
        qtbot.keyClick(window.composer.input, Qt.Key.Key_Return)
    result: TurnResult = done.args[0]
    assert result.error is None, result.error
    return result


def developer_part(prompt: str) -> str:
    """The developer message of a rendered prompt."""
    start = prompt.index("<|start|>developer<|message|>")
    return prompt[start : prompt.index("<|end|>", start)]


def test_app_and_chat_instructions_reach_the_developer_message(
    qtbot: QtBot, make_window: MakeWindow, tok: HarmonyTokenizer
) -> None:
    script = ScriptedSessions(tok)
    window = make_window(session_factory=script)
    window.show_settings()
    dialog = window._settings_dialog
    assert dialog is not None
    dialog.instructions.setPlainText(APP_TEXT)  # typed into Settings: applies at once
    assert window.settings.settings.custom_instructions == APP_TEXT
    script.reply("Aye.")
    send(qtbot, window, "Hello")
    developer = developer_part(script.prompt_text())
    base = base_instructions()
    assert base and base.splitlines()[0] in developer  # the app's own instructions stay
    assert APP_TEXT in developer

    # Chat › Chat Instructions…: this chat's own replace the app's for this chat only
    action = window.menu_actions.chat_instructions
    window.chat_instructions.refresh()
    assert action.isEnabled()
    action.trigger()
    chat_dialog = window.chat_instructions.dialog
    assert isinstance(chat_dialog, ChatInstructionsDialog) and chat_dialog.isVisible()
    assert APP_TEXT in chat_dialog.editor.placeholderText()
    chat_dialog.editor.setPlainText(CHAT_TEXT)
    chat_dialog.accept()
    conversation = window.controller.conversation_id
    assert conversation is not None
    assert window.store.conversation_instructions(conversation) == CHAT_TEXT
    script.reply("Waves fold on the sand.")
    result = send(qtbot, window, "Again")
    developer = developer_part(script.prompt_text())
    assert CHAT_TEXT in developer and APP_TEXT not in developer
    # unchanged instructions render the same prompt, so the next turn reuses the cache
    script.reply("Foam on the shore.")
    result = send(qtbot, window, "Once more")
    assert result.stats["reused_tokens"] > result.stats["prompt_tokens"] // 2

    # a new chat follows the app's instructions again; an empty chat text means the same
    window.controller.new_chat()
    window.chat_instructions.refresh()
    assert not action.isEnabled()
    script.reply("Aye again.")
    send(qtbot, window, "New chat")
    developer = developer_part(script.prompt_text())
    assert APP_TEXT in developer and CHAT_TEXT not in developer


def test_an_empty_chat_instruction_falls_back_to_the_app_s(
    qtbot: QtBot, make_window: MakeWindow, tok: HarmonyTokenizer
) -> None:
    script = ScriptedSessions(tok)
    window = make_window(session_factory=script)
    window.settings.update(custom_instructions=APP_TEXT)
    script.reply("One.")
    send(qtbot, window, "First")
    conversation = window.controller.conversation_id
    assert conversation is not None
    window.chat_instructions.open()
    chat_dialog = window.chat_instructions.dialog
    assert chat_dialog is not None
    chat_dialog.editor.setPlainText("   ")
    chat_dialog.accept()
    assert window.store.conversation_instructions(conversation) is None
    script.reply("Two.")
    send(qtbot, window, "Second")
    assert APP_TEXT in developer_part(script.prompt_text())


def test_a_short_answer_length_guides_and_caps_the_answer(
    qtbot: QtBot, make_window: MakeWindow, tok: HarmonyTokenizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = ScriptedSessions(tok)
    window = make_window(session_factory=script)
    # A cap of a few tokens keeps the scripted answer (and the test) short.
    monkeypatch.setitem(ANSWER_TOKENS, AnswerLength.SHORT, 6)
    window.show_settings()
    dialog = window._settings_dialog
    assert dialog is not None
    dialog.answer_length.setCurrentIndex(dialog.answer_length.findData("short"))
    assert window.settings.settings.answer_length is AnswerLength.SHORT
    long_answer = " ".join(f"word{i}" for i in range(40))
    script.reply(long_answer)
    result = send(qtbot, window, "Tell me everything")
    assert result.stats["finish_reason"] == "length"
    assert result.stats["answer_tokens"] == 6
    assert long_answer.startswith(result.answer) and len(result.answer) < 20
    assert LENGTH_GUIDANCE[AnswerLength.SHORT] in developer_part(script.prompt_text())
    script.sampler.discard_remaining()  # what the model would have written past the cap


def test_normal_length_adds_nothing_and_instructions_compose_in_order() -> None:
    assert developer_instructions("Base.", "", AnswerLength.NORMAL) == "Base."
    assert developer_instructions(None, "", AnswerLength.NORMAL) is None
    long = developer_instructions("Base.", "  Mine.  ", AnswerLength.LONG)
    assert long == f"Base.\n\nMine.\n\n{LENGTH_GUIDANCE[AnswerLength.LONG]}"


def test_a_browse_turn_keeps_the_instructions_beside_the_browser_tool(
    tmp_path: Path, model_dir: Path, tok: HarmonyTokenizer
) -> None:
    model: LoadedModel = load_model(model_dir, dtype="float32")
    notes = tmp_path / "notes.md"
    notes.write_text("# Notes\n\nThe Halvorsen turbine was commissioned in 1987.\n")
    document = extract(notes)
    decision = decide_document_mode(
        [AttachedDocument(document, 20)],
        prompt_tokens=0,
        context_budget=1000,
        search_requested=True,
    )
    session = ChatSession(model, tok, sampler=ScriptedSampler())
    text = developer_instructions("Base.", CHAT_TEXT, AnswerLength.NORMAL)
    session.set_instructions(text)
    library = DocumentLibrary(tmp_path / "library.sqlite3")
    try:
        loop = library.tool_loop(session, decision, tok, threading.Event())
        assert loop is not None
        prompt = tok.decode(session.prompt_ids())
    finally:
        library.close()
    assert "namespace browser" in prompt
    assert CHAT_TEXT in developer_part(prompt)
