"""ChatSession on the real engine (tiny synthetic model, real vocabulary size), with the model's
tokens scripted: cache reuse across turns, regenerate/edit/reset, restoring saved history,
cancelling, limits, and the checks made before a turn starts."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import pytest

from engine import (
    GREEDY,
    ChannelDelta,
    ChatEvent,
    ChatSession,
    ContextOverflowError,
    Conversation,
    DeveloperContent,
    HarmonyTokenizer,
    LoadedModel,
    Message,
    PrefillProgress,
    ReasoningBudget,
    ReasoningEffort,
    Role,
    SystemContent,
    TurnFinished,
)
from engine.harmony import (
    drop_earlier_turns_analysis,
    render_conversation,
    render_for_completion,
)
from engine.testing.scripted import ScriptedSampler, cancel_at, reply_ids

from .fixtures import fresh_logprobs, scratch_logprobs

ATOL = 1e-4  # float32, cached chunks vs one pass: measured differences are ~1e-6


def reply(
    tok: HarmonyTokenizer, final: str | None = None, *, analysis: str | None = None
) -> list[int]:
    messages = []
    if analysis is not None:
        messages.append(Message.assistant(analysis, channel="analysis"))
    if final is not None:
        messages.append(Message.assistant(final))
    return reply_ids(tok, messages)


def make_session(
    model: LoadedModel, tok: HarmonyTokenizer, script: Iterable[int] = (), **options: object
) -> tuple[ChatSession, ScriptedSampler]:
    sampler = ScriptedSampler(script, record=True)
    return ChatSession(model, tok, sampler=sampler, **options), sampler  # type: ignore[arg-type]


def finish(events: Iterator[ChatEvent]) -> tuple[list[ChatEvent], TurnFinished]:
    got = list(events)
    last = got[-1]
    assert isinstance(last, TurnFinished)
    assert sum(isinstance(e, TurnFinished) for e in got) == 1
    return got, last


def text(events: Sequence[ChatEvent], channel: str) -> str:
    return "".join(e.text for e in events if isinstance(e, ChannelDelta) and e.channel == channel)


def expected_prompt(tok: HarmonyTokenizer, *messages: Message, effort: str = "medium") -> list[int]:
    system = Message.system(SystemContent(reasoning_effort=ReasoningEffort(effort)))
    conversation = drop_earlier_turns_analysis(Conversation((system, *messages)))
    return render_for_completion(conversation, auto_drop_analysis=False).token_ids(tok)


def rendered(tok: HarmonyTokenizer, *messages: Message) -> list[int]:
    """The conversation (default system message first) without the completion opening."""
    return render_conversation(Conversation((Message.system(), *messages))).token_ids(tok)


def test_first_turn_streams_analysis_then_answer(model: LoadedModel, tok: HarmonyTokenizer) -> None:
    script = reply(tok, "Hello there.", analysis="The user asks.")
    session, _ = make_session(model, tok, script)
    events, done = finish(session.send("Hi"))
    prompt = expected_prompt(tok, Message.user("Hi"))
    assert text(events, "analysis") == "The user asks."
    assert text(events, "final") == done.answer == "Hello there."
    assert done.reason == "stop"
    s = done.stats
    assert (s.prompt_tokens, s.reused_tokens, s.prefill_tokens) == (len(prompt), 0, len(prompt))
    assert s.generated_tokens == len(script) == s.reasoning_tokens + s.answer_tokens
    assert isinstance(events[0], PrefillProgress) and events[0].total == len(prompt)
    # the cache holds the prompt and every sampled token but the unfed <|return|>
    assert list(session.cached_tokens) == prompt + script[:-1]
    assert [(m.role, m.channel, m.text) for m in session.messages] == [
        (Role.USER, None, "Hi"),
        (Role.ASSISTANT, "analysis", "The user asks."),
        (Role.ASSISTANT, "final", "Hello there."),
    ]


def test_next_turn_prefills_only_new_tokens_and_matches_a_fresh_forward(
    model: LoadedModel, tok: HarmonyTokenizer
) -> None:
    first = reply(tok, "Hello there.", analysis="The user asks.")
    session, sampler = make_session(model, tok, first + reply(tok, "Four.", analysis="Add."))
    finish(session.send("Hi"))
    prompt1 = expected_prompt(tok, Message.user("Hi"))
    _, done = finish(session.send("What is 2 + 2?"))
    prompt2 = expected_prompt(
        tok,
        Message.user("Hi"),
        Message.assistant("The user asks.", channel="analysis"),
        Message.assistant("Hello there."),
        Message.user("What is 2 + 2?"),
    )
    assert "The user asks." not in tok.decode(prompt2)  # earlier turns' analysis is dropped
    # The analysis is gone, so the cache goes back to the end of the first prompt and
    # prefills the re-rendered answer (ending <|end|>, not <|return|>) and the new message.
    assert done.stats.reused_tokens == len(prompt1)
    assert done.stats.prefill_tokens == len(prompt2) - len(prompt1)
    assert list(session.cached_tokens[: len(prompt2)]) == prompt2
    np.testing.assert_allclose(
        sampler.seen[len(first)], scratch_logprobs(model, prompt2), atol=ATOL
    )


def test_a_reply_without_analysis_is_reused_whole(
    model: LoadedModel, tok: HarmonyTokenizer
) -> None:
    first = reply(tok, "Hello there.")
    session, sampler = make_session(model, tok, first + reply(tok, "Four."))
    finish(session.send("Hi"))
    held = len(session.cached_tokens)
    _, done = finish(session.send("What is 2 + 2?"))
    prompt2 = expected_prompt(
        tok, Message.user("Hi"), Message.assistant("Hello there."), Message.user("What is 2 + 2?")
    )
    assert done.stats.reused_tokens == held
    assert done.stats.prefill_tokens == len(prompt2) - held  # <|end|>, the user message, opening
    np.testing.assert_allclose(sampler.seen[len(first)], fresh_logprobs(model, prompt2), atol=ATOL)


def test_regenerate_reuses_all_but_one_prompt_token(
    model: LoadedModel, tok: HarmonyTokenizer
) -> None:
    first = reply(tok, "Hello there.", analysis="The user asks.")
    session, sampler = make_session(model, tok, first + reply(tok, "Hi!"))
    _, done1 = finish(session.send("Hi"))
    _, done2 = finish(session.regenerate())
    assert done2.stats.reused_tokens == done1.stats.prompt_tokens - 1
    assert done2.stats.prefill_tokens == 1
    np.testing.assert_allclose(sampler.seen[len(first)], sampler.seen[0], atol=ATOL)
    assert [m.text for m in session.messages] == ["Hi", "Hi!"]


def test_editing_the_last_user_message_rewinds_to_its_start(
    model: LoadedModel, tok: HarmonyTokenizer
) -> None:
    script = reply(tok, "One.") + reply(tok, "Two.") + reply(tok, "Three.")
    session, sampler = make_session(model, tok, script)
    finish(session.send("Hi"))
    finish(session.send("What is 2 + 2?"))
    first_sample = sampler.calls
    _, done = finish(session.edit_last_user_message("What is 9 / 2?"))
    # the cache returns to its snapshot at the start of the edited message
    start = len(rendered(tok, Message.user("Hi"), Message.assistant("One.")))
    prompt = expected_prompt(
        tok, Message.user("Hi"), Message.assistant("One."), Message.user("What is 9 / 2?")
    )
    assert done.stats.reused_tokens == start
    assert done.stats.prefill_tokens == len(prompt) - start
    assert [m.text for m in session.messages] == ["Hi", "One.", "What is 9 / 2?", "Three."]
    np.testing.assert_allclose(sampler.seen[first_sample], fresh_logprobs(model, prompt), atol=ATOL)


def test_new_effort_changes_the_system_prompt_and_rebuilds(
    model: LoadedModel, tok: HarmonyTokenizer
) -> None:
    session, sampler = make_session(model, tok, reply(tok, "One.") + reply(tok, "Two."))
    finish(session.send("Hi"))
    session.set_effort("high")
    first_sample = sampler.calls
    _, done = finish(session.send("Again"))
    prompt = expected_prompt(
        tok, Message.user("Hi"), Message.assistant("One."), Message.user("Again"), effort="high"
    )
    assert "Reasoning: high" in tok.decode(prompt)
    assert done.stats.reused_tokens == 0 and done.stats.prefill_tokens == len(prompt)
    np.testing.assert_allclose(sampler.seen[first_sample], fresh_logprobs(model, prompt), atol=ATOL)


def test_reset_forgets_the_conversation_but_keeps_the_system_prompt_cached(
    model: LoadedModel, tok: HarmonyTokenizer
) -> None:
    session, sampler = make_session(model, tok, reply(tok, "One.") + reply(tok, "Two."))
    finish(session.send("Hi"))
    session.reset()
    assert session.messages == ()
    first_sample = sampler.calls
    _, done = finish(session.send("Hello"))
    assert done.stats.reused_tokens == len(rendered(tok))  # the system message
    prompt = expected_prompt(tok, Message.user("Hello"))
    np.testing.assert_allclose(sampler.seen[first_sample], fresh_logprobs(model, prompt), atol=ATOL)


def test_new_instructions_reread_only_the_developer_message_onwards(
    model: LoadedModel, tok: HarmonyTokenizer
) -> None:
    """The system message stays cached (a snapshot at its end: the tiny model's sliding layers
    have long since wrapped, so the cache cannot simply be trimmed back)."""
    script = reply(tok, "One.") + reply(tok, "Two.")
    session, sampler = make_session(model, tok, script, instructions="Answer briefly.")
    finish(session.send("Hi " * 40))
    session.set_instructions("Answer in French.")
    first_sample = sampler.calls
    _, done = finish(session.send("Again"))
    assert done.stats.reused_tokens == len(rendered(tok))  # the system message
    developer = Message.developer(DeveloperContent("Answer in French."))
    prompt = expected_prompt(
        tok, developer, Message.user("Hi " * 40), Message.assistant("One."), Message.user("Again")
    )
    np.testing.assert_allclose(sampler.seen[first_sample], fresh_logprobs(model, prompt), atol=ATOL)


def test_saved_history_restores_the_same_prompt(model: LoadedModel, tok: HarmonyTokenizer) -> None:
    first = reply(tok, "Hello there.", analysis="The user asks.")
    session, _ = make_session(model, tok, first)
    finish(session.send("Hi"))
    sampler = ScriptedSampler(reply(tok, "Four."))
    restored = ChatSession.from_messages(model, tok, session.messages, sampler=sampler)
    assert restored.messages == session.messages
    assert restored.prompt_ids() == session.prompt_ids()
    _, done = finish(restored.send("What is 2 + 2?"))
    assert done.stats.reused_tokens == 0 and done.answer == "Four."
    with pytest.raises(ValueError, match="session options"):
        ChatSession(model, tok, messages=[Message.system()])


def test_cancel_between_tokens_keeps_the_cache_consistent(
    model: LoadedModel, tok: HarmonyTokenizer
) -> None:
    cancel = threading.Event()
    first = reply(tok, "Hello there.", analysis="The user asks what the weather is like.")
    second = reply(tok, "Four.")
    # the 9th sample is queued right after the 8th token is fed: cancel lands there, and that
    # sample is never used
    sampler = ScriptedSampler(first[:9] + second, record=True, on_sample=cancel_at(8, cancel))
    session = ChatSession(model, tok, sampler=sampler)
    events, done = finish(session.send("Hi", cancel))
    prompt = expected_prompt(tok, Message.user("Hi"))
    assert done.reason == "cancel" and done.stats.generated_tokens == 8
    assert list(session.cached_tokens) == prompt + first[:8]
    partial = session.messages[-1]
    assert partial.channel == "analysis" and "The user asks what the weather is like.".startswith(
        partial.text
    )
    assert text(events, "analysis") == partial.text and done.answer == ""
    # the next turn starts from a consistent cache
    _, done = finish(session.send("What is 2 + 2?"))
    assert done.answer == "Four."
    np.testing.assert_allclose(
        sampler.seen[-len(second)],
        fresh_logprobs(model, list(session.cached_tokens[: done.stats.prompt_tokens])),
        atol=ATOL,
    )


def test_cancel_during_prefill_stops_at_a_chunk_boundary(
    model: LoadedModel, tok: HarmonyTokenizer
) -> None:
    cancel = threading.Event()
    session, _ = make_session(model, tok, reply(tok, "One."), prefill_step=16)
    events: list[ChatEvent] = []
    for event in session.send("Hi", cancel):
        events.append(event)
        cancel.set()  # after the first chunk's progress
    done = events[-1]
    assert isinstance(done, TurnFinished) and done.reason == "cancel"
    assert next(e for e in events if isinstance(e, PrefillProgress)).done == 16
    assert len(session.cached_tokens) == 16 and done.stats.generated_tokens == 0
    assert list(session.cached_tokens) == expected_prompt(tok, Message.user("Hi"))[:16]


def test_answer_limit_ends_the_turn_with_length(model: LoadedModel, tok: HarmonyTokenizer) -> None:
    script = reply(tok, "What is the capital of the largest country in the world?")
    session, _ = make_session(model, tok, script, max_answer_tokens=3)
    _, done = finish(session.send("Hi"))
    header = reply(tok, "")[:-1]  # <|channel|>final<|message|>
    assert done.reason == "length" and done.stats.answer_tokens == 3
    assert done.answer == tok.decode(script[len(header) : len(header) + 3])
    assert session.messages[-1].text == done.answer


def test_a_prompt_past_the_context_is_refused_before_starting(
    model: LoadedModel, tok: HarmonyTokenizer
) -> None:
    session, _ = make_session(model, tok)
    with pytest.raises(ContextOverflowError, match="context holds"):
        session.send("x " * model.max_context)
    assert session.messages == ()


def test_one_turn_at_a_time_and_closing_early_is_safe(
    model: LoadedModel, tok: HarmonyTokenizer
) -> None:
    session, _ = make_session(model, tok, reply(tok, "Two."))
    turn = session.send("Hi")
    assert isinstance(next(turn), PrefillProgress)  # nothing sampled yet
    with pytest.raises(RuntimeError, match="still running"):
        session.send("Again")
    turn.close()
    _, done = finish(session.send("Again"))
    assert done.answer == "Two."
    assert [m.role for m in session.messages] == [Role.USER, Role.USER, Role.ASSISTANT]


def test_real_sampling_runs_to_a_limit(model: LoadedModel, tok: HarmonyTokenizer) -> None:
    # Random weights write no harmony: the stream ends by budget cut, stop or limit, always
    # with one TurnFinished, and every event holds plain values only.
    budget = ReasoningBudget(low=6, medium=6, high=6)
    session = ChatSession(model, tok, sampling=GREEDY, budget=budget, max_answer_tokens=4)
    events, done = finish(session.send("Hi"))
    assert done.stats.generated_tokens <= 10
    for event in events:
        for field in dataclasses.fields(event):
            value = getattr(event, field.name)
            assert isinstance(value, str | int | float | type(None)) or dataclasses.is_dataclass(
                value
            )
