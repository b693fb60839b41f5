"""KV caches alone (shapes (1, 2, n, 8)) and inside the model (cached decoding == full forward)."""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from mlx_lm.models.cache import KVCache

from engine import CacheTrimError, load_model
from engine.cache import SlidingWindowCache, cache_offset, can_trim_to, trim_to
from engine.generate import prefill
from engine.inference import LoadedModel
from tests.conftest import CheckpointFactory


def _kv(start: int, n: int) -> tuple[mx.array, mx.array]:
    """Keys whose every entry is the token's position, so contents can be read back."""
    pos = mx.arange(start, start + n, dtype=mx.float32).reshape(1, 1, n, 1)
    k = mx.broadcast_to(pos, (1, 2, n, 8))
    return k, -k


def _positions(keys: mx.array | None) -> list[int]:
    assert keys is not None
    return [int(p) for p in np.array(keys)[0, 0, :, 0]]


def test_window_cache_keeps_the_last_window_minus_one_in_order() -> None:
    cache = SlidingWindowCache(window=4)
    k, _ = cache.update_and_fetch(*_kv(0, 6))
    assert _positions(k) == [0, 1, 2, 3, 4, 5]  # this chunk's queries need all of them
    assert _positions(cache.keys) == [3, 4, 5]  # the next query sees 3 before itself
    k, _ = cache.update_and_fetch(*_kv(6, 1))
    assert _positions(k) == [3, 4, 5, 6]
    assert cache.offset == 7 and cache.kept == 3
    assert cache.make_mask(1) is None


def test_window_cache_mask_limits_each_query_to_the_window() -> None:
    cache = SlidingWindowCache(window=4)
    cache.update_and_fetch(*_kv(0, 5))  # keeps positions 2, 3, 4
    mask = np.array(cache.make_mask(3))  # queries 5, 6, 7 against keys 2..7
    expected = np.array([[1, 1, 1, 1, 0, 0], [0, 1, 1, 1, 1, 0], [0, 0, 1, 1, 1, 1]], dtype=bool)
    np.testing.assert_array_equal(mask, expected)


def test_window_cache_trims_within_its_slack_only() -> None:
    cache = SlidingWindowCache(window=4, slack=2)
    cache.update_and_fetch(*_kv(0, 10))  # keeps 5..9
    assert cache.can_trim(2) and not cache.can_trim(3)
    assert cache.trim(2) == 2
    assert cache.offset == 8 and _positions(cache.keys) == [5, 6, 7]
    with pytest.raises(CacheTrimError):
        cache.trim(1)


def test_full_cache_grows_in_steps_and_trims() -> None:
    cache = KVCache()
    cache.update_and_fetch(*_kv(0, 3))
    assert cache.keys is not None and cache.keys.shape[2] == KVCache.step
    k, _ = cache.update_and_fetch(*_kv(3, 1))
    assert _positions(k) == [0, 1, 2, 3]
    cache.trim(2)
    k, _ = cache.update_and_fetch(*_kv(2, 1))
    assert _positions(k) == [0, 1, 2]


@pytest.fixture(scope="module")
def model(tiny_checkpoint: Path) -> LoadedModel:
    return load_model(tiny_checkpoint, dtype="float32")


def _ids(n: int, seed: int = 0) -> list[int]:
    return [int(t) for t in np.random.default_rng(seed).integers(0, 512, size=n)]


def _last_logits(model: LoadedModel, ids: list[int], cache: list, step: int) -> np.ndarray:
    out = prefill(model._model, ids, cache, step=step)
    assert out is not None
    return np.array(out[0])


def test_cached_decoding_equals_full_forward(model: LoadedModel) -> None:
    ids = _ids(40)  # the tiny model's window is 8, so the window slides many times
    full = model.logits(ids)
    cache = model.new_cache()
    _last_logits(model, ids[:5], cache, step=512)
    for i in range(5, len(ids)):
        step_logits = _last_logits(model, [ids[i]], cache, step=1)
        np.testing.assert_allclose(step_logits, full[i], atol=2e-5)
    assert cache_offset(cache) == len(ids)


@pytest.mark.parametrize("step", [1, 3, 8, 13])
def test_chunked_prefill_equals_one_shot(model: LoadedModel, step: int) -> None:
    ids = _ids(50, seed=1)
    one_shot = model.logits(ids)[-1]
    np.testing.assert_allclose(
        _last_logits(model, ids, model.new_cache(), step=step), one_shot, atol=2e-5
    )


def test_trimmed_cache_continues_like_a_fresh_one(model: LoadedModel) -> None:
    ids, detour = _ids(30, seed=2), _ids(3, seed=3)
    cache = model.new_cache(sliding_slack=4)
    _last_logits(model, ids, cache, step=16)
    _last_logits(model, detour, cache, step=16)
    assert can_trim_to(cache, 30) and not can_trim_to(cache, 28)
    trim_to(cache, 30)
    nxt = _ids(1, seed=4)
    continued = _last_logits(model, nxt, cache, step=16)
    np.testing.assert_allclose(continued, model.logits(ids + nxt)[-1], atol=2e-5)


def test_failed_trim_leaves_the_cache_untouched(model: LoadedModel) -> None:
    cache = model.new_cache()
    _last_logits(model, _ids(20), cache, step=16)
    with pytest.raises(CacheTrimError):
        trim_to(cache, 10)
    assert [c.offset for c in cache] == [20] * len(cache)


def test_cache_sizes_follow_the_layer_types(make_checkpoint: CheckpointFactory) -> None:
    model = load_model(make_checkpoint(), dtype="float32")
    cache = model.new_cache()
    _last_logits(model, _ids(100), cache, step=64)
    kinds = [type(c).__name__ for c in cache]
    assert kinds == ["SlidingWindowCache", "FullCache"] * 2
    assert isinstance(cache[0], SlidingWindowCache) and cache[0].kept == 7  # window 8 - 1
    assert cache[1].offset == 100
