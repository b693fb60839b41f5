"""The tool-call failures other gpt-oss apps shipped, through a chat session on the real engine
with scripted tokens and the real vocabulary: each call ends the turn as a call (whatever its
channel or end token), is never shown as reasoning or answer text, and its result (or, for a
call that cannot run, the error) goes back to the model, which then answers."""

from __future__ import annotations

import json

import pytest

from engine import (
    ChannelDelta,
    ChatSession,
    HarmonyTokenizer,
    LoadedModel,
    SystemContent,
    ToolCallRequested,
    ToolDescription,
)
from engine.chat.prompt import build_prompt
from engine.harmony import ToolNamespace, python_namespace
from engine.testing.scripted import ScriptedSampler
from engine.tokenizer import SpecialToken
from tests.engine.harmony.test_tool_call_corpus import CORPUS, Case

from .test_session import finish, reply

WEATHER = ToolDescription(
    "get_weather",
    "Gets the current weather in the provided location.",
    {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
)
# Built-in namespaces, declared briefly so the prompt stays short.
SEARCH = ToolDescription("search", "Searches the web.", {"type": "object", "properties": {}})
SYSTEM = SystemContent().with_tools(
    ToolNamespace("browser", None, (SEARCH,)), python_namespace("Runs Python code.")
)
RESULT = '{"temperature": 20, "description": "sunny"}'
QUESTION = "What is the weather in Tokyo?"


def session_for(
    model: LoadedModel, tok: HarmonyTokenizer, text: str
) -> tuple[ChatSession, ScriptedSampler, list[int]]:
    script = tok.encode(text, allowed_special="all")
    sampler = ScriptedSampler(script)
    session = ChatSession(model, tok, system=SYSTEM, tools=[WEATHER], sampler=sampler)
    return session, sampler, script


def call_turn(
    session: ChatSession, sampler: ScriptedSampler
) -> tuple[ToolCallRequested, list[ChannelDelta]]:
    events, done = finish(session.send(QUESTION))
    assert done.reason == "tool_call" and done.answer == ""
    (call,) = [e for e in events if isinstance(e, ToolCallRequested)]
    assert session.pending_tool_call == call
    sampler.discard_remaining()  # whatever the model wrote after its call is never sampled
    return call, [e for e in events if isinstance(e, ChannelDelta)]


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.name)
def test_each_call_reaches_the_chat_and_its_result_continues_the_turn(
    model: LoadedModel, real_tok: HarmonyTokenizer, case: Case
) -> None:
    session, sampler, script = session_for(model, real_tok, case.text)
    call, deltas = call_turn(session, sampler)
    assert (call.recipient, call.channel, call.arguments) == (
        case.recipient,
        case.channel,
        case.arguments,
    )
    assert not any("Tokyo" in d.text for d in deltas if d.recipient is None)
    # The turn ends at the token that closed the call, <|call|> or <|end|>.
    stop = next(i for i, t in enumerate(script) if t in (SpecialToken.CALL, SpecialToken.END))
    assert sampler.calls == stop + 1
    if case.arguments is None:
        assert call.problem is not None and "not valid JSON" in call.problem
    else:
        assert call.problem is None
    sampler.extend(reply(real_tok, "It is sunny in Tokyo.", analysis="The tool answered."))
    result = call.error_result() or RESULT
    _, done = finish(session.submit_tool_result(call, result))
    assert done.reason == "stop" and done.answer == "It is sunny in Tokyo."
    rendered = real_tok.decode(build_prompt(real_tok, session.conversation()).ids)
    assert f"<|start|>{case.recipient} to=assistant<|channel|>commentary<|message|>" in rendered
    assert json.loads(result) == (
        {"error": call.problem} if call.problem else {"temperature": 20, "description": "sunny"}
    )


def _call_text(recipient: str, body: str, channel: str = "commentary") -> str:
    return f"<|channel|>{channel} to={recipient} <|constrain|>json<|message|>{body}<|call|>"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (_call_text("functions.get_wether", "{}"), "`functions.get_wether` is not a call to one"),
        (_call_text("all", "{}"), "`all` is not a call to one of this chat's tools"),
        (_call_text("", "{}"), "an empty recipient (`to=`)"),
        (_call_text("functions.get_weather", '["Tokyo"]'), "are a JSON array, not an object"),
    ],
)
def test_a_call_that_cannot_run_carries_a_problem_for_the_model(
    model: LoadedModel, real_tok: HarmonyTokenizer, text: str, problem: str
) -> None:
    session, sampler, _ = session_for(model, real_tok, text)
    call, _ = call_turn(session, sampler)
    assert call.problem is not None and problem in call.problem
    assert "functions.get_weather" in call.problem or "JSON" in call.problem
    assert json.loads(call.error_result() or "") == {"error": call.problem}


def test_python_code_is_not_checked_as_json(model: LoadedModel, real_tok: HarmonyTokenizer) -> None:
    text = "<|channel|>analysis to=python code<|message|>print(2 + 2)<|call|>"
    session, sampler, _ = session_for(model, real_tok, text)
    call, _ = call_turn(session, sampler)
    assert (call.recipient, call.arguments_json, call.problem) == ("python", "print(2 + 2)", None)
    assert call.content_type == "code" and call.channel == "analysis"
