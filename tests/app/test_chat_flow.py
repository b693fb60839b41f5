"""The whole window on the real engine (tiny synthetic checkpoint, real vocabulary size), through
the engine thread: sending, reasoning vs answer, effort, stop, regenerate, edit, restart."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from app.history import HistoryStore
from app.main_window import MainWindow
from app.message_widget import AssistantMessageWidget, UserMessageWidget
from app.turn_stream import TurnResult
from engine import GREEDY, ChatSession, HarmonyTokenizer, Message, ReasoningBudget
from tests.app.conftest import TURN_TIMEOUT_MS, MakeWindow, close
from tests.app.scripting import ScriptedSessions

# The offscreen platform's own notice when a window is shown; nothing of ours.
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


def send(qtbot: QtBot, window: MainWindow, text: str) -> TurnResult:
    """Type `text` and press Return; wait for the whole answer."""
    with qtbot.waitSignal(window.controller.turn_completed, timeout=TURN_TIMEOUT_MS) as done:
        window.composer.set_text(text)
        qtbot.keyClick(window.composer.input, Qt.Key.Key_Return)
    result: TurnResult = done.args[0]
    assert result.error is None, result.error
    return result


def last_answer(window: MainWindow) -> AssistantMessageWidget:
    widget = window.view.messages()[-1]
    assert isinstance(widget, AssistantMessageWidget)
    return widget


def conversation_of(window: MainWindow) -> int:
    conversation = window.controller.conversation_id
    assert conversation is not None
    return conversation


def test_a_message_is_answered_by_the_real_engine_end_to_end(
    qtbot: QtBot, make_window: MakeWindow
) -> None:
    def sessions(model: Any, tok: Any, history: Sequence[Message]) -> ChatSession:
        # Random weights write no harmony of their own: small budgets make the session cut the
        # reasoning and end the answer, so the turn is short but entirely real.
        budget = ReasoningBudget(low=6, medium=6, high=6)
        return ChatSession.from_messages(
            model,
            tok,
            history,
            budget=budget,
            max_answer_tokens=6,
            sampling=GREEDY,
        )

    window = make_window(session_factory=sessions)
    result = send(qtbot, window, "Hello there")
    assert result.status == "complete"
    assert result.stats["generated_tokens"] > 0 and result.stats["prompt_tokens"] > 0
    assert result.stats["finish_reason"] in ("stop", "length"), result.stats
    user, answer = window.view.messages()
    assert isinstance(user, UserMessageWidget) and user.text == "Hello there"
    assert isinstance(answer, AssistantMessageWidget)
    assert answer.facts_label.text().startswith("Medium effort")
    conversation = conversation_of(window)
    _, stored = window.store.get_conversation(conversation)
    assert [m.role for m in stored] == ["user", "assistant"]
    assert stored[1].status == "complete" and stored[1].content == answer.answer_text()
    assert window.sidebar.list.count() == 1
    current = window.sidebar.list.currentItem()  # the new chat is the highlighted one
    assert current is not None and current.isSelected()
    assert window.sidebar.list.horizontalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff


def test_reasoning_streams_into_its_pane_and_the_answer_into_the_view(
    qtbot: QtBot, make_window: MakeWindow, tok: HarmonyTokenizer
) -> None:
    script = ScriptedSessions(tok)
    window = make_window(session_factory=script)
    ids = script.reply("The answer is **42**.", analysis="Think about life, carefully.")
    gate = script.hold_at(len(ids) - 8)  # inside the final message
    window.composer.set_text("What is it?")
    qtbot.keyClick(window.composer.input, Qt.Key.Key_Return)
    qtbot.waitUntil(script.reached[len(ids) - 8].is_set, timeout=TURN_TIMEOUT_MS)
    widget = last_answer(window)
    qtbot.waitUntil(lambda: widget.thinking.text == "Think about life, carefully.")
    assert widget.thinking.isVisible() and widget.thinking.is_expanded()
    assert "raw thinking" in widget.thinking.toggle.text()
    assert window.composer.send_button.text() == "Stop"
    with qtbot.waitSignal(window.controller.turn_completed, timeout=TURN_TIMEOUT_MS):
        gate.set()
    assert widget.answer_text() == "The answer is **42**."
    assert "life" not in widget.answer_text()
    assert not widget.thinking.is_expanded()  # collapsed when the answer completed (default)
    facts = widget.facts_label.text()
    assert facts.startswith("Medium effort · thought for ")
    assert "reasoning tokens" in facts and "answer tokens" in facts and "tok/s" in facts
    assert "first token" in facts


def test_the_chosen_effort_reaches_the_prompt_and_is_kept_per_conversation(
    qtbot: QtBot, make_window: MakeWindow, tok: HarmonyTokenizer
) -> None:
    script = ScriptedSessions(tok)
    window = make_window(session_factory=script)
    qtbot.mouseClick(window.composer.effort_buttons["high"], Qt.MouseButton.LeftButton)
    assert window.menu_actions.effort["high"].isChecked()
    script.reply("Deep.")
    send(qtbot, window, "Think hard")
    assert "Reasoning: high" in script.prompt_text()
    conversation = conversation_of(window)
    summary, stored = window.store.get_conversation(conversation)
    assert summary.reasoning_effort == "high" and stored[1].effort == "high"
    assert last_answer(window).facts_label.text().startswith("High effort")

    window.menu_actions.effort["low"].trigger()  # Chat > Reasoning Effort > Low (Ctrl+Alt+1)
    assert window.composer.effort_buttons["low"].isChecked()
    script.reply("Quick.")
    send(qtbot, window, "Now quickly")
    assert "Reasoning: low" in script.prompt_text()
    assert "Reasoning: high" not in script.prompt_text()

    window.menu_actions.new_chat.trigger()
    assert window.composer.effort() == "medium"  # the default from Settings
    window.controller.open_conversation(conversation)
    assert window.composer.effort() == "low"


def test_stop_halts_within_a_token_and_keeps_the_partial_answer(
    qtbot: QtBot, make_window: MakeWindow, tok: HarmonyTokenizer
) -> None:
    script = ScriptedSessions(tok)
    window = make_window(session_factory=script)
    text = " ".join(f"word{i}" for i in range(200))
    script.reply(text)
    gate = script.hold_at(60)
    window.composer.set_text("Write a lot")
    qtbot.keyClick(window.composer.input, Qt.Key.Key_Return)
    qtbot.waitUntil(script.reached[60].is_set, timeout=TURN_TIMEOUT_MS)
    widget = last_answer(window)
    qtbot.waitUntil(lambda: widget.answer_text().startswith("word0"), timeout=TURN_TIMEOUT_MS)
    turn = window.engine.current_turn
    assert turn is not None
    script.watch_cancel(turn.cancel)
    with qtbot.waitSignal(window.controller.turn_completed, timeout=TURN_TIMEOUT_MS) as done:
        window.menu_actions.stop.trigger()  # Chat > Stop (Ctrl+. and Esc)
        gate.set()
    assert done.args[0].status == "cancelled"
    assert script.after_cancel <= 1
    shown = widget.answer_text()
    assert shown and text.startswith(shown.rstrip()) and len(shown) < len(text)
    stored = window.store.get_message(widget.message_id)
    assert stored.status == "cancelled" and stored.content == shown
    assert widget.status_label.text() == "Stopped."
    assert window.composer.send_button.text() == "Send"


def test_regenerate_and_edit_replace_the_last_answer(
    qtbot: QtBot, make_window: MakeWindow, tok: HarmonyTokenizer
) -> None:
    script = ScriptedSessions(tok)
    window = make_window(session_factory=script)
    script.reply("First answer.")
    send(qtbot, window, "Question")
    script.reply("Second answer.")
    with qtbot.waitSignal(window.controller.turn_completed, timeout=TURN_TIMEOUT_MS):
        window.menu_actions.regenerate.trigger()
    conversation = conversation_of(window)
    _, stored = window.store.get_conversation(conversation)
    assert [(m.role, m.content) for m in stored] == [
        ("user", "Question"),
        ("assistant", "Second answer."),
    ]
    assert [type(w) for w in window.view.messages()] == [UserMessageWidget, AssistantMessageWidget]

    qtbot.keyClick(window.composer.input, Qt.Key.Key_Up)  # Up in an empty field edits
    assert window.composer.editing and window.composer.text() == "Question"
    script.reply("Third answer.")
    send(qtbot, window, "Better question")
    _, stored = window.store.get_conversation(conversation)
    assert [(m.role, m.content) for m in stored] == [
        ("user", "Better question"),
        ("assistant", "Third answer."),
    ]
    first = window.view.messages()[0]
    assert isinstance(first, UserMessageWidget) and first.text == "Better question"
    assert len(script.sessions) == 1  # the session and its KV cache were reused throughout
    assert "Better question" in script.prompt_text()
    assert "Question<|end|>" not in script.prompt_text()


def test_history_survives_a_restart_and_the_engine_continues_it(
    qtbot: QtBot, make_window: MakeWindow, tok: HarmonyTokenizer, data_dir: Path
) -> None:
    first = ScriptedSessions(tok)
    window = make_window(session_factory=first)
    first.reply("Paris is the capital.", analysis="Easy one.")
    send(qtbot, window, "Capital of France?")
    close(window)

    second = ScriptedSessions(tok)
    window = make_window(session_factory=second)
    assert window.sidebar.list.count() == 1
    item = window.sidebar.list.item(0)
    assert item.text() == "Capital of France?"
    rect = window.sidebar.list.visualItemRect(item)
    qtbot.mouseClick(window.sidebar.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    _user, answer = window.view.messages()
    assert isinstance(answer, AssistantMessageWidget)
    assert answer.answer_text() == "Paris is the capital." and answer.thinking.text == "Easy one."
    assert answer.facts_label.text().startswith("Medium effort")
    second.reply("Yes.")
    send(qtbot, window, "Sure?")
    prompt = second.prompt_text()  # a new session, rebuilt from the stored history
    assert "Capital of France?" in prompt and "Paris is the capital." in prompt
    with HistoryStore(data_dir / "history.sqlite3") as store:
        assert [m.content for m in store.get_conversation(1)[1]] == [
            "Capital of France?",
            "Paris is the capital.",
            "Sure?",
            "Yes.",
        ]


def test_search_shows_matching_chats_with_highlighted_words(
    qtbot: QtBot, make_window: MakeWindow, tok: HarmonyTokenizer
) -> None:
    script = ScriptedSessions(tok)
    window = make_window(session_factory=script)
    script.reply("Bananas are yellow.")
    send(qtbot, window, "Fruit colours")
    window.menu_actions.new_chat.trigger()
    script.reply("Twelve.")
    send(qtbot, window, "How many months")
    window.menu_actions.search.trigger()
    qtbot.keyClicks(window.sidebar.search, "banana")
    qtbot.waitUntil(lambda: window.sidebar.list.count() == 1 and window.sidebar.searching())
    item = window.sidebar.list.item(0)
    label = window.sidebar.list.itemWidget(item)
    assert isinstance(label, QLabel)
    assert "<b>Bananas</b>" in label.text() and "Fruit colours" in label.text()
    window.sidebar.search.clear()
    qtbot.waitUntil(lambda: window.sidebar.list.count() == 2)


def test_export_writes_markdown_and_lossless_json(
    qtbot: QtBot, make_window: MakeWindow, tok: HarmonyTokenizer, tmp_path: Path
) -> None:
    from app.history import conversation_from_json

    script = ScriptedSessions(tok)
    window = make_window(session_factory=script)
    script.reply("An answer with `code`.", analysis="Reasoning here.")
    send(qtbot, window, "Export me")
    assert window.export_conversation(tmp_path / "chat.md", "markdown")
    markdown = (tmp_path / "chat.md").read_text()
    assert "# Export me" in markdown and "An answer with `code`." in markdown
    assert "<summary>Reasoning</summary>" in markdown
    assert window.export_conversation(tmp_path / "chat.json", "json")
    summary, messages = conversation_from_json((tmp_path / "chat.json").read_text())
    assert summary.title == "Export me" and messages[1].reasoning == "Reasoning here."
    assert "Exported to" in window.banners.texts()[-1]


def test_a_model_that_fails_to_load_shows_a_banner_with_details(
    qtbot: QtBot, make_window: MakeWindow, tmp_path: Path
) -> None:
    window = make_window(load=False)
    window.load_model(str(tmp_path / "no-model-here"))
    qtbot.waitUntil(lambda: bool(window.banners.banners()), timeout=TURN_TIMEOUT_MS)
    banner = window.banners.banners()[-1]
    assert banner.message.level == "error" and "is not a folder" in banner.message.text
    assert banner.copy_button is not None
    banner.copy_button.click()
    from PySide6.QtGui import QGuiApplication

    assert "ModelLoadError" in QGuiApplication.clipboard().text()
    assert window.composer.status_label.text() == "No model loaded"
    window.composer.set_text("still typing")
    qtbot.keyClick(window.composer.input, Qt.Key.Key_Return)  # refused politely, text kept
    assert window.composer.text() == "still typing"
