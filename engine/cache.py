"""KV caches: mlx-lm's step-allocated cache for full-attention layers, a window cache for the rest.

Protocol shared by both: `update_and_fetch(k, v)`, `offset`, `trim(n)`, `state`, `make_mask(L)`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import mlx.core as mx

from engine.config import SLIDING, ModelArgs
from engine.errors import CacheTrimError
from engine.mlx_lm_parts import KVCache, QuantizedKVCache, create_causal_mask

Mask = mx.array | str | None


class LayerCache(Protocol):
    offset: int

    def update_and_fetch(self, keys: mx.array, values: mx.array) -> tuple[mx.array, mx.array]: ...

    def trim(self, n: int) -> int: ...

    def make_mask(
        self, N: int, window_size: int | None = None, return_array: bool = False
    ) -> Mask: ...

    @property
    def state(self) -> Any: ...


class SlidingWindowCache:
    """Keeps the most recent keys and values of a sliding-window layer, in temporal order.

    A query sees itself and the `window - 1` keys before it, so that many are kept after each
    update, plus `slack` more so the cache can be trimmed back by up to `slack` tokens. Unlike a
    ring buffer the kept keys stay in order, so trimming is a slice and decoding needs no mask.
    Shapes: keys and values are (B, Hk, kept, D).
    """

    def __init__(self, window: int, slack: int = 0) -> None:
        if window < 1 or slack < 0:
            raise ValueError("window must be positive and slack non-negative")
        self.window = window
        self.capacity = window - 1 + slack
        self.keys: mx.array | None = None
        self.values: mx.array | None = None
        self.offset = 0

    @property
    def kept(self) -> int:
        return 0 if self.keys is None else self.keys.shape[2]

    def update_and_fetch(self, keys: mx.array, values: mx.array) -> tuple[mx.array, mx.array]:
        if self.keys is None or self.values is None:
            all_k, all_v = keys, values
        else:
            all_k = mx.concatenate([self.keys, keys], axis=2)
            all_v = mx.concatenate([self.values, values], axis=2)
        self.offset += keys.shape[2]
        start = max(0, all_k.shape[2] - self.capacity)
        self.keys, self.values = all_k[:, :, start:], all_v[:, :, start:]
        return all_k, all_v

    def make_mask(self, N: int, window_size: int | None = None, return_array: bool = False) -> Mask:
        """Mask for N new queries against the kept keys followed by the N new ones."""
        window = window_size or self.window
        kept = self.kept
        if N == 1 and kept < window and not return_array:
            return None
        if kept + N <= window and not return_array:
            return "causal"
        return create_causal_mask(N, kept, window_size=window)

    def can_trim(self, n: int) -> bool:
        """Whether dropping the last n tokens leaves every key the next query needs."""
        n = min(n, self.offset)
        needed = min(self.window - 1, self.offset - n)
        return self.kept - n >= needed

    def trim(self, n: int) -> int:
        n = min(n, self.offset)
        if not self.can_trim(n):
            raise CacheTrimError(
                f"The sliding-window cache keeps {self.kept} tokens and cannot drop {n} of them."
            )
        if n and self.keys is not None and self.values is not None:
            end = self.kept - n
            self.keys, self.values = self.keys[:, :, :end], self.values[:, :, :end]
        self.offset -= n
        return n

    @property
    def state(self) -> tuple[mx.array | None, mx.array | None, int]:
        return self.keys, self.values, self.offset

    @state.setter
    def state(self, value: tuple[mx.array | None, mx.array | None, int]) -> None:
        self.keys, self.values, self.offset = value

    @property
    def nbytes(self) -> int:
        if self.keys is None or self.values is None:
            return 0
        return self.keys.nbytes + self.values.nbytes


def _rounded(n: int) -> int:
    return -(-n // KVCache.step) * KVCache.step


class FullCache(KVCache):
    """mlx-lm's step-allocated cache; with a capacity, allocated once up front at that size, so
    the memory a conversation will need is taken (and known) before it starts."""

    def __init__(self, capacity: int = 0) -> None:
        super().__init__()
        self.capacity = _rounded(capacity) if capacity else 0

    def update_and_fetch(self, keys: mx.array, values: mx.array) -> tuple[mx.array, mx.array]:
        if self.keys is None and self.capacity:
            B, H, _, D = keys.shape
            self.keys = mx.zeros((B, H, self.capacity, D), keys.dtype)
            self.values = mx.zeros((B, H, self.capacity, values.shape[3]), values.dtype)
        return super().update_and_fetch(keys, values)


class QuantizedFullCache(QuantizedKVCache):
    """Keys and values stored with MLX's affine 8-bit (or 4-bit) quantization, about half the
    bytes of bf16. Attention with sinks needs plain arrays, so each layer's cache is dequantized
    while that layer attends: a transient of one layer's keys and values."""

    def __init__(self, bits: int = 8, capacity: int = 0, group_size: int = 64) -> None:
        super().__init__(group_size=group_size, bits=bits)
        self._requested_group = group_size
        self.capacity = _rounded(capacity) if capacity else 0

    def update_and_fetch(self, keys: mx.array, values: mx.array) -> tuple[mx.array, mx.array]:
        if self.keys is None:
            # MLX quantizes in groups of 32, 64 or 128 along the head dimension
            self.group_size = min(self._requested_group, keys.shape[-1])
        if self.keys is None and self.capacity:
            B, H, _, D = keys.shape
            packed = (B, H, self.capacity, D * self.bits // 32)
            groups = (B, H, self.capacity, D // self.group_size)

            def empty() -> tuple[mx.array, mx.array, mx.array]:
                zeros = mx.zeros(groups, keys.dtype)
                return mx.zeros(packed, mx.uint32), zeros, mx.zeros(groups, keys.dtype)

            self.keys, self.values = empty(), empty()  # type: ignore[assignment]
        (kw, ks, kb), (vw, vs, vb) = super().update_and_fetch(keys, values)
        g, b = self.group_size, self.bits
        return (
            mx.dequantize(kw, ks, kb, group_size=g, bits=b).astype(keys.dtype),
            mx.dequantize(vw, vs, vb, group_size=g, bits=b).astype(values.dtype),
        )


def make_cache(
    args: ModelArgs, sliding_slack: int = 0, capacity: int = 0, kv_bits: int | None = None
) -> list[LayerCache]:
    """One cache per layer: a window cache for sliding layers, a growing cache for full ones
    (reserved at `capacity` tokens up front, and quantized to `kv_bits` when given)."""
    caches: list[LayerCache] = []
    for layer_type in args.layer_types:
        if layer_type == SLIDING:
            caches.append(SlidingWindowCache(args.sliding_window, slack=sliding_slack))
        elif kv_bits is None:
            caches.append(FullCache(capacity))
        else:
            caches.append(QuantizedFullCache(kv_bits, capacity))
    return caches


def cache_offset(caches: Sequence[LayerCache]) -> int:
    return caches[0].offset if caches else 0


def can_trim_to(caches: Sequence[LayerCache], length: int) -> bool:
    """Whether every layer can be cut back so that it holds the first `length` tokens."""
    for c in caches:
        n = c.offset - length
        if n < 0:
            return False
        if isinstance(c, SlidingWindowCache) and not c.can_trim(n):
            return False
    return True


def trim_to(caches: Sequence[LayerCache], length: int) -> None:
    """Cuts every layer back to the first `length` tokens, or raises CacheTrimError untouched."""
    if not can_trim_to(caches, length):
        raise CacheTrimError(
            f"The cache holds {cache_offset(caches)} tokens and cannot be cut back to {length}; "
            "the prompt has to be processed again."
        )
    for c in caches:
        c.trim(c.offset - length)


SlidingState = tuple[mx.array | None, mx.array | None, int]


@dataclass(frozen=True)
class CacheSnapshot:
    """A cache as it was at `offset`: the sliding-window layers' states, by layer index.

    Full-attention layers are not stored: they go back to `offset` by trimming, which is right
    only while they still hold the same first `offset` tokens (the caller keeps track of that).
    SlidingWindowCache rebinds new arrays on every update and trim, so a state kept by reference
    stays valid.
    """

    offset: int
    sliding: Mapping[int, SlidingState]


def take_snapshot(caches: Sequence[LayerCache], *, compact: bool = False) -> CacheSnapshot:
    """`compact` copies the kept keys and values out of the buffer they are a view of (after a
    prefill chunk that buffer is window + chunk wide), so the snapshot holds only what it needs."""
    sliding: dict[int, SlidingState] = {}
    for i, c in enumerate(caches):
        if isinstance(c, SlidingWindowCache):
            keys, values, offset = c.state
            if compact and keys is not None and values is not None:
                keys, values = mx.contiguous(keys), mx.contiguous(values)
                mx.eval(keys, values)
            sliding[i] = (keys, values, offset)
    return CacheSnapshot(cache_offset(caches), sliding)


def restore_snapshot(caches: Sequence[LayerCache], snapshot: CacheSnapshot) -> None:
    """Returns every layer to the snapshot's offset, or raises CacheTrimError untouched."""
    for i, c in enumerate(caches):
        if i not in snapshot.sliding and c.offset < snapshot.offset:
            raise CacheTrimError(
                f"Layer {i} holds {c.offset} tokens, fewer than the snapshot's {snapshot.offset}."
            )
    for i, c in enumerate(caches):
        if isinstance(c, SlidingWindowCache):
            c.state = snapshot.sliding[i]
        else:
            c.trim(c.offset - snapshot.offset)
