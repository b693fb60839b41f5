"""Tool-call failures other gpt-oss apps shipped, as the model writes them after
`<|start|>assistant`, with the real vocabulary: each is reported as a call, routed by its
recipient whatever its channel, and agrees with openai-harmony wherever harmony accepts it.
tests/engine/chat/test_tool_call_corpus.py runs the same cases through a chat session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from engine.harmony import Channel, MessageDone, Role, Stopped, TextDelta, ToolCall
from engine.harmony.parser import HarmonyStreamParser

from .test_parser_oracle import Oracle, check_against_oracle
from .test_parser_oracle import oracle as oracle  # the fixture, shared with that module

ARGS = '{"location": "Tokyo"}'
TO = "to=functions.get_weather"


@dataclass(frozen=True)
class Case:
    name: str
    text: str  # after `<|start|>assistant`, special tokens spelled out
    recipient: str
    channel: str
    arguments: Any
    harmony: str | None = None  # the KNOWN_DIFFERENCES entry, when harmony cannot read it
    content_type: str | None = "<|constrain|>json"


CORPUS = [
    # gpt-oss-120b sends about half its calls on analysis; channel routing dropped them.
    Case(
        "function_call_on_analysis",
        f"<|channel|>analysis to=functions.get_weather <|constrain|>json<|message|>{ARGS}<|call|>",
        "functions.get_weather",
        "analysis",
        {"location": "Tokyo"},
    ),
    Case(
        "builtin_call_on_analysis",
        '<|channel|>analysis to=browser.search code<|message|>{"query": "Tokyo weather"}<|call|>',
        "browser.search",
        "analysis",
        {"query": "Tokyo weather"},
        content_type="code",
    ),
    # `commentary` is two tokens in o200k; hand-written state machines matched one.
    Case(
        "commentary_in_two_tokens",
        f"<|channel|>commentary {TO} <|constrain|>json<|message|>{ARGS}<|call|>",
        "functions.get_weather",
        "commentary",
        {"location": "Tokyo"},
    ),
    Case(
        "constrain_without_space",
        f"<|channel|>commentary to=functions.get_weather<|constrain|>json<|message|>{ARGS}<|call|>",
        "functions.get_weather",
        "commentary",
        {"location": "Tokyo"},
    ),
    Case(
        "constrain_then_space",
        f"<|channel|>commentary {TO} <|constrain|> json<|message|>{ARGS}<|call|>",
        "functions.get_weather",
        "commentary",
        {"location": "Tokyo"},
        harmony="raises",
    ),
    # The model closed the call with <|end|> instead of <|call|>.
    Case(
        "end_instead_of_call",
        f"<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{ARGS}<|end|>",
        "functions.get_weather",
        "commentary",
        {"location": "Tokyo"},
    ),
    Case(
        "invalid_json_arguments",
        '<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"location": '
        "Tokyo}<|call|>",
        "functions.get_weather",
        "commentary",
        None,
    ),
    # Harmony's renderer puts the recipient before the channel, gpt-oss usually after it.
    Case(
        "recipient_before_channel",
        f" {TO}<|channel|>commentary <|constrain|>json<|message|>{ARGS}<|call|>",
        "functions.get_weather",
        "commentary",
        {"location": "Tokyo"},
    ),
    # A final answer written in the same turn, after the call and before any result.
    Case(
        "final_answer_after_call",
        f"<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{ARGS}<|end|>"
        "<|start|>assistant<|channel|>final<|message|>It is sunny in Tokyo.<|return|>",
        "functions.get_weather",
        "commentary",
        {"location": "Tokyo"},
    ),
]


def test_commentary_is_two_tokens_in_the_real_vocabulary(oracle: Oracle) -> None:
    assert len(oracle.tok.encode_ordinary("commentary")) == 2
    assert len(oracle.tok.encode_ordinary("analysis")) == 1


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.name)
def test_each_call_is_reported_by_its_recipient(oracle: Oracle, case: Case) -> None:
    ids = oracle.tok.encode(case.text, allowed_special="all")
    parser = HarmonyStreamParser(oracle.tok)
    events = parser.feed_many(ids) + parser.finish()
    (call,) = [e for e in events if isinstance(e, ToolCall)]
    assert (call.recipient, call.channel, call.arguments, call.content_type) == (
        case.recipient,
        Channel(case.channel),
        case.arguments,
        case.content_type,
    )
    # The arguments stream as the call's text, never as reasoning or answer text.
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert "".join(d.text for d in deltas if d.recipient) == call.arguments_json_text
    assert not any("location" in d.text for d in deltas if d.recipient is None)
    first = next(e for e in events if isinstance(e, MessageDone))
    assert first.complete and first.recipient == case.recipient
    assert check_against_oracle(oracle, ids, Role.ASSISTANT).reason == case.harmony


def test_a_call_cut_off_before_its_end_token_is_not_a_call(oracle: Oracle) -> None:
    text = f"<|channel|>analysis to=functions.get_weather <|constrain|>json<|message|>{ARGS}"
    parser = HarmonyStreamParser(oracle.tok)
    events = parser.feed_many(oracle.tok.encode(text, allowed_special="all"))
    events += parser.finish("length")
    assert not any(isinstance(e, ToolCall) for e in events)
    assert [e.reason for e in events if isinstance(e, Stopped)] == ["length"]
