"""Function calling through the session: the developer message defines the tools, the model's call
ends the turn, and the caller's result continues it on the cache it left."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine import (
    ChannelDelta,
    ChatSession,
    HarmonyTokenizer,
    LoadedModel,
    ToolCallRequested,
    ToolDescription,
)
from engine.chat.prompt import build_prompt
from engine.testing.scripted import ScriptedSampler

from .fixtures import fresh_logprobs
from .test_reasoning import S, analysis_header, pieces
from .test_session import ATOL, finish, reply, text

WEATHER = ToolDescription(
    "get_current_weather",
    "Gets the current weather in the provided location.",
    {
        "type": "object",
        "properties": {"location": {"type": "string", "description": "The city"}},
        "required": ["location"],
    },
)
ARGS = '{"location": "San Francisco"}'
RESULT = '{"temperature": 20, "description": "sunny"}'


def call_ids(tok: HarmonyTokenizer) -> list[int]:
    """A call as gpt-oss writes it: the recipient after the channel (harmony's renderer puts
    it before), so the history re-renders differently from what the cache holds."""
    return pieces(
        tok,
        S.START,
        "assistant",
        S.CHANNEL,
        "commentary to=functions.get_current_weather ",
        S.CONSTRAIN,
        "json",
        S.MESSAGE,
        ARGS,
        S.CALL,
    )


def test_a_tool_call_ends_the_turn_and_its_result_continues_it(
    model: LoadedModel, tok: HarmonyTokenizer
) -> None:
    thinking = pieces(tok, "The user asks what the weather is like.", S.END)
    first = analysis_header(tok) + thinking + call_ids(tok)
    second = reply(tok, "It is sunny, 20 degrees.", analysis="The result is sunny.")
    sampler = ScriptedSampler(first + second, record=True)
    session = ChatSession(
        model, tok, instructions="Answer briefly.", tools=[WEATHER], sampler=sampler
    )
    prompt = session.prompt_ids()  # before the user message: the system and developer part
    assert "namespace functions" in tok.decode(prompt) and "get_current_weather" in tok.decode(
        prompt
    )

    events, done = finish(session.send("What is the weather in San Francisco?"))
    calls = [e for e in events if isinstance(e, ToolCallRequested)]
    assert done.reason == "tool_call" and done.answer == ""
    assert calls == [ToolCallRequested("functions.get_current_weather", ARGS)]
    call = calls[0]
    assert call.name == "get_current_weather" and call.arguments == {"location": "San Francisco"}
    assert session.pending_tool_call == call
    deltas = [e for e in events if isinstance(e, ChannelDelta) and e.recipient is not None]
    assert "".join(d.text for d in deltas) == ARGS
    last = session.messages[-1]
    assert (last.recipient, last.channel, last.content_type) == (
        "functions.get_current_weather",
        "commentary",
        "<|constrain|>json",
    )

    with pytest.raises(ValueError, match="not the tool call"):
        session.submit_tool_result(ToolCallRequested("functions.other", "{}"), RESULT)
    held = len(session.cached_tokens)
    events, done = finish(session.submit_tool_result(call, RESULT))
    assert done.reason == "stop" and done.answer == "It is sunny, 20 degrees."
    assert text(events, "analysis") == "The result is sunny."
    # The cache goes back only to the end of the analysis message (a snapshot at its <|end|>):
    # the call re-renders with the recipient first, then come the result and the opening.
    stats = done.stats
    prompt_before_call = stats.prompt_tokens - stats.prefill_tokens
    assert stats.reused_tokens == prompt_before_call == held - (len(call_ids(tok)) - 1)
    assert session.pending_tool_call is None
    assert [(m.role.value, m.channel) for m in session.messages] == [
        ("user", None),
        ("assistant", "analysis"),
        ("assistant", "commentary"),
        ("tool", "commentary"),
        ("assistant", "analysis"),
        ("assistant", "final"),
    ]
    # within the turn the first analysis is kept; the result reads as the tool's message
    prompt = build_prompt(tok, session.conversation()).ids
    rendered = tok.decode(prompt)
    assert "The user asks what the weather is like." in rendered
    assert "<|start|>functions.get_current_weather to=assistant<|channel|>commentary" in rendered
    assert json.loads(RESULT)["description"] in rendered
    np.testing.assert_allclose(
        sampler.seen[len(first)],
        fresh_logprobs(model, list(session.cached_tokens[: stats.prompt_tokens])),
        atol=ATOL,
    )
