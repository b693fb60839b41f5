"""Regenerate keeps versions: ‹ n/m › under the answer, switching, the chat continuing from the
version shown, reopening and exporting. The real window, engine thread and tiny model with a
scripted sampler (tests/app/scripting.py), and the history in SQLite on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.history import HistoryStore
from app.history_bridge import continues
from app.main_window import MainWindow
from app.message_widget import AssistantMessageWidget
from engine import HarmonyTokenizer, Message
from tests.app.conftest import TURN_TIMEOUT_MS, MakeWindow, close
from tests.app.scripting import ScriptedSessions
from tests.app.test_chat_flow import send

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

REPLIES = [("Crimson.", "Warm ones first."), ("Teal.", "A cool one now."), ("Ochre.", "Earthy.")]


def answer_of(window: MainWindow, index: int = 1) -> AssistantMessageWidget:
    widget = window.view.messages()[index]
    assert isinstance(widget, AssistantMessageWidget)
    return widget


def regenerate(qtbot: QtBot, window: MainWindow) -> None:
    with qtbot.waitSignal(window.controller.turn_completed, timeout=TURN_TIMEOUT_MS) as done:
        window.menu_actions.regenerate.trigger()
    assert done.args[0].error is None, done.args[0].error


def click(qtbot: QtBot, button: object) -> None:
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def open_from_sidebar(qtbot: QtBot, window: MainWindow, row: int = 0) -> None:
    item = window.sidebar.list.item(row)
    rect = window.sidebar.list.visualItemRect(item)
    qtbot.mouseClick(window.sidebar.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_regenerated_versions_switch_reopen_continue_and_export(
    qtbot: QtBot, make_window: MakeWindow, tok: HarmonyTokenizer, tmp_path: Path
) -> None:
    script = ScriptedSessions(tok)
    window = make_window(session_factory=script)
    (text, analysis), *again = REPLIES
    script.reply(text, analysis=analysis)
    send(qtbot, window, "Name a colour")
    widget = answer_of(window)
    assert not widget.versions.isVisible()  # one version: no arrows
    for text, analysis in again:
        script.reply(text, analysis=analysis)
        regenerate(qtbot, window)

    widget = answer_of(window)
    assert len(window.view.messages()) == 2
    assert widget.versions.isVisible() and widget.versions.label.text() == "3/3"
    assert widget.versions.previous.isEnabled() and not widget.versions.next.isEnabled()
    assert widget.answer_text() == "Ochre." and widget.thinking.text == "Earthy."
    versions = window.store.answer_versions(widget.message_id)
    assert [(v.version, v.content) for v in versions] == [
        (1, "Crimson."),
        (2, "Teal."),
        (3, "Ochre."),
    ]
    assert len(script.sessions) == 1  # regenerating reused the live session

    click(qtbot, widget.versions.previous)
    click(qtbot, widget.versions.previous)
    assert widget.versions.label.text() == "1/3"
    assert not widget.versions.previous.isEnabled() and widget.versions.next.isEnabled()
    assert widget.answer_text() == "Crimson." and widget.thinking.text == "Warm ones first."
    first_facts = window.store.answer_versions(widget.message_id)[0].stats
    assert f"{first_facts['answer_tokens']:,} answer tokens" in widget.facts_label.text()

    # Reopen the chat from the sidebar: the version chosen is the one shown.
    window.menu_actions.new_chat.trigger()
    assert window.view.messages() == []
    open_from_sidebar(qtbot, window)
    widget = answer_of(window)
    assert widget.answer_text() == "Crimson." and widget.versions.label.text() == "1/3"

    # The follow-up continues from version 1: that is what the model read, not the newest.
    script.reply("Yes, crimson.")
    send(qtbot, window, "Is that warm?")
    prompt = script.prompt_text()
    assert "Crimson." in prompt and "Is that warm?" in prompt
    assert "Ochre." not in prompt and "Teal." not in prompt
    assert len(script.sessions) == 2  # the live session held version 3, so it was rebuilt

    path = tmp_path / "colours.md"
    assert window.export_conversation(path, "markdown")
    exported = path.read_text(encoding="utf-8")
    assert "### Assistant · version 1 of 3, the one shown" in exported
    shown, others = exported.split("#### Other versions of this answer")
    assert "Crimson." in shown and "Ochre." not in shown
    assert others.index("Teal.") < others.index("Ochre.") < others.index("Yes, crimson.")


def test_switching_waits_while_an_answer_is_written(
    qtbot: QtBot, make_window: MakeWindow, tok: HarmonyTokenizer, data_dir: Path
) -> None:
    script = ScriptedSessions(tok)
    window = make_window(session_factory=script)
    scripted = len(script.reply("Crimson."))
    send(qtbot, window, "Name a colour")
    scripted += len(script.reply("Teal."))
    regenerate(qtbot, window)
    scripted += len(script.reply("Ochre, a long answer this time."))
    held = scripted - 4  # a sample inside the third answer
    gate = script.hold_at(held)
    window.menu_actions.regenerate.trigger()
    qtbot.waitUntil(script.reached[held].is_set, timeout=TURN_TIMEOUT_MS)
    widget = answer_of(window)
    assert widget.versions.label.text() == "3/3"  # the new version streams as number 3
    assert not widget.versions.previous.isEnabled() and not widget.versions.next.isEnabled()
    window.controller.select_version(widget.message_id, 1)  # e.g. a click that raced the turn
    assert window.store.get_message(widget.message_id).status == "streaming"
    with qtbot.waitSignal(window.controller.turn_completed, timeout=TURN_TIMEOUT_MS):
        gate.set()
    assert widget.versions.previous.isEnabled() and not widget.versions.next.isEnabled()
    assert widget.answer_text() == "Ochre, a long answer this time."
    close(window)

    with HistoryStore(data_dir / "history.sqlite3") as store:
        conversation = store.list_conversations()[0].id
        shown = store.get_conversation(conversation)[1][-1]
        assert (shown.version, shown.content) == (3, "Ochre, a long answer this time.")


def test_a_live_session_continues_only_the_conversation_it_holds() -> None:
    question, other = Message.user("Name a colour"), Message.user("Another?")
    thought = Message.assistant("Warm ones first.", channel="analysis")
    crimson, ochre = Message.assistant("Crimson."), Message.assistant("Ochre.")
    held = [question, thought, ochre]
    assert continues(held, [question, ochre])  # the next question: nothing changed
    assert continues(held, [question])  # Regenerate and Edit: the answer is written again
    assert not continues(held, [question, crimson])  # the user chose another version
    assert not continues(held, [question, ochre, other, crimson])
    assert not continues([*held, other, crimson], [question, ochre])  # a longer session
