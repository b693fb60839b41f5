"""Cache snapshots (engine.cache) and the chat context that rewinds to them."""

from __future__ import annotations

import numpy as np
import pytest
from mlx_lm.models.cache import KVCache

from engine import CacheTrimError, LoadedModel
from engine.cache import LayerCache, SlidingWindowCache, restore_snapshot, take_snapshot
from engine.chat.context import CachedContext
from engine.testing.scripted import ScriptedSampler
from tests.engine.test_cache import _kv, _positions

from .fixtures import fresh_logprobs
from .test_session import ATOL

A = list(range(10, 40))  # 30 tokens: far past the tiny model's 8-token window
B = list(range(100, 120))
C = list(range(200, 215))


@pytest.mark.parametrize("compact", [False, True])
def test_snapshot_restores_window_layers_and_trims_full_ones(compact: bool) -> None:
    window, full = SlidingWindowCache(window=4), KVCache()
    caches: list[LayerCache] = [window, full]
    for c in caches:
        c.update_and_fetch(*_kv(0, 6))
    snap = take_snapshot(caches, compact=compact)
    for c in caches:
        c.update_and_fetch(*_kv(6, 5))
    restore_snapshot(caches, snap)
    assert window.offset == full.offset == 6
    assert _positions(window.keys) == [3, 4, 5]
    window.update_and_fetch(*_kv(6, 1))  # continues as if the 5 tokens never came
    assert _positions(window.keys) == [4, 5, 6]


def test_a_snapshot_past_the_cache_is_refused_untouched() -> None:
    caches: list[LayerCache] = [SlidingWindowCache(window=4), KVCache()]
    for c in caches:
        c.update_and_fetch(*_kv(0, 6))
    snap = take_snapshot(caches)
    caches[1].trim(3)
    with pytest.raises(CacheTrimError, match="fewer than the snapshot"):
        restore_snapshot(caches, snap)
    assert caches[0].offset == 6 and caches[1].offset == 3


def _context(model: LoadedModel, **kwargs: int) -> tuple[CachedContext, ScriptedSampler]:
    sampler = ScriptedSampler([0] * 10, record=True)
    context = CachedContext(model, **kwargs)
    context.start(sampler)
    return context, sampler


def test_rewinding_to_a_snapshot_continues_like_a_fresh_cache(model: LoadedModel) -> None:
    context, sampler = _context(model)
    context.feed(A, sample=False)
    context.snapshot(compact=True)
    context.feed(B, sample=False)
    assert context.rewind(A + C) == len(A)
    context.feed(C, sample=True)
    context.take()
    assert context.tokens == tuple(A + C)
    np.testing.assert_allclose(sampler.seen[-1], fresh_logprobs(model, A + C), atol=ATOL)


def test_rewind_trims_directly_within_the_window_and_rebuilds_without_snapshots(
    model: LoadedModel,
) -> None:
    context, _ = _context(model)
    context.feed(A[:5], sample=False)  # fewer tokens than the window: every layer can trim
    assert context.rewind(A[:3] + C) == 3
    context.feed(C, sample=False)
    assert context.rewind(B) == 0 and context.tokens == ()
    # a prompt held whole still needs its last token fed, hence the mark one before its end
    context.feed(A[:-1], sample=False)
    context.snapshot()
    context.feed(A[-1:], sample=False)
    context.snapshot()
    assert context.rewind(A) == len(A) - 1


def test_snapshots_beyond_the_limit_drop_the_second_oldest(model: LoadedModel) -> None:
    context, _ = _context(model, max_snapshots=3)
    for start in range(0, 40, 10):
        context.feed(list(range(start + 1, start + 11)), sample=False)
        context.snapshot()
    assert context.snapshot_offsets == [10, 30, 40]


def test_repair_starts_over_when_cache_and_tokens_disagree(model: LoadedModel) -> None:
    context, _ = _context(model)
    context.feed(A, sample=False)
    context.repair()
    assert context.offset == len(A)  # consistent: kept
    context._cache[1].trim(1)  # as if a model call failed half-way
    context.repair()
    assert context.offset == 0 and all(c.offset == 0 for c in context._cache)
