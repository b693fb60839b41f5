"""Rank 0 drives, the other ranks follow: every forward pass of rank 0 is announced to them first.

Rank 0 owns the tokenizer, the chat and the sampler, and runs the engine's ordinary generation
code on a `DrivingModel`. Before each forward pass it shares one header (which cache, how many
tokens, where that cache stands) and the token ids; each other rank runs the same pass on its
slice, keeping a mirror of every cache rank 0 uses, and contributes to the same all-sums.

Whatever else rank 0 does to a cache is mirrored too, so that every rank's caches stay identical
and a chat reuses its cached prefix across turns as one process does:
- a trim (a regenerated answer) needs no message of its own: every header carries the cache's
  offset, and a follower whose mirror is longer trims it to that offset first;
- a snapshot and a restore (a rewind across a sliding-window layer, which keeps only its last
  window and cannot be trimmed back) are announced as SNAPSHOT and RESTORE headers naming the
  snapshot, and the follower takes or restores its own snapshot of its own slice;
- a cache or snapshot that rank 0 no longer references is dropped by the followers (DROP, FORGET).
The hook is LoadedModel.snapshot_cache / restore_cache, the two calls through which the chat
(engine.chat.context) moves its cache, rather than a wrapper around the cache objects: the chat
already asks the model for its caches, and a snapshot is only a set of references to the arrays
the cache holds, which rank 0 cannot notice being taken. The announcements wait in a queue and
go out, in order, before the next pass: a snapshot or restore then costs no collective of its own.
A cache restored from a file (engine.chat.prompt_cache) holds rank 0's slice only: the prompt
cache declines it for a split model, whose chat prefills instead.
"""

from __future__ import annotations

import itertools
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import mlx.core as mx
import numpy as np

from engine.cache import (
    CacheSnapshot,
    LayerCache,
    cache_offset,
    restore_snapshot,
    take_snapshot,
    trim_to,
)
from engine.config import ModelArgs
from engine.distributed.group import DEFAULT_STEP_TIMEOUT, DistributedError, Link, Watchdog
from engine.distributed.loading import load_rank
from engine.distributed.plan import UNEMBEDDING, ShardPlan
from engine.errors import CacheTrimError, ModelLoadError
from engine.experts import mlx_experts
from engine.inference import LoadedModel, default_dtype
from engine.memory.profiles import get_profile
from engine.model import Model

FORWARD, DROP, STOP, SNAPSHOT, RESTORE, FORGET = 1, 2, 3, 4, 5, 6
HEADER = 9
_DTYPES = {"float32": mx.float32, "bfloat16": mx.bfloat16, "float16": mx.float16}


@dataclass(frozen=True)
class Header:
    """One order to the followers. `a`, `b`, `c` depend on `op`: FORWARD batch, length and
    last_only; SNAPSHOT the snapshot's number and compact; RESTORE and FORGET the snapshot's
    number. The cache fields (key 0: no cache) let a follower make a mirror it does not have."""

    op: int
    key: int = 0  # the cache's number
    offset: int = 0  # the tokens rank 0's cache holds: before a pass, after a restore
    slack: int = 0
    capacity: int = 0
    bits: int = 0
    a: int = 0
    b: int = 0
    c: int = 0

    def ints(self) -> list[int]:
        return [self.op, self.key, self.offset, self.slack, self.capacity, self.bits,
                self.a, self.b, self.c]  # fmt: skip


class DrivingModel(Model):
    """Rank 0's model: a forward pass first tells the other ranks to run the same pass."""

    def __init__(self, args: ModelArgs, link: Link) -> None:
        super().__init__(args, mlx_experts, link.group if link.group.size() > 1 else None)
        self._link = link
        self.group_size = link.group.size()
        self._keys: weakref.WeakKeyDictionary[LayerCache, tuple[int, int, int, int]] = (
            weakref.WeakKeyDictionary()
        )
        self._serial = itertools.count(1)
        self._snapshots: dict[int, int] = {}  # id() of a live snapshot -> its number
        self._pending: list[Header] = []  # orders that go out before the next pass

    def make_cache(
        self, sliding_slack: int = 0, capacity: int = 0, kv_bits: int | None = None
    ) -> list[LayerCache]:
        caches = super().make_cache(sliding_slack, capacity, kv_bits)
        self._register(caches, sliding_slack, capacity, kv_bits or 0)
        return caches

    def __call__(
        self,
        inputs: mx.array,
        cache: Sequence[LayerCache] | None = None,
        last_only: bool = False,
    ) -> mx.array:
        B, L = inputs.shape
        with self._link.step(f"computing {L} token{'s' if L != 1 else ''}"):
            self._send_pending()
            order = self._cache_header(FORWARD, cache, B, L, int(last_only))
            self._link.share(order.ints(), (HEADER,))
            self._link.share(inputs.astype(mx.int32), (B, L))
            out = super().__call__(inputs, cache, last_only)
            mx.eval(out)  # inside the step: a lost or silent peer surfaces here, bounded
        return out

    def snapshot_taken(
        self, cache: Sequence[LayerCache], snapshot: CacheSnapshot, compact: bool
    ) -> None:
        """The followers take the same snapshot of their mirror of `cache`."""
        number = next(self._serial)
        self._snapshots[id(snapshot)] = number
        weakref.finalize(snapshot, self._forget, id(snapshot), number)
        self._pending.append(self._cache_header(SNAPSHOT, cache, number, int(compact)))

    def check_restorable(self, snapshot: CacheSnapshot) -> None:
        if id(snapshot) not in self._snapshots:
            raise DistributedError(
                "A saved cache cannot be restored into a model split across processes: "
                "process the prompt again instead. The other processes never held this "
                "snapshot (read from a file, or taken on another model)."
            )

    def restored(self, cache: Sequence[LayerCache], snapshot: CacheSnapshot) -> None:
        """The followers restore their own copy of `snapshot` into their mirror of `cache`."""
        number = self._snapshots[id(snapshot)]
        self._pending.append(self._cache_header(RESTORE, cache, number))

    def stop_followers(self) -> None:
        """Ends the other ranks' `follow` loops; this model computes nothing afterwards."""
        with self._link.step("stopping"):
            self._send_pending()
            self._link.share(Header(STOP).ints(), (HEADER,))

    def _send_pending(self) -> None:
        while self._pending:  # a finalizer may append while this runs: that goes out too
            self._link.share(self._pending.pop(0).ints(), (HEADER,))

    def _cache_header(
        self, op: int, cache: Sequence[LayerCache] | None, a: int = 0, b: int = 0, c: int = 0
    ) -> Header:
        key, slack, capacity, bits = self._key_of(cache) if cache else (0, 0, 0, 0)
        offset = cache_offset(cache) if cache else 0
        return Header(op, key, offset, slack, capacity, bits, a, b, c)

    def _key_of(self, cache: Sequence[LayerCache]) -> tuple[int, int, int, int]:
        if cache[0] not in self._keys:  # a cache made without make_cache: default settings
            self._register(cache, 0, 0, 0)
        return self._keys[cache[0]]

    def _register(self, caches: Sequence[LayerCache], slack: int, capacity: int, bits: int) -> None:
        key = next(self._serial)
        self._keys[caches[0]] = (key, slack, capacity, bits)
        # the followers drop their mirror with the next message after this cache is gone
        weakref.finalize(caches[0], self._pending.append, Header(DROP, key))

    def _forget(self, snapshot_id: int, number: int) -> None:
        self._snapshots.pop(snapshot_id, None)
        self._pending.append(Header(FORGET, a=number))


def follow(model: Model, link: Link) -> int:
    """A follower rank's loop: runs every pass rank 0 announces until it says stop. Returns the
    number of passes run. Waits for rank 0 without a time limit: rank 0 may be idle for hours."""
    with link.step("following rank 0"):  # rank 0 lost: RankLostError here too
        return _follow(model, link)


def _follow(model: Model, link: Link) -> int:
    mirror = _Mirror(model)
    passes = 0
    while True:
        order = Header(*_ints(link.share(None, (HEADER,))))
        if order.op == STOP:
            return passes
        if order.op == FORWARD:
            ids = link.share(None, (order.a, order.b)).astype(mx.uint32)
            cache = mirror.at_offset(order) if order.key else None
            mx.eval(model.hidden_states(ids, cache, bool(order.c)))
            passes += 1
        else:
            mirror.apply(order)


class _Mirror:
    """A follower's copies of rank 0's caches and snapshots, each of its own slice."""

    def __init__(self, model: Model) -> None:
        self._model = model
        self._caches: dict[int, list[LayerCache]] = {}
        self._snapshots: dict[int, CacheSnapshot] = {}

    def at_offset(self, order: Header) -> list[LayerCache]:
        """The mirror of the order's cache, trimmed to rank 0's offset (made if new)."""
        cache = self._cache(order)
        _follow_offset(cache, order.offset)
        return cache

    def _cache(self, order: Header) -> list[LayerCache]:
        if order.key not in self._caches:
            self._caches[order.key] = self._model.make_cache(
                order.slack, order.capacity, order.bits or None
            )
        return self._caches[order.key]

    def apply(self, order: Header) -> None:
        if order.op == DROP:
            self._caches.pop(order.key, None)
        elif order.op == FORGET:
            self._snapshots.pop(order.a, None)
        elif order.op == SNAPSHOT:
            self._snapshots[order.a] = take_snapshot(self.at_offset(order), compact=bool(order.b))
        elif order.op == RESTORE:
            self._restore(order)
        else:
            raise DistributedError(f"Rank 0 sent an unknown order ({order.op}): {_UPDATE}")

    def _restore(self, order: Header) -> None:
        snapshot = self._snapshots.get(order.a)
        if snapshot is None:
            raise DistributedError(
                f"A follower was asked to restore snapshot {order.a}, which it does not hold: "
                f"{_UPDATE}"
            )
        cache = self._cache(order)
        try:
            restore_snapshot(cache, snapshot)
        except CacheTrimError as e:
            raise DistributedError(f"A follower cannot restore its cache: {e}") from e
        if cache_offset(cache) != order.offset:
            raise DistributedError(
                f"A follower's restored cache holds {cache_offset(cache)} tokens but rank 0's "
                f"holds {order.offset}: {_UPDATE}"
            )


_UPDATE = "every process of the group must run the same version of OSS Desk."


def _ints(values: mx.array) -> list[int]:
    return [int(v) for v in np.array(values)]


def _follow_offset(cache: list[LayerCache], offset: int) -> None:
    held = cache_offset(cache)
    if held > offset:
        try:
            trim_to(cache, offset)
        except CacheTrimError as e:
            raise DistributedError(
                f"A follower cannot rewind its cache from {held} to {offset} tokens: {e}"
            ) from e
    elif held < offset:
        raise DistributedError(
            f"A follower's cache holds {held} tokens but rank 0's holds {offset}: a cache "
            "restored from disk cannot be used in a distributed run."
        )


class DistributedLoadedModel(LoadedModel):
    """Rank 0's model: the LoadedModel interface, each pass computed by the whole group."""

    def __init__(self, model: DrivingModel, path: Path, dtype: str, load_s: float) -> None:
        super().__init__(model, path, dtype, "mlx", get_profile("full"), load_s)
        self._driver = model
        self.processes = model.group_size

    def snapshot_cache(
        self, cache: Sequence[LayerCache], *, compact: bool = False
    ) -> CacheSnapshot:
        snapshot = super().snapshot_cache(cache, compact=compact)
        self._driver.snapshot_taken(cache, snapshot, compact)
        return snapshot

    def restore_cache(self, cache: Sequence[LayerCache], snapshot: CacheSnapshot) -> None:
        self._driver.check_restorable(snapshot)
        super().restore_cache(cache, snapshot)  # raises untouched: then nothing to announce
        self._driver.restored(cache, snapshot)

    def stop(self) -> None:
        """Releases the other ranks (they return from `follow`); call once, when done."""
        self._driver.stop_followers()


@dataclass
class RankModel:
    """This process's part of a distributed gpt-oss: `loaded` on rank 0, `follow()` elsewhere."""

    link: Link
    model: Model
    plan: ShardPlan
    loaded: DistributedLoadedModel | None

    def follow(self) -> int:
        if self.link.rank == 0:
            raise ValueError("rank 0 drives; only the other ranks follow")
        return follow(self.model, self.link)

    def stop(self) -> None:
        """On rank 0: releases the other ranks from `follow`."""
        if self.loaded is not None:
            self.loaded.stop()


def load_rank_model(
    path: str | Path,
    group: mx.distributed.Group,
    *,
    dtype: str | None = None,
    step_timeout: float = DEFAULT_STEP_TIMEOUT,
) -> RankModel:
    """Loads this rank's slice of the checkpoint at `path` (every rank calls this)."""
    t0 = time.perf_counter()
    model_dir = Path(path).expanduser()
    if not model_dir.is_dir():
        raise ModelLoadError(f"{model_dir} is not a folder.")
    dtype = dtype or default_dtype()
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {sorted(_DTYPES)}")
    args = ModelArgs.from_model_dir(model_dir)
    plan = ShardPlan.for_rank(args, group.rank(), group.size())
    watchdog = Watchdog(step_timeout) if group.rank() == 0 else None
    link = Link(group, watchdog)
    if group.rank() == 0:
        driver = DrivingModel(args, link)
        load_rank(model_dir, args, plan, _DTYPES[dtype], driver)
        loaded = DistributedLoadedModel(driver, model_dir, dtype, time.perf_counter() - t0)
        return RankModel(link, driver, plan, loaded)
    model = Model(args, mlx_experts, group if group.size() > 1 else None)
    if not plan.holds(UNEMBEDDING):
        model.pop("lm_head")  # never allocated: a follower returns hidden states, not logits
    load_rank(model_dir, args, plan, _DTYPES[dtype], model)
    return RankModel(link, model, plan, None)


def load_distributed(
    path: str | Path,
    group: mx.distributed.Group,
    *,
    dtype: str | None = None,
    step_timeout: float = DEFAULT_STEP_TIMEOUT,
) -> DistributedLoadedModel | None:
    """Rank 0: its model (call its `stop()` when done). Other ranks: follow rank 0 until it
    stops, then return None."""
    rank_model = load_rank_model(path, group, dtype=dtype, step_timeout=step_timeout)
    if rank_model.loaded is not None:
        return rank_model.loaded
    rank_model.follow()
    return None
