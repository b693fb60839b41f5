"""Screen readers hear when an answer ends: "Answer finished", "Answer stopped", or the error.

No screen reader runs here, so the announcement is caught where Qt hands it to the platform
(QAccessible.updateAccessibility), then passed on to Qt as usual."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAccessible, QAccessibleAnnouncementEvent, QAccessibleEvent
from pytestqt.qtbot import QtBot

from app.announce import FINISHED, STOPPED, announce_turn, turn_announcement
from app.messages import ErrorInfo
from app.turn_stream import TurnResult
from engine import HarmonyTokenizer
from tests.app.conftest import TURN_TIMEOUT_MS, MakeWindow
from tests.app.scripting import ScriptedSessions
from tests.app.test_chat_flow import send

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

Polite = QAccessible.AnnouncementPoliteness.Polite
Assertive = QAccessible.AnnouncementPoliteness.Assertive


@dataclass(frozen=True)
class Heard:
    source: QObject
    text: str
    politeness: QAccessible.AnnouncementPoliteness


@pytest.fixture
def heard(monkeypatch: pytest.MonkeyPatch) -> list[Heard]:
    """Every announcement posted to Qt's accessibility layer during the test."""
    posted: list[Heard] = []
    deliver = QAccessible.updateAccessibility

    def spy(event: QAccessibleEvent) -> None:
        if isinstance(event, QAccessibleAnnouncementEvent):
            posted.append(Heard(event.object(), event.message(), event.politeness()))
        deliver(event)

    monkeypatch.setattr(QAccessible, "updateAccessibility", staticmethod(spy))
    return posted


def test_a_finished_answer_is_announced_politely(
    qtbot: QtBot, make_window: MakeWindow, tok: HarmonyTokenizer, heard: list[Heard]
) -> None:
    script = ScriptedSessions(tok)
    window = make_window(session_factory=script)
    script.reply("Paris.", analysis="The capital of France.")
    send(qtbot, window, "Capital of France?")
    assert heard == [Heard(window, FINISHED, Polite)]


def test_a_stopped_answer_is_announced_as_stopped(
    qtbot: QtBot, make_window: MakeWindow, tok: HarmonyTokenizer, heard: list[Heard]
) -> None:
    script = ScriptedSessions(tok)
    window = make_window(session_factory=script)
    script.reply(" ".join(f"word{i}" for i in range(100)))
    gate = script.hold_at(20)
    window.composer.set_text("Write a lot")
    qtbot.keyClick(window.composer.input, Qt.Key.Key_Return)
    qtbot.waitUntil(script.reached[20].is_set, timeout=TURN_TIMEOUT_MS)
    assert heard == []  # nothing while it is being written
    with qtbot.waitSignal(window.controller.turn_completed, timeout=TURN_TIMEOUT_MS):
        window.menu_actions.stop.trigger()
        gate.set()
    assert heard == [Heard(window, STOPPED, Polite)]


def test_an_error_interrupts_with_its_first_sentence(qtbot: QtBot, heard: list[Heard]) -> None:
    source = QObject()
    error = ErrorInfo("", "The model ran out of memory. Close other apps and try again. Details.")
    announce_turn(source, TurnResult(turn_id=1, message_id=2, status="error", error=error))
    assert heard == [
        Heard(source, "Answer stopped with an error: The model ran out of memory.", Assertive)
    ]
    assert turn_announcement(TurnResult(1, 2, "interrupted")) == "Answer interrupted."
