"""Tools for a chat whose answers come from a server (issues 14 and 17): the browser's three
functions and the chat's tool providers (python, MCP servers; app/remote_functions.py) offered
as function tools, each call run here (the browser on the chat's BrowserSession, a provider's
after the user approves it), and the answer's citations resolved to the documents, as for a
local answer. Qt-free; runs on the engine thread, like the BrowserSession it drives.

Names: OpenAI function names allow only letters, digits, `_` and `-`, so harmony's
`browser.search`, `browser.open` and `browser.find` are offered as `browser_search`,
`browser_open` and `browser_find`, with the descriptions and JSON schemas of
engine.harmony.builtin_tools' browser namespace; the namespace's own text (the cursor and the
citation format `【cursor†Lx-Ly】`) joins the instructions, since a function tool has no place
for it. Steps are named by the harmony recipient ("browser.search"), as locally.

The loop mirrors engine.chat.tool_loop.ToolLoop and reuses its helpers: at most `max_calls`
calls per turn, browser and provider calls counted together; the next one is answered with
answer_now_text, and a model that calls again even then is stopped there. A server has no
reasoning budget to shrink for that last run, so the answer-now text alone asks for the answer.

Within a turn the conversation grows by rounds: the reasoning of a run and its calls with their
outputs, sent back as Responses input items (reasoning, function_call, function_call_output) or
as Chat Completions messages (an assistant message with `tool_calls`, then `tool` messages).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from app.remote_functions import (
    ProviderFunction,
    ProviderTools,
    code_argument,
    provider_for,
    provider_functions,
)
from engine import (
    DEFAULT_MAX_CALLS,
    BrowserSession,
    LoopEvent,
    ToolCallRequested,
    answer_now_text,
    describe_browser_call,
    limit_step,
    other_step,
    resolve_answer,
    run_provider_call,
)

FUNCTION_PREFIX = "browser_"
BROWSER_RECIPIENT = "browser."


@dataclass(frozen=True)
class RemoteCall:
    """A function call the server streamed: its id, the function's name, its JSON arguments."""

    call_id: str
    name: str
    arguments_json: str

    @property
    def arguments(self) -> Any:
        try:
            return json.loads(self.arguments_json)
        except ValueError:
            return None


@dataclass
class Round:
    """What one run of a turn adds to the conversation for the next: its reasoning (given back)
    and its calls with their outputs. A round without calls gives back reasoning cut short."""

    reasoning: str
    calls: list[RemoteCall] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RunResult:
    """How one streamed request ended: "stop", "length", "cancel" or "tool_call"."""

    reason: str
    answer: str
    reasoning: str = ""  # this run's, given back with its calls
    calls: tuple[RemoteCall, ...] = ()


# One streamed request continuing the turn with `rounds` (it may append a round itself).
Run: TypeAlias = Callable[[list[Round]], Generator[LoopEvent, None, RunResult]]


@dataclass(frozen=True)
class ToolOffer:
    """The function tools a turn offers, the instructions that explain them, and what each
    function's calls run here (its harmony recipient; a provider's function in `provided`)."""

    tools: list[dict[str, Any]] | None = None
    instructions: str | None = None
    recipients: dict[str, str] = field(default_factory=dict)
    provided: dict[str, ProviderFunction] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        browser: BrowserSession | None,
        responses: bool,
        tools: ProviderTools | None = None,
    ) -> ToolOffer:
        offered: list[dict[str, Any]] = []
        parts: list[str] = []
        recipients: dict[str, str] = {}
        if browser is not None:
            offered += function_tools(browser, responses=responses)
            parts.append(tool_instructions(browser))
            for tool in browser.namespace().tools:
                recipients[FUNCTION_PREFIX + tool.name] = BROWSER_RECIPIENT + tool.name
        provided: dict[str, ProviderFunction] = {}
        if tools is not None:
            for function in provider_functions(tools.providers, set(recipients)):
                spec = {
                    "name": function.name,
                    "description": function.description,
                    "parameters": function.parameters,
                }
                offered.append(_wrapped(spec, responses))
                recipients[function.name] = function.recipient
                provided[function.name] = function
            parts += tools.notes if provided else ()
        text = "\n\n".join(p for p in parts if p) or None
        return cls(offered or None, text, recipients, provided)


def function_tools(browser: BrowserSession, *, responses: bool) -> list[dict[str, Any]]:
    """The browser's functions as function tools, in the Responses API's flat shape or Chat
    Completions' nested one."""
    tools = []
    for tool in browser.namespace().tools:
        spec = {
            "name": FUNCTION_PREFIX + tool.name,
            "description": tool.description,
            "parameters": dict(tool.parameters or {"type": "object", "properties": {}}),
        }
        tools.append(_wrapped(spec, responses))
    return tools


def _wrapped(spec: dict[str, Any], responses: bool) -> dict[str, Any]:
    return {"type": "function", **spec} if responses else {"type": "function", "function": spec}


def tool_instructions(browser: BrowserSession) -> str:
    """The browser namespace's description: how cursors show and how to cite lines."""
    return browser.namespace().description or ""


def responses_items(rounds: Sequence[Round]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for i, r in enumerate(rounds):
        if r.reasoning:
            content = [{"type": "reasoning_text", "text": r.reasoning}]
            items.append({"type": "reasoning", "id": f"rs_{i}", "summary": [], "content": content})
        for call in r.calls:
            items.append(
                {
                    "type": "function_call",
                    "call_id": call.call_id,
                    "name": call.name,
                    "arguments": call.arguments_json,
                }
            )
        for call, output in zip(r.calls, r.outputs, strict=True):
            items.append(
                {"type": "function_call_output", "call_id": call.call_id, "output": output}
            )
    return items


def chat_messages(rounds: Sequence[Round], reasoning_field: str) -> list[dict[str, Any]]:
    """Chat Completions messages; reasoning goes back only in a field the server names
    (`reasoning_field` "" drops it)."""
    messages: list[dict[str, Any]] = []
    for r in rounds:
        message: dict[str, Any] = {"role": "assistant", "content": ""}
        if r.reasoning and reasoning_field:
            message[reasoning_field] = r.reasoning
        if r.calls:
            message["tool_calls"] = [
                {
                    "id": call.call_id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments_json},
                }
                for call in r.calls
            ]
        if len(message) > 2:
            messages.append(message)
        for call, output in zip(r.calls, r.outputs, strict=True):
            messages.append({"role": "tool", "tool_call_id": call.call_id, "content": output})
    return messages


def run_tools(
    run: Run,
    offer: ToolOffer,
    browser: BrowserSession | None,
    tools: ProviderTools | None,
    cancel: threading.Event,
    *,
    max_calls: int = DEFAULT_MAX_CALLS,
) -> Generator[LoopEvent, None, RunResult]:
    """Runs the turn through the model's calls; yields the runs' events, a ToolStep per call,
    and (with a browser) the answer's CitationsResolved; returns the last run's result, or a
    "cancel" one when Stop came while the user was asked or a call ran."""
    rounds: list[Round] = []
    calls = 0
    told = False  # the model was told to answer now
    while True:
        result = yield from run(rounds)
        if result.reason != "tool_call" or not result.calls:
            if result.answer and browser is not None:
                yield resolve_answer(browser, result.answer)
            return result
        done = Round(result.reasoning)
        for call in result.calls:
            calls += 1
            recipient = offer.recipients.get(call.name, call.name)
            if told:
                yield limit_step(recipient, calls, max_calls, stopped=True)
                return result
            if calls > max_calls:
                output = answer_now_text(max_calls)
                yield limit_step(recipient, calls, max_calls, stopped=False)
            elif browser is not None and recipient.startswith(BROWSER_RECIPIENT):
                shown = browser.call(recipient, call.arguments_json)
                output = shown.text
                yield describe_browser_call(browser, recipient, call.arguments, shown, calls)
            elif (function := offer.provided.get(call.name)) is not None and tools is not None:
                answer = yield from _provider_call(tools, function, call, calls, cancel)
                if answer is None:  # Stop while the user was asked: nothing ran
                    return RunResult("cancel", "", result.reasoning)
                output = answer
            else:  # a function nobody offered: the model reads why, as locally
                names = ", ".join(offer.recipients) or "none"
                problem = f"no function named {call.name!r}; the functions are {names}"
                output = json.dumps({"error": problem})
                yield other_step(recipient, problem, calls)
            done.calls.append(call)
            done.outputs.append(output)
        if cancel.is_set():  # Stop during a call: no new request (the server would stop at once)
            return RunResult("cancel", "", result.reasoning)
        told = calls > max_calls
        rounds.append(done)


def _provider_call(
    tools: ProviderTools,
    function: ProviderFunction,
    call: RemoteCall,
    number: int,
    cancel: threading.Event,
) -> Generator[LoopEvent, None, str | None]:
    """Yields the call and its step; returns the text for the model (None: Stop came first)."""
    recipient, arguments = function.recipient, call.arguments_json
    if function.code:
        arguments, problem = code_argument(call.arguments_json)
        if problem is not None:  # malformed: answered with what to fix, as locally
            yield other_step(recipient, problem, number)
            return json.dumps({"error": problem})
    provider = provider_for(tools, recipient)
    if provider is None:  # the providers changed under the offer; cannot happen in one turn
        problem = f"{recipient} is no longer offered"
        yield other_step(recipient, problem, number)
        return json.dumps({"error": problem})
    # As a local call's: the pane shows the reasoning so far and the call waiting for the user.
    channel = "analysis" if function.code else "commentary"
    yield ToolCallRequested(recipient, arguments, call.arguments, channel)
    step, answer = run_provider_call(
        provider, recipient, arguments, number, tools.approvals, tools.approve, cancel
    )
    yield step
    return answer
