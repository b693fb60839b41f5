"""Rank 0 drives, the other ranks follow: every forward pass of rank 0 is announced to them first.

Rank 0 owns the tokenizer, the chat and the sampler, and runs the engine's ordinary generation
code on a `DrivingModel`. Before each forward pass it shares one header (which cache, how many
tokens, where that cache stands) and the token ids; each other rank runs the same pass on its
slice, keeping a mirror of every cache rank 0 uses, and contributes to the same all-sums. A cache
rank 0 rewound (a regenerated answer, an edited message) is trimmed to match on the other ranks.
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

from engine.cache import LayerCache, cache_offset, trim_to
from engine.config import ModelArgs
from engine.distributed.group import DEFAULT_STEP_TIMEOUT, DistributedError, Link, Watchdog
from engine.distributed.loading import load_rank
from engine.distributed.plan import UNEMBEDDING, ShardPlan
from engine.errors import CacheTrimError, ModelLoadError
from engine.experts import mlx_experts
from engine.inference import LoadedModel, default_dtype
from engine.memory.profiles import get_profile
from engine.model import Model

FORWARD, DROP, STOP = 1, 2, 3
# op, cache key (0: none), batch, length, last_only, cache offset, sliding slack, capacity, kv bits
HEADER = 9
_DTYPES = {"float32": mx.float32, "bfloat16": mx.bfloat16, "float16": mx.float16}


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
        self._dropped: list[int] = []

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
            for key in self._dropped[:]:
                self._link.share([DROP, key] + [0] * (HEADER - 2), (HEADER,))
                self._dropped.remove(key)
            key, slack, capacity, bits = self._key_of(cache) if cache else (0, 0, 0, 0)
            offset = cache_offset(cache) if cache else 0
            header = [FORWARD, key, B, L, int(last_only), offset, slack, capacity, bits]
            self._link.share(header, (HEADER,))
            self._link.share(inputs.astype(mx.int32), (B, L))
            out = super().__call__(inputs, cache, last_only)
            mx.eval(out)  # inside the step: a lost or silent peer surfaces here, bounded
        return out

    def stop_followers(self) -> None:
        """Ends the other ranks' `follow` loops; this model computes nothing afterwards."""
        with self._link.step("stopping"):
            self._link.share([STOP] + [0] * (HEADER - 1), (HEADER,))

    def _key_of(self, cache: Sequence[LayerCache]) -> tuple[int, int, int, int]:
        if cache[0] not in self._keys:  # a cache made without make_cache: default settings
            self._register(cache, 0, 0, 0)
        return self._keys[cache[0]]

    def _register(self, caches: Sequence[LayerCache], slack: int, capacity: int, bits: int) -> None:
        key = next(self._serial)
        self._keys[caches[0]] = (key, slack, capacity, bits)
        # the followers drop their mirror with the next message after this cache is gone
        weakref.finalize(caches[0], self._dropped.append, key)


def follow(model: Model, link: Link) -> int:
    """A follower rank's loop: runs every pass rank 0 announces until it says stop. Returns the
    number of passes run. Waits for rank 0 without a time limit: rank 0 may be idle for hours."""
    with link.step("following rank 0"):  # rank 0 lost: RankLostError here too
        return _follow(model, link)


def _follow(model: Model, link: Link) -> int:
    caches: dict[int, list[LayerCache]] = {}
    passes = 0
    while True:
        op, key, B, L, last_only, offset, slack, capacity, bits = _ints(link.share(None, (HEADER,)))
        if op == STOP:
            return passes
        if op == DROP:
            caches.pop(key, None)
            continue
        ids = link.share(None, (B, L)).astype(mx.uint32)
        cache = None
        if key:
            if key not in caches:
                caches[key] = model.make_cache(slack, capacity, bits or None)
            cache = caches[key]
            _follow_offset(cache, offset)
        mx.eval(model.hidden_states(ids, cache, bool(last_only)))
        passes += 1


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
