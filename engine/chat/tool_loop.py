"""The tool loop of one chat turn: run each call to the document browser or to a tool provider
(python, MCP functions), give the model its result, and continue until it answers, with limits.

The loop runs on the engine's thread: a browser call is plain Python over SQLite (milliseconds),
so it needs no thread of its own; a provider runs its call in its own process or connection and
returns within its time limit or soon after `cancel`.

The chat's events pass through unchanged, except that the TurnFinished("tool_call") of each call
the loop answers is held back: the caller sees one turn, ending with one TurnFinished (its stats
are those of the last model run), with a ToolStep per call in between and a CitationsResolved
just before the end when the model answered (with documents). Cancelling
(the `cancel` event) or closing the iterator stops it cleanly between tokens or calls; the
`finish` event ("Finish now") cuts the reasoning of every later run too, so no new research starts.

Limits: at most `max_calls` tool calls per turn, browser and provider calls counted together.
The next call is not run: it gets a tool error telling the model to answer now, and that run's
reasoning budget shrinks to `answer_now_tokens`, so the session's budget cut opens the final
channel if the model keeps thinking. A model that calls again even then is stopped there (the
turn ends with its call unanswered and a ToolStep saying so). Each view holds at most the
BrowserSession's `view_tokens`.

Providers: the loop declares their tools in the session once (system namespaces such as python,
developer-message functions) and leaves them alone after that, so every turn of a chat renders the
same prefix and the KV cache keeps it. Before a call that `needs_approval` the loop asks the
`approver` unless the user already allowed that tool (`Approvals`); a declined call gives the model
DECLINED_TEXT, and Stop while the user decides ends the turn with the call not run. Python answers
on the call's channel as `python`, as gpt-oss's reference does; functions answer on commentary.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace

from engine.browser import BrowserSession
from engine.chat.events import ToolCallRequested, TurnFinished
from engine.chat.session import ChatSession, TurnEvents
from engine.chat.tool_approvals import Approvals, run_provider_call
from engine.chat.tool_calls import FUNCTIONS_NAMESPACE
from engine.chat.tool_steps import (
    DEFAULT_MAX_CALLS,
    LoopEvent,
    LoopEvents,
    ToolStep,
    answer_now_text,
    describe,
    limit_step,
    other_step,
    resolve_answer,
)
from engine.tools.approval import Approver
from engine.tools.base import ToolProvider

# Enough for a sentence of reasoning before the forced answer, not another round of research.
ANSWER_NOW_TOKENS = 128
BROWSER_PREFIX = "browser"

__all__ = [
    "DEFAULT_MAX_CALLS",
    "LoopEvent",
    "LoopEvents",
    "ToolLoop",
    "answer_now_text",
    "declare_tools",
]


class ToolLoop:
    """Drives one session's turns through tool calls. Not thread-safe (like the session).

    `browser` None: a chat with tools but no documents. `approvals` are what the user allowed
    without asking (pass the chat's own to keep "for this chat" across turns; by default the
    loop keeps them for as long as it lives). Without an `approver`, calls that need approval
    are declined."""

    def __init__(
        self,
        session: ChatSession,
        browser: BrowserSession | None = None,
        *,
        providers: Sequence[ToolProvider] = (),
        approver: Approver | None = None,
        approvals: Approvals | None = None,
        max_calls: int = DEFAULT_MAX_CALLS,
        answer_now_tokens: int = ANSWER_NOW_TOKENS,
    ) -> None:
        if max_calls < 0 or answer_now_tokens < 1:
            raise ValueError("max_calls must be >= 0 and answer_now_tokens >= 1")
        self.session = session
        self.browser = browser
        self.providers = tuple(providers)
        self.approver = approver
        self.approvals = approvals if approvals is not None else Approvals()
        self.max_calls = max_calls
        self.answer_now_tokens = answer_now_tokens
        declare_tools(session, self.providers)

    def send(
        self,
        text: str,
        cancel: threading.Event | None = None,
        finish: threading.Event | None = None,
    ) -> LoopEvents:
        """Adds a user message and answers it, running tools as the model asks."""
        cancel = cancel or threading.Event()
        return self.run(self.session.send(text, cancel, finish), cancel, finish)

    def run(
        self,
        first: TurnEvents,
        cancel: threading.Event | None = None,
        finish: threading.Event | None = None,
    ) -> LoopEvents:
        """Continues `first` (a turn the session started) through every call the loop can
        answer: browser calls, calls a provider handles, and calls to no tool at all (answered
        with their problem). Calls to other functions end the loop with their TurnFinished, for
        the caller."""
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
                if self.browser is not None and finished.answer and finished.reason != "tool_call":
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
            elif self.browser is not None and _is_browser(call.recipient):
                output = self.browser.call(call.recipient, call.arguments_json)
                result = output.text
                yield describe(self.browser, call.recipient, call.arguments, output, calls)
            elif (provider := self._provider(call)) is not None and call.problem is None:
                step, answer = self._call(provider, call, calls, cancel)
                yield step
                if answer is None:  # Stop before the call ran (while the user decided)
                    yield replace(finished, reason="cancel")
                    return
                result = answer
            else:
                result = call.error_result() or ""
                yield other_step(call.recipient, call.problem or "", calls)
            events = self._continue(call, result, cancel, finish, tight=over)

    def _answers(self, call: ToolCallRequested) -> bool:
        if self.browser is not None and _is_browser(call.recipient):
            return True
        if self._provider(call) is not None:
            return True
        # The app runs its own functions; a call to no tool at all only the loop can answer.
        return call.problem is not None and not call.recipient.startswith(FUNCTIONS_NAMESPACE + ".")

    def _provider(self, call: ToolCallRequested) -> ToolProvider | None:
        return next((p for p in self.providers if p.handles(call.recipient)), None)

    def _call(
        self, provider: ToolProvider, call: ToolCallRequested, number: int, cancel: threading.Event
    ) -> tuple[ToolStep, str | None]:
        """Asks if needed, runs the call; the step, and the text for the model (None: stop)."""
        return run_provider_call(
            provider,
            call.recipient,
            call.arguments_json,
            number,
            self.approvals,
            self.approver,
            cancel,
        )

    def _continue(
        self,
        call: ToolCallRequested,
        result: str,
        cancel: threading.Event,
        finish: threading.Event | None,
        *,
        tight: bool,
    ) -> TurnEvents:
        # Built-in tools (browser, python) answer on the call's channel; functions on commentary.
        builtin = not call.recipient.startswith(FUNCTIONS_NAMESPACE + ".")
        channel = call.channel if builtin else "commentary"
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


def declare_tools(session: ChatSession, providers: Sequence[ToolProvider]) -> None:
    """Adds the providers' namespaces to the system message and their functions to the developer
    message, each once (by name): a second call leaves the session as it is, so building a loop
    every turn keeps the prompt, and the KV cache prefix, unchanged."""
    system = session.system
    names = {ns.name for ns in system.tools}
    for provider in providers:
        for namespace in provider.system_namespaces():
            if namespace.name not in names:
                system = system.with_tools(namespace)
                names.add(namespace.name)
    if system != session.system:
        session.set_system(system)
    tools = list(session.tools)
    known = {t.name for t in tools}
    for provider in providers:
        for function in provider.functions():
            if function.name not in known:
                tools.append(function)
                known.add(function.name)
    if len(tools) != len(session.tools):
        session.set_tools(tools, session.instructions)


def _is_browser(recipient: str) -> bool:
    return recipient == BROWSER_PREFIX or recipient.startswith(BROWSER_PREFIX + ".")
