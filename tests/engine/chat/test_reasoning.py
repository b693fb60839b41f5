"""The session's fallbacks on the real engine with scripted tokens: the reasoning budget, the loop
guard, a model that stops without answering, and output that is not harmony at all."""

from __future__ import annotations

from engine import (
    ChatSession,
    HarmonyTokenizer,
    LoadedModel,
    Message,
    ReasoningBudget,
    ReasoningCut,
    Role,
)
from engine.chat import LoopGuard
from engine.chat.prompt import build_prompt
from engine.harmony import Rendering
from engine.testing.scripted import ScriptedSampler
from engine.tokenizer import SpecialToken

from .test_session import expected_prompt, finish, reply, text

S = SpecialToken
THINKING = "Let me think about this step by step before I give the final answer."


def pieces(tok: HarmonyTokenizer, *parts: str | SpecialToken) -> list[int]:
    return Rendering(tuple(parts)).token_ids(tok)


def analysis_header(tok: HarmonyTokenizer) -> list[int]:
    return pieces(tok, S.CHANNEL, "analysis", S.MESSAGE)


def final_header(tok: HarmonyTokenizer, *, close: bool) -> list[int]:
    opening = pieces(tok, S.START, "assistant", S.CHANNEL, "final", S.MESSAGE)
    return [S.END, *opening] if close else opening


def session_with(
    model: LoadedModel, tok: HarmonyTokenizer, script: list[int], **options: object
) -> ChatSession:
    return ChatSession(model, tok, sampler=ScriptedSampler(script), **options)  # type: ignore[arg-type]


def test_budget_cut_closes_the_analysis_and_the_model_answers(
    model: LoadedModel, tok: HarmonyTokenizer
) -> None:
    header, thinking = analysis_header(tok), tok.encode_ordinary(THINKING)
    budget = ReasoningBudget(low=len(header) + 5)  # the 5th analysis token reaches it
    answer = [*tok.encode_ordinary("Four."), S.RETURN]
    session = session_with(model, tok, header + thinking[:5] + answer, budget=budget, effort="low")
    events, done = finish(session.send("What is 2 + 2?"))
    cuts = [e for e in events if isinstance(e, ReasoningCut)]
    assert cuts == [ReasoningCut("budget", len(header) + 5)]
    assert text(events, "analysis") == tok.decode(thinking[:5])
    assert done.reason == "stop" and done.answer == "Four."
    assert done.stats.injected_tokens == len(final_header(tok, close=True))
    # the cache holds what the model wrote, then the header the session wrote for it
    prompt = expected_prompt(tok, Message.user("What is 2 + 2?"), effort="low")
    generated = header + thinking[:5] + final_header(tok, close=True) + answer[:-1]
    assert list(session.cached_tokens) == prompt + generated
    assert [(m.channel, m.text) for m in session.messages[1:]] == [
        ("analysis", tok.decode(thinking[:5])),
        ("final", "Four."),
    ]


def test_the_budget_follows_the_effort(model: LoadedModel, tok: HarmonyTokenizer) -> None:
    header, thinking = analysis_header(tok), tok.encode_ordinary(THINKING)
    budget = ReasoningBudget(low=len(header) + 3, medium=1000)
    script = reply(tok, "Four.", analysis=THINKING)
    session = session_with(model, tok, script, budget=budget, effort="medium")
    events, _ = finish(session.send("What is 2 + 2?"))
    assert not [e for e in events if isinstance(e, ReasoningCut)]
    assert text(events, "analysis") == THINKING and len(thinking) > 3


def test_a_looping_analysis_is_cut(model: LoadedModel, tok: HarmonyTokenizer) -> None:
    header = analysis_header(tok)
    loop = tok.encode_ordinary(" the answer is four, so") * 10
    guard_settings = ReasoningBudget(loop_ngram=6, loop_repeats=3, loop_window=64)
    guard = LoopGuard.from_budget(guard_settings)
    n = next(i for i, t in enumerate(loop, start=1) if guard.add(t))  # where it fires
    answer = [*tok.encode_ordinary("Four."), S.RETURN]
    session = session_with(model, tok, header + loop[:n] + answer, budget=guard_settings)
    events, done = finish(session.send("What is 2 + 2?"))
    cuts = [e for e in events if isinstance(e, ReasoningCut)]
    assert [c.reason for c in cuts] == ["loop"]
    assert text(events, "analysis") == tok.decode(loop[:n])
    assert done.answer == "Four." and n < len(loop)


def test_stopping_without_an_answer_makes_the_model_answer(
    model: LoadedModel, tok: HarmonyTokenizer
) -> None:
    header, thinking = analysis_header(tok), tok.encode_ordinary(THINKING)
    answer = [*tok.encode_ordinary("Four."), S.RETURN]
    # <|return|> right after the analysis: dropped, and the final channel opened instead
    session = session_with(model, tok, header + thinking + [S.RETURN] + answer)
    events, done = finish(session.send("What is 2 + 2?"))
    assert [e for e in events if isinstance(e, ReasoningCut)] == [
        ReasoningCut("no_answer", len(header) + len(thinking) + 1)
    ]
    assert done.reason == "stop" and done.answer == "Four."
    assert S.RETURN not in session.cached_tokens
    assert [m.channel for m in session.messages[1:]] == ["analysis", "final"]


def test_a_second_stop_without_answer_ends_the_turn(
    model: LoadedModel, tok: HarmonyTokenizer
) -> None:
    script = reply(tok, None, analysis=THINKING)  # analysis ending in <|return|>
    session = session_with(model, tok, [*script, S.RETURN])
    events, done = finish(session.send("What is 2 + 2?"))
    assert len([e for e in events if isinstance(e, ReasoningCut)]) == 1
    assert done.reason == "stop" and done.answer == "" and done.stats.answer_tokens == 1


def test_text_without_any_header_is_reasoning_and_an_answer_follows(
    model: LoadedModel, tok: HarmonyTokenizer
) -> None:
    rambling = tok.encode_ordinary(" just some text with no channel")
    answer = [*tok.encode_ordinary("Four."), S.RETURN]
    session = session_with(model, tok, [*rambling, S.RETURN, *answer])
    events, done = finish(session.send("What is 2 + 2?"))
    assert text(events, "analysis").strip() == "just some text with no channel"
    assert text(events, "final") == done.answer == "Four."
    assert [(m.role, m.channel) for m in session.messages[1:]] == [
        (Role.ASSISTANT, "analysis"),
        (Role.ASSISTANT, "final"),
    ]
    # next turn, the unlabelled text is dropped like any earlier analysis
    next_turn = session.conversation().appended(Message.user("Thanks"))
    next_prompt = tok.decode(build_prompt(tok, next_turn).ids)
    assert "no channel" not in next_prompt and "Four." in next_prompt


def test_the_turn_ends_where_the_model_starts_writing_as_the_user(
    model: LoadedModel, tok: HarmonyTokenizer
) -> None:
    answer = [*reply(tok, "Four.")[:-1], S.END]  # <|end|>, not <|return|>: the model goes on
    impostor = pieces(tok, S.START, "user", S.MESSAGE, "Thanks!", S.END)
    session = session_with(model, tok, answer + impostor)
    events, done = finish(session.send("What is 2 + 2?"))
    assert done.reason == "stop" and done.answer == "Four."
    assert "Thanks!" not in text(events, "analysis") + text(events, "final")
    assert [m.role for m in session.messages] == [Role.USER, Role.ASSISTANT]
