"""One conversation's KV cache, the token ids it holds, and snapshots to rewind it to.

Rewinding to an earlier offset s is free for the full-attention layers (a trim), but the sliding
layers keep only their last window-1 tokens. SlidingWindowCache never mutates its arrays in
place, so keeping references to its state at chosen offsets is cheap (about 3 MiB per snapshot
for the 20b) and makes "rewind to s" = trim the full layers to s + restore the sliding layers'
state at s. A rewind goes to the largest snapshot at or below the common prefix; offset 0 (an
empty cache) always qualifies, which is the full rebuild.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.cache import CacheSnapshot, LayerCache, cache_offset, can_trim_to, trim_to
from engine.chat.prompt import common_prefix_length
from engine.generate import Decoder, Token
from engine.inference import LoadedModel
from engine.sampling import Sampler

DEFAULT_MAX_SNAPSHOTS = 16


class CachedContext:
    def __init__(self, model: LoadedModel, *, max_snapshots: int = DEFAULT_MAX_SNAPSHOTS) -> None:
        if max_snapshots < 1:
            raise ValueError("max_snapshots must be at least 1")
        self._model = model
        self._cache = model.new_cache()
        self._empty = model.snapshot_cache(self._cache)
        self._tokens: list[int] = []
        self._snapshots: dict[int, CacheSnapshot] = {}
        self._max_snapshots = max_snapshots
        self._decoder: Decoder | None = None

    @property
    def tokens(self) -> tuple[int, ...]:
        return tuple(self._tokens)

    @property
    def offset(self) -> int:
        return len(self._tokens)

    @property
    def snapshot_offsets(self) -> list[int]:
        return sorted(self._snapshots)

    @property
    def cache(self) -> Sequence[LayerCache]:
        """The layers' caches, for the prompt cache to save (read them, do not change them)."""
        return self._cache

    @property
    def snapshots(self) -> dict[int, CacheSnapshot]:
        return dict(self._snapshots)

    def install(
        self,
        tokens: Sequence[int],
        cache: list[LayerCache],
        snapshots: dict[int, CacheSnapshot],
    ) -> None:
        """Replaces the cache with one restored from disk that holds `tokens`."""
        if len(cache) != len(self._cache) or any(c.offset != len(tokens) for c in cache):
            raise ValueError("the restored cache does not hold exactly the given tokens")
        if any(not 0 < s <= len(tokens) for s in snapshots):
            raise ValueError("a restored snapshot lies outside the restored tokens")
        self._cache = cache
        self._tokens = list(tokens)
        self._snapshots = dict(snapshots)
        self._decoder = None

    def start(self, sampler: Sampler) -> None:
        """Begins a model run that samples with `sampler`."""
        self._decoder = self._model.decoder(self._cache, sampler)

    def rewind(self, prompt: Sequence[int]) -> int:
        """Cuts the cache back to the longest prefix it shares with `prompt` that it can return
        to, leaving at least one prompt token to feed. Returns how many tokens it kept."""
        target = min(common_prefix_length(self._tokens, prompt), len(prompt) - 1)
        if target == len(self._tokens):
            return target
        if can_trim_to(self._cache, target):
            trim_to(self._cache, target)
            kept = target
        else:
            kept = max((s for s in self._snapshots if s <= target), default=0)
            self._model.restore_cache(self._cache, self._snapshots.get(kept, self._empty))
        del self._tokens[kept:]
        self._snapshots = {s: snap for s, snap in self._snapshots.items() if s <= kept}
        return kept

    def feed(self, tokens: Sequence[int], *, sample: bool) -> None:
        self._run().feed(tokens, sample=sample)
        self._tokens += tokens

    def push(self, token_id: int) -> None:
        self._run().push(token_id)
        self._tokens.append(token_id)

    def take(self) -> Token:
        return self._run().take()

    def snapshot(self, *, compact: bool = False) -> None:
        """Remembers the cache at the current offset. Over the limit, the second-oldest goes:
        the oldest is usually the end of the system and developer messages, which every
        conversation on this session (after `reset`, too) starts with."""
        if not self._tokens:
            return
        snapshot = self._model.snapshot_cache(self._cache, compact=compact)
        self._snapshots[len(self._tokens)] = snapshot
        while len(self._snapshots) > self._max_snapshots:
            del self._snapshots[sorted(self._snapshots)[1]]

    def repair(self) -> None:
        """After an interrupted run: if the cache and the token list disagree (an error inside
        the model), start over from an empty cache rather than compute on a wrong prefix."""
        self._decoder = None
        if any(c.offset != len(self._tokens) for c in self._cache):
            self._model.restore_cache(self._cache, self._empty)
            self._tokens.clear()
            self._snapshots.clear()
        assert cache_offset(self._cache) == len(self._tokens)

    def _run(self) -> Decoder:
        if self._decoder is None:
            raise RuntimeError("call start(sampler) before feeding the context")
        return self._decoder
