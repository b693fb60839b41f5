"""A chat turn's prefill reports progress with enough for an ETA, and Stop lands within 64
tokens of work however large the prefill chunk (MLX cannot interrupt an evaluation)."""

from __future__ import annotations

import itertools
import threading

from engine import ChatEvent, HarmonyTokenizer, LoadedModel, PrefillProgress, TurnFinished

from .test_session import make_session, reply

LONG = "word " * 600  # well over 512 tokens with the synthetic tokenizer


def test_stop_after_the_first_progress_lands_within_64_tokens(
    model: LoadedModel, tok: HarmonyTokenizer
) -> None:
    cancel = threading.Event()
    session, _ = make_session(model, tok, reply(tok, "One."), prefill_step=512)
    events: list[ChatEvent] = []
    for event in session.send(LONG, cancel):
        events.append(event)
        cancel.set()
    first = events[0]
    done = events[-1]
    assert isinstance(first, PrefillProgress) and first.total > 512 and first.done <= 64
    assert isinstance(done, TurnFinished) and done.reason == "cancel"
    assert len(session.cached_tokens) - first.done <= 64


def test_progress_counts_up_to_the_total_with_elapsed_time_and_an_eta(
    model: LoadedModel, tok: HarmonyTokenizer
) -> None:
    session, _ = make_session(model, tok, reply(tok, "One."))
    events = list(session.send(LONG))
    progress = [e for e in events if isinstance(e, PrefillProgress)]
    assert [p.done for p in progress] == sorted({p.done for p in progress})
    assert progress[-1].done == progress[-1].total > 512
    assert all(b.done - a.done <= 64 for a, b in itertools.pairwise(progress))
    elapsed = [p.elapsed_s for p in progress]
    assert elapsed == sorted(elapsed) and elapsed[0] > 0
    middle = progress[len(progress) // 2]
    eta = middle.eta_s
    assert eta is not None and eta > 0
    # the rate so far predicts the rest, within a broad margin (the CPU is shared)
    actual = progress[-1].elapsed_s - middle.elapsed_s
    assert actual / 10 < eta < actual * 10
    assert progress[-1].eta_s == 0 and PrefillProgress(0, 10).eta_s is None
