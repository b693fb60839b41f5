"""Generation on the real engine with a tiny checkpoint: stopping, limits, cancel, stats, seeds."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from engine import (
    GREEDY,
    ContextOverflowError,
    Finished,
    LoadedModel,
    SamplingSettings,
    Token,
    load_model,
)

PROMPT = [5, 17, 200, 3, 99, 42, 7, 300, 11]


@pytest.fixture(scope="module")
def model(tiny_checkpoint: Path) -> LoadedModel:
    return load_model(tiny_checkpoint, dtype="float32")


def _run(model: LoadedModel, **kwargs: object) -> tuple[list[int], Finished]:
    events = list(model.generate(PROMPT, **kwargs))  # type: ignore[arg-type]
    *tokens, done = events
    assert isinstance(done, Finished) and all(isinstance(t, Token) for t in tokens)
    return [t.id for t in tokens if isinstance(t, Token)], done


def test_greedy_follows_the_full_forward_argmax(model: LoadedModel) -> None:
    ids, done = _run(model, settings=GREEDY, max_tokens=12)
    assert done.reason == "length" and len(ids) == 12
    seq = list(PROMPT)
    for expected in ids:  # each generated token is the argmax of a from-scratch forward pass
        assert int(model.logits(seq)[-1].argmax()) == expected
        seq.append(expected)


def test_stop_ids_end_generation_and_are_reported(model: LoadedModel) -> None:
    ids, _ = _run(model, settings=GREEDY, max_tokens=12)
    stop = ids[4]
    first = ids.index(stop)
    got, done = _run(model, settings=GREEDY, max_tokens=12, stop_ids={stop})
    assert got == ids[: first + 1]
    assert done.reason == "stop" and done.stop_token == stop


def test_logprobs_are_log_softmax_of_the_logits(model: LoadedModel) -> None:
    events = list(model.generate(PROMPT, settings=GREEDY, max_tokens=1))
    token = events[0]
    assert isinstance(token, Token)
    logits = model.logits(PROMPT)[-1].astype(np.float64)
    logprobs = logits - np.log(np.exp(logits - logits.max()).sum()) - logits.max()
    assert token.logprob == pytest.approx(logprobs[token.id], abs=1e-4)


def test_same_seed_same_tokens(model: LoadedModel) -> None:
    hot = SamplingSettings(temperature=1.5, seed=1234)
    a, _ = _run(model, settings=hot, max_tokens=20)
    b, _ = _run(model, settings=hot, max_tokens=20)
    c, _ = _run(model, settings=SamplingSettings(temperature=1.5, seed=99), max_tokens=20)
    assert a == b
    assert a != c


def test_top_p_keeps_only_the_nucleus(model: LoadedModel) -> None:
    # with a tiny nucleus only the most likely token survives: sampling becomes greedy
    greedy, _ = _run(model, settings=GREEDY, max_tokens=10)
    nucleus, _ = _run(model, settings=SamplingSettings(top_p=1e-6, seed=3), max_tokens=10)
    assert nucleus == greedy


def test_cancel_from_another_thread_stops_within_one_token(model: LoadedModel) -> None:
    cancel = threading.Event()
    got: list[int] = []
    result: list[Finished] = []

    def consume() -> None:
        for ev in model.generate(PROMPT, settings=GREEDY, max_tokens=10_000, cancel=cancel):
            if isinstance(ev, Token):
                got.append(ev.id)
                if len(got) == 5:
                    cancel.set()
            else:
                result.append(ev)

    # MLX is owned by one thread at a time; this test's thread hands it over and waits.
    worker = threading.Thread(target=consume)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert result and result[0].reason == "cancel"
    assert len(got) == 5


def test_stats_count_and_time(model: LoadedModel) -> None:
    _, done = _run(model, settings=GREEDY, max_tokens=8)
    s = done.stats
    assert (s.prompt_tokens, s.generated_tokens) == (len(PROMPT), 8)
    assert s.ttft_s > 0 and s.prefill_tokens_per_s > 0 and s.decode_tokens_per_s > 0


def test_context_overflow_is_refused_before_any_work(model: LoadedModel) -> None:
    with pytest.raises(ContextOverflowError, match="context holds"):
        model.generate(PROMPT, max_tokens=model.max_context)


def test_out_of_vocabulary_ids_are_refused(model: LoadedModel) -> None:
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model.logits([1, 2, model.args.vocab_size])


def test_continuing_a_cache_equals_one_long_prompt(model: LoadedModel) -> None:
    cache = model.new_cache()
    first, _ = _run(model, settings=GREEDY, max_tokens=3, cache=cache)
    # the cache now holds the prompt and all generated tokens but the last
    follow = [first[-1], 8, 9]
    cont = [
        e.id
        for e in model.generate(follow, settings=GREEDY, max_tokens=4, cache=cache)
        if isinstance(e, Token)
    ]
    fresh = [
        e.id
        for e in model.generate(PROMPT + first + [8, 9], settings=GREEDY, max_tokens=4)
        if isinstance(e, Token)
    ]
    assert cont == fresh


def test_stop_during_a_512_token_prefill_lands_within_64_tokens(model: LoadedModel) -> None:
    cancel = threading.Event()
    progress: list[tuple[int, int]] = []

    def on_prefill(done: int, total: int) -> None:
        progress.append((done, total))
        cancel.set()  # Stop pressed as soon as the first progress is shown

    cache = model.new_cache()
    prompt = [(i * 37) % 500 + 1 for i in range(512)]
    events = list(model.generate(prompt, cancel=cancel, cache=cache, on_prefill=on_prefill))
    assert len(events) == 1 and isinstance(events[0], Finished)
    assert events[0].reason == "cancel"
    first_done = progress[0][0]
    assert progress[0][1] == 512 and 0 < first_done <= 64
    assert cache[0].offset - first_done <= 64
