"""Finish Now in the window on the real engine (tiny synthetic checkpoint, scripted tokens): the
button beside Stop shows only while the model reasons, and pressing it (or Chat › Finish Now)
makes the model close its reasoning and answer; the reasoning pane says the user cut it."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.message_widget import AssistantMessageWidget
from app.turn_stream import TurnResult
from engine import HarmonyTokenizer
from engine.harmony import Message
from engine.testing.scripted import reply_ids
from tests.app.conftest import TURN_TIMEOUT_MS, MakeWindow
from tests.app.scripting import ScriptedSessions

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

THINKING = " ".join(f"step{i}" for i in range(300))  # a long reasoning the user cuts short
ANSWER = "The answer is 42."
USER_NOTE = "you cut the reasoning short with Finish Now"


def script_long_reasoning(script: ScriptedSessions, tok: HarmonyTokenizer, hold: int) -> int:
    """Scripts reasoning that holds at sample `hold`, then the answer the model gives once its
    reasoning is closed for it; returns how many analysis tokens come before the answer."""
    analysis = reply_ids(tok, [Message.assistant(THINKING, channel="analysis")])[: hold + 1]
    answer = [*tok.encode_ordinary(ANSWER), *tok.encode("<|return|>", allowed_special="all")]
    script.sampler.extend(analysis + answer)
    return len(analysis)


def start(qtbot: QtBot, window: object, text: str) -> None:
    composer = window.composer  # type: ignore[attr-defined]
    composer.set_text(text)
    qtbot.keyClick(composer.input, Qt.Key.Key_Return)


@pytest.mark.parametrize("how", ["button", "menu", "shortcut"])
def test_finish_now_during_reasoning_makes_the_model_answer(
    qtbot: QtBot, make_window: MakeWindow, tok: HarmonyTokenizer, how: str
) -> None:
    script = ScriptedSessions(tok)
    window = make_window(session_factory=script)
    composer, action = window.composer, window.menu_actions.finish_now
    assert composer.finish_button.isHidden() and not action.isEnabled()
    hold = 40
    script_long_reasoning(script, tok, hold)
    gate = script.hold_at(hold)
    start(qtbot, window, "Think hard")
    qtbot.waitUntil(script.reached[hold].is_set, timeout=TURN_TIMEOUT_MS)
    widget = window.view.messages()[-1]
    assert isinstance(widget, AssistantMessageWidget)
    qtbot.waitUntil(lambda: composer.finish_button.isVisible(), timeout=TURN_TIMEOUT_MS)
    assert action.isEnabled() and widget.thinking.text.startswith("step0")
    with qtbot.waitSignal(window.controller.turn_completed, timeout=TURN_TIMEOUT_MS) as done:
        if how == "button":
            qtbot.mouseClick(composer.finish_button, Qt.MouseButton.LeftButton)
        elif how == "menu":
            action.trigger()  # Chat › Finish Now
        else:  # typed in the message box, where Return alone would send
            mods = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
            qtbot.keyClick(composer.input, Qt.Key.Key_Return, mods)
        assert not composer.finish_button.isEnabled()  # asked once
        gate.set()
    result: TurnResult = done.args[0]
    assert result.error is None and result.status == "complete"
    assert result.answer == ANSWER and widget.answer_text() == ANSWER
    assert result.stats["cut_reason"] == "user" and result.stats["finish_reason"] == "stop"
    assert USER_NOTE in widget.thinking.toggle.text()
    assert len(widget.thinking.text) < len(THINKING)
    assert script.sampler.remaining == 0  # the model wrote the answer right after the cut
    assert composer.finish_button.isHidden() and not action.isEnabled()
    stored = window.store.get_message(widget.message_id)
    assert stored.content == ANSWER and stored.stats["cut_reason"] == "user"
    assert USER_NOTE in widget.facts_label.text()


def test_finish_now_is_not_offered_while_the_answer_streams(
    qtbot: QtBot, make_window: MakeWindow, tok: HarmonyTokenizer
) -> None:
    script = ScriptedSessions(tok)
    window = make_window(session_factory=script)
    ids = script.reply(" ".join(f"word{i}" for i in range(12)))
    gate = script.hold_at(len(ids) - 10)  # in the middle of the answer, no reasoning at all
    start(qtbot, window, "Answer straight away")
    qtbot.waitUntil(script.reached[len(ids) - 10].is_set, timeout=TURN_TIMEOUT_MS)
    widget = window.view.messages()[-1]
    assert isinstance(widget, AssistantMessageWidget)
    qtbot.waitUntil(lambda: widget.answer_text().startswith("word0"), timeout=TURN_TIMEOUT_MS)
    assert window.composer.finish_button.isHidden()
    assert not window.menu_actions.finish_now.isEnabled()
    assert window.composer.send_button.text() == "Stop"
    with qtbot.waitSignal(window.controller.turn_completed, timeout=TURN_TIMEOUT_MS):
        gate.set()
