"""Finish Now and the answer cap on the real engine (tiny synthetic model, scripted tokens): the
user's `finish` event closes the analysis through the session's own cut, so the model answers
at once, also after a tool result and inside the browser tool loop."""

from __future__ import annotations

import threading

import pytest

from engine import ChatSession, HarmonyTokenizer, LoadedModel, ReasoningCut, ToolCallRequested
from engine.chat import ToolLoop, ToolStep, TurnFinished
from engine.chat.events import ChannelDelta
from engine.library import Library
from engine.testing.scripted import ScriptedSampler, cancel_at

from .test_reasoning import THINKING, S, analysis_header, final_header, session_with
from .test_session import finish, text
from .test_tool_loop import browser_call, browsing, indexed, library
from .test_tools import RESULT, WEATHER, call_ids

__all__ = ["indexed", "library"]  # fixtures the browser test borrows

ANSWER = "Four."


def test_finish_during_the_analysis_cuts_it_and_the_model_answers(
    model: LoadedModel, tok: HarmonyTokenizer
) -> None:
    header, thinking = analysis_header(tok), tok.encode_ordinary(THINKING)
    answer = [*tok.encode_ordinary(ANSWER), S.RETURN]
    n = len(header) + 5  # the user presses the button while sample n is being taken
    flag = threading.Event()
    sampler = ScriptedSampler(header + thinking[:6] + answer, on_sample=cancel_at(n, flag))
    session = ChatSession(model, tok, sampler=sampler)  # the default budget is far away
    events, done = finish(session.send("What is 2 + 2?", finish=flag))
    cuts = [e for e in events if isinstance(e, ReasoningCut)]
    assert cuts == [ReasoningCut("user", n + 1)]
    # the cut comes after the last analysis text and before any answer text
    at = events.index(cuts[0])
    assert not [e for e in events[:at] if isinstance(e, ChannelDelta) and e.channel == "final"]
    assert text(events[at:], "analysis") == ""
    assert text(events, "analysis") == tok.decode(thinking[:6])
    assert done.reason == "stop" and done.answer == ANSWER
    assert done.stats.injected_tokens == len(final_header(tok, close=True))
    assert sampler.remaining == 0
    assert [(m.channel, m.text) for m in session.messages[1:]] == [
        ("analysis", tok.decode(thinking[:6])),
        ("final", ANSWER),
    ]


def test_finish_does_not_touch_an_answer_or_a_turn_without_analysis(
    model: LoadedModel, tok: HarmonyTokenizer
) -> None:
    flag = threading.Event()
    flag.set()  # pressed before the model wrote anything
    answer = [*tok.encode_ordinary(ANSWER), S.RETURN]
    opening = final_header(tok, close=False)[2:]  # <|channel|>final<|message|>
    session = session_with(model, tok, opening + answer)
    events, done = finish(session.send("What is 2 + 2?", finish=flag))
    assert not [e for e in events if isinstance(e, ReasoningCut)]
    assert done.reason == "stop" and done.answer == ANSWER


def test_finish_reaches_the_run_after_a_tool_result(
    model: LoadedModel, tok: HarmonyTokenizer
) -> None:
    header, thinking = analysis_header(tok), tok.encode_ordinary(THINKING)
    answer = [*tok.encode_ordinary(ANSWER), S.RETURN]
    sampler = ScriptedSampler(call_ids(tok)[2:] + header + thinking[:1] + answer)
    session = ChatSession(model, tok, tools=[WEATHER], sampler=sampler)
    _, done = finish(session.send("Weather?"))
    call = session.pending_tool_call
    assert done.reason == "tool_call" and isinstance(call, ToolCallRequested)
    flag = threading.Event()
    flag.set()
    events, done = finish(session.submit_tool_result(call, RESULT, finish=flag))
    assert [e for e in events if isinstance(e, ReasoningCut)] == [
        ReasoningCut("user", len(header) + 1)
    ]
    assert done.answer == ANSWER


def test_finish_inside_the_browser_loop_stops_the_research(
    model: LoadedModel, real_tok: HarmonyTokenizer, library: Library
) -> None:
    search = browser_call("search", '{"query": "Halvorsen"}')
    more = "<|channel|>analysis<|message|>I"  # the model starts to reason about a second search
    loop, sampler = browsing(model, real_tok, library, [search, more, "Found it.<|return|>"])
    assert isinstance(loop, ToolLoop)
    flag = threading.Event()
    events = []
    for event in loop.send("When?", finish=flag):
        events.append(event)
        if isinstance(event, ToolStep):
            flag.set()  # the user pressed Finish now while the search ran
    done = events[-1]
    assert isinstance(done, TurnFinished) and done.answer == "Found it."
    assert [e.reason for e in events if isinstance(e, ReasoningCut)] == ["user"]
    assert sampler.remaining == 0


def test_a_small_answer_cap_ends_the_turn_with_length(
    model: LoadedModel, tok: HarmonyTokenizer
) -> None:
    long_answer = " ".join(["word"] * 40)
    opening = final_header(tok, close=False)[2:]
    script = opening + tok.encode_ordinary(long_answer) + [S.RETURN]
    session = session_with(model, tok, script)
    assert session.max_answer_tokens > 40
    session.set_max_answer_tokens(5)
    _, done = finish(session.send("Talk."))
    assert done.reason == "length"
    assert done.stats.answer_tokens == 5
    assert done.answer == tok.decode(tok.encode_ordinary(long_answer)[:5])
    with pytest.raises(ValueError, match="positive"):
        session.set_max_answer_tokens(0)


def test_no_answer_cap_goes_back_to_the_session_s_own(
    model: LoadedModel, tok: HarmonyTokenizer
) -> None:
    session = session_with(model, tok, [], max_answer_tokens=7)
    session.set_max_answer_tokens(100)
    assert session.max_answer_tokens == 100
    session.set_max_answer_tokens(None)
    assert session.max_answer_tokens == 7
