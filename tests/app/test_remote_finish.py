"""Finish now for a chat whose answers come from a server: the stream stops during the reasoning
and the question is asked again with that reasoning given back (a Responses reasoning item, or
a Chat Completions assistant message with the server's reasoning field), and the model answers.
Against OSS Desk's own server on loopback (real engine, tiny model, scripted tokens), and a
fake server that takes no reasoning back, where Finish now is refused up front."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.message_widget import AssistantMessageWidget
from app.remote_backend import RemoteModelInfo
from app.remote_client import ServerConfig, ServerProbe
from app.remote_session import ANSWER_NOW_NOTE, REMOTE_CONTEXT_TOKENS, RemoteSession
from app.turn_stream import TurnResult
from engine import ChannelDelta, Message, ReasoningCut, TurnFinished
from engine.testing.scripted import reply_ids
from tests.app.conftest import TURN_TIMEOUT_MS, MakeWindow
from tests.app.test_remote_tools import ToolFake, remote_loader, run_tool_fake
from tests.server.conftest import KEY, MODEL_ID, Served

# The offscreen platform's notices when a window is shown and raised; nothing of ours.
pytestmark = pytest.mark.qt_log_ignore(
    "This plugin does not support propagateSizeHints", "This plugin does not support raise"
)

THINKING = " ".join(f"step{i}" for i in range(400))  # reasoning long enough to cut short
CUT_AT = 40  # the sample at which the user presses Finish now
ANSWER = "The answer is 42."


class FinishScript:
    """Scripts the server's model: long reasoning for the first request, during which Finish now
    is pressed (at sample CUT_AT, as a user would while reading it stream); once that request has
    ended (the client hung up), whatever the model had left is dropped and the answer scripted,
    so the second request writes it."""

    def __init__(self, served: Served, finish: threading.Event | None = None) -> None:
        self.served = served
        self.finish = finish
        self.sampler = served.sampler
        assert self.sampler is not None
        self.start = self.sampler.calls
        self.ended = len(served.finished)
        self.answered = False
        tok = served.tok
        self.sampler.extend(reply_ids(tok, [Message.assistant(THINKING, channel="analysis")]))
        self.answer = [
            *tok.encode_ordinary(ANSWER),
            *tok.encode("<|return|>", allowed_special="all"),
        ]
        self.header = tok.encode("<|channel|>final<|message|>", allowed_special="all")
        self._next = self.sampler.on_sample
        self.sampler.on_sample = self.on_sample

    def on_sample(self, i: int) -> None:
        assert self.sampler is not None
        if i - self.start == CUT_AT and self.finish is not None:
            self.finish.set()
        if not self.answered and len(self.served.finished) > self.ended:  # the first ended
            self.answered = True
            self.sampler.discard_remaining()
            self.sampler.extend([*self.header, *self.answer])
        if self._next is not None:
            self._next(i)

    def close(self) -> None:
        assert self.sampler is not None
        self.sampler.on_sample = self._next


def turn(session: RemoteSession, finish: threading.Event) -> list[Any]:
    return list(session.send("Think about it, then answer.", finish=finish))


@pytest.mark.parametrize("responses", [True, False], ids=["responses", "chat"])
def test_finish_now_on_a_remote_turn_gives_a_shorter_reasoning_and_an_answer(
    own_server: Served, responses: bool
) -> None:
    finish = threading.Event()
    script = FinishScript(own_server, finish)
    try:
        config = ServerConfig(own_server.base_url, KEY, MODEL_ID)
        session = RemoteSession(config, responses=responses, reasoning_field="reasoning")
        events = turn(session, finish)
    finally:
        script.close()
    assert script.answered
    cuts = [i for i, e in enumerate(events) if isinstance(e, ReasoningCut)]
    assert len(cuts) == 1 and events[cuts[0]].reason == "user"
    before = "".join(e.text for e in events[: cuts[0]] if isinstance(e, ChannelDelta))
    after = [e for e in events[cuts[0] :] if isinstance(e, ChannelDelta) and e.text]
    assert before and THINKING.startswith(before) and len(before) < len(THINKING) // 2
    assert [e.channel for e in after] == ["final"] * len(after)
    assert "".join(e.text for e in after) == ANSWER
    finished = events[-1]
    assert isinstance(finished, TurnFinished) and finished.reason == "stop"
    assert finished.answer == ANSWER
    assert own_server.finished[-2].reason == "cancel"  # the first request was stopped
    # The second request gave the model its reasoning back, told to answer, and it answered.
    read = own_server.prompt_text()
    given = f"<|channel|>analysis<|message|>{before}{ANSWER_NOW_NOTE}<|end|>"
    assert given + f"<|start|>assistant<|channel|>final<|message|>{ANSWER}" in read
    assert [(m.channel, m.text) for m in session.messages[1:]] == [
        ("analysis", before),
        ("final", ANSWER),
    ]


def test_a_server_that_takes_no_reasoning_back_is_not_cut_and_says_why() -> None:
    for fake in run_tool_fake(ToolFake("vllm", [("Think long and hard.", "Done.")])):
        session = RemoteSession(fake.config, responses=False, reasoning_field="")
        assert not session.takes_reasoning_back
        finish = threading.Event()
        finish.set()  # pressed before any reasoning came: it must not cut it
        events = turn(session, finish)
        assert not any(isinstance(e, ReasoningCut) for e in events)
        assert len(fake.requests) == 1
        finished = events[-1]
        assert isinstance(finished, TurnFinished) and finished.answer == "Done."
    problem = ServerProbe(("m",), responses=False, reasoning_field="").finish_now_problem()
    assert problem.startswith("Finish Now needs a server that takes reasoning back;")
    assert (
        ServerProbe(("m",), responses=False, reasoning_field="reasoning").finish_now_problem() == ""
    )
    assert ServerProbe(("m",), responses=True).finish_now_problem() == ""


USER_NOTE = "you cut the reasoning short with Finish Now"


def test_finish_now_in_the_window_cuts_a_remote_reasoning_and_answers_in_the_same_message(
    qtbot: QtBot, make_window: MakeWindow, own_server: Served
) -> None:
    config = ServerConfig(own_server.base_url, KEY, MODEL_ID)
    window = make_window(loader=remote_loader(config, REMOTE_CONTEXT_TOKENS))
    composer = window.composer
    gate = own_server.hold_at(CUT_AT)  # the user reads the reasoning as it streams
    script = FinishScript(own_server)
    try:
        with qtbot.waitSignal(window.controller.turn_completed, timeout=TURN_TIMEOUT_MS) as done:
            composer.set_text("Think about it, then answer.")
            qtbot.keyClick(composer.input, Qt.Key.Key_Return)
            own_server.wait_held()
            qtbot.waitUntil(composer.finish_button.isVisible, timeout=TURN_TIMEOUT_MS)
            assert composer.finish_button.isEnabled() and window.menu_actions.finish_now.isEnabled()
            qtbot.mouseClick(composer.finish_button, Qt.MouseButton.LeftButton)
            gate.set()
    finally:
        gate.set()
        script.close()
    result: TurnResult = done.args[0]
    assert result.error is None and result.status == "complete"
    assert result.answer == ANSWER and result.stats["cut_reason"] == "user"
    (widget,) = [w for w in window.view.messages() if isinstance(w, AssistantMessageWidget)]
    assert widget.answer_text() == ANSWER
    assert USER_NOTE in widget.thinking.toggle.text()
    assert widget.thinking.text and THINKING.startswith(widget.thinking.text)
    assert len(widget.thinking.text) < len(THINKING) // 2
    assert composer.finish_button.isHidden()


def test_finish_now_is_disabled_with_the_reason_for_a_server_that_takes_no_reasoning_back(
    qtbot: QtBot, make_window: MakeWindow
) -> None:
    turns: list[tuple[str, tuple[str, str] | str]] = [("Think long and hard.", "Done.")]
    for fake in run_tool_fake(ToolFake("vllm", turns, probe_reasoning=False, stall_s=1.0)):
        window = make_window(loader=remote_loader(fake.config, REMOTE_CONTEXT_TOKENS))
        assert isinstance(window.engine.model, RemoteModelInfo)
        composer = window.composer
        with qtbot.waitSignal(window.controller.turn_completed, timeout=TURN_TIMEOUT_MS) as done:
            composer.set_text("Hi")
            qtbot.keyClick(composer.input, Qt.Key.Key_Return)
            qtbot.waitUntil(composer.finish_button.isVisible, timeout=TURN_TIMEOUT_MS)
            assert not composer.finish_button.isEnabled()
            assert composer.finish_button.toolTip().startswith("Finish Now needs a server")
            assert not window.menu_actions.finish_now.isEnabled()
        result: TurnResult = done.args[0]
        assert result.answer == "Done." and result.stats["cut_reason"] is None
