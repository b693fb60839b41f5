"""The browser tool loop of one chat turn: run each browser call, give the model its result, and
continue until it answers, with limits.

The loop runs on the engine's thread: a browser call is plain Python over SQLite (milliseconds),
so it needs no thread of its own. The chat's events pass through unchanged, except that the
TurnFinished("tool_call") of each call the loop answers is held back: the caller sees one turn,
ending with one TurnFinished (its stats are those of the last model run), with a ToolStep per
call in between and a CitationsResolved just before the end when the model answered. Cancelling
(the `cancel` event) or closing the iterator stops it cleanly between tokens or calls; the
`finish` event ("Finish now") cuts the reasoning of every later run too, so no new research starts.

Limits: at most `max_calls` tool calls per turn. The next call is not run: it gets a tool error
telling the model to answer now, and that run's reasoning budget shrinks to
`answer_now_tokens`, so the session's budget cut opens the final channel if the model keeps
thinking. A model that calls again even then is stopped there (the turn ends with its call
unanswered and a ToolStep saying so). Each view holds at most the BrowserSession's
`view_tokens`.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import replace
from typing import TypeAlias

from engine.browser import BrowserSession
from engine.chat.events import ChatEvent, ToolCallRequested, TurnFinished
from engine.chat.session import ChatSession, TurnEvents
from engine.chat.tool_calls import FUNCTIONS_NAMESPACE
from engine.chat.tool_steps import (
    CitationsResolved,
    ToolStep,
    describe,
    limit_step,
    other_step,
    resolve_answer,
)

DEFAULT_MAX_CALLS = 8
# Enough for a sentence of reasoning before the forced answer, not another round of research.
ANSWER_NOW_TOKENS = 128
BROWSER_PREFIX = "browser"

LoopEvent: TypeAlias = ChatEvent | ToolStep | CitationsResolved
# One turn through its tool calls; `close()` it to stop early, as with TurnEvents.
LoopEvents: TypeAlias = Generator[LoopEvent, None, None]


def answer_now_text(max_calls: int) -> str:
    return (
        f"Tool call limit reached: {max_calls} tool calls have been made for this answer. "
        "Do not call any tool again. Answer the user now from what you have read, citing it."
    )


class ToolLoop:
    """Drives one session's turns through browser calls. Not thread-safe (like the session)."""

    def __init__(
        self,
        session: ChatSession,
        browser: BrowserSession,
        *,
        max_calls: int = DEFAULT_MAX_CALLS,
        answer_now_tokens: int = ANSWER_NOW_TOKENS,
    ) -> None:
        if max_calls < 0 or answer_now_tokens < 1:
            raise ValueError("max_calls must be >= 0 and answer_now_tokens >= 1")
        self.session = session
        self.browser = browser
        self.max_calls = max_calls
        self.answer_now_tokens = answer_now_tokens

    def send(
        self,
        text: str,
        cancel: threading.Event | None = None,
        finish: threading.Event | None = None,
    ) -> LoopEvents:
        """Adds a user message and answers it, browsing as the model asks."""
        cancel = cancel or threading.Event()
        return self.run(self.session.send(text, cancel, finish), cancel, finish)

    def run(
        self,
        first: TurnEvents,
        cancel: threading.Event | None = None,
        finish: threading.Event | None = None,
    ) -> LoopEvents:
        """Continues `first` (a turn the session started) through every call the loop can
        answer: browser calls, and calls to no tool at all (answered with their problem).
        Calls to the app's own functions end the loop with their TurnFinished, for the caller."""
        cancel = cancel or threading.Event()
        events: TurnEvents = first
        calls = 0
        while True:
            call: ToolCallRequested | None = None
            finished: TurnFinished | None = None
            try:
                for event in events:
                    if isinstance(event, TurnFinished):
                        finished = event
                        continue
                    if isinstance(event, ToolCallRequested):
                        call = event
                    yield event
            finally:
                events.close()  # the caller may stop early: the session must be idle after
            if finished is None:
                raise RuntimeError("the turn ended without TurnFinished")
            if finished.reason != "tool_call" or call is None or not self._answers(call):
                if finished.answer and finished.reason != "tool_call":
                    yield resolve_answer(self.browser, finished.answer)
                yield finished
                return
            calls += 1
            if calls > self.max_calls + 1:
                yield limit_step(call.recipient, calls, self.max_calls, stopped=True)
                yield finished
                return
            over = calls > self.max_calls
            if over:
                result = answer_now_text(self.max_calls)
                yield limit_step(call.recipient, calls, self.max_calls, stopped=False)
            elif _is_browser(call.recipient):
                output = self.browser.call(call.recipient, call.arguments_json)
                result = output.text
                yield describe(self.browser, call.recipient, call.arguments, output, calls)
            else:
                result = call.error_result() or ""
                yield other_step(call.recipient, call.problem or "", calls)
            events = self._continue(call, result, cancel, finish, tight=over)

    def _answers(self, call: ToolCallRequested) -> bool:
        if _is_browser(call.recipient):
            return True
        # The app runs its own functions; a call to no tool at all only the loop can answer.
        return call.problem is not None and not call.recipient.startswith(FUNCTIONS_NAMESPACE + ".")

    def _continue(
        self,
        call: ToolCallRequested,
        result: str,
        cancel: threading.Event,
        finish: threading.Event | None,
        *,
        tight: bool,
    ) -> TurnEvents:
        channel = call.channel if _is_browser(call.recipient) else "commentary"
        saved = self.session.budget
        if tight:
            n = self.answer_now_tokens
            self.session.set_budget(replace(saved, low=n, medium=n, high=n))
        try:
            # The budget is read when the run starts, i.e. at the first event.
            yield from self.session.submit_tool_result(
                call, result, cancel, finish, channel=channel
            )
        finally:
            self.session.set_budget(saved)


def _is_browser(recipient: str) -> bool:
    return recipient == BROWSER_PREFIX or recipient.startswith(BROWSER_PREFIX + ".")
