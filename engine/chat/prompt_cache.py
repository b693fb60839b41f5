"""Each chat's KV cache kept on disk, so a follow-up after switching chats or restarting the app
prefills only what is new.

One file per chat (engine.chat.cache_file: safetensors with a manifest in its header). It holds
the token ids the cache holds, the full-attention layers' keys and values up to that length (in
the profile's precision: 8-bit packed for the 16gb profile), the sliding layers' windows, and
some of the session's snapshots. The snapshots matter because a rotated window is valid only at
the exact length it was saved at: the next prompt drops the last reply's analysis, so it shares
only the previous prompt with the saved tokens, and the window must be the one snapshotted there.

Restore checks the manifest against the loaded model (config, weight-file identity as the
conversion cache computes it, profile, dtype, tokenizer) and the session's re-rendered prompt,
then keeps the longest prefix the cache can return to (CachedContext.rewind). Anything that does
not fit (another model or profile, edited history, a truncated or altered file) is logged and
the turn prefills normally: a prompt cache is never worth an error. Saving never raises either
(a full disk is a SaveResult with a problem). The folder is capped (least recently used first).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlx.core as mx

from engine.cache import CacheSnapshot, LayerCache, SlidingState, SlidingWindowCache
from engine.chat import cache_file
from engine.chat.cache_file import CacheFileError
from engine.chat.cache_folder import (
    DEFAULT_MAX_BYTES,
    SUFFIX,
    clear_folder,
    default_folder,
    saved_files,
)
from engine.chat.context import CachedContext
from engine.chat.prompt import common_prefix_length
from engine.chat.session import ChatSession
from engine.checkpoint import checkpoint_files
from engine.inference import LoadedModel
from engine.memory.conversion_cache import source_identity
from engine.mlx_lm_parts import KVCache, QuantizedKVCache
from engine.tokenizer import HarmonyTokenizer

log = logging.getLogger(__name__)

# Besides the newest state: the first snapshot (end of the system prompt, which an edit falls
# back to) and the newest few (the last prompt's end, its last user message, answer-again).
SAVED_SNAPSHOTS = 4
_KEY = re.compile(r"[A-Za-z0-9_-]{1,100}")
_STALE_TEMP_S = 3600
_PROBLEMS = (CacheFileError, OSError, ValueError, KeyError, TypeError, IndexError, RuntimeError)


@dataclass(frozen=True)
class SaveResult:
    saved: bool
    tokens: int = 0
    bytes: int = 0
    seconds: float = 0.0
    evicted_bytes: int = 0
    problem: str = ""  # for the user when a write failed, "" otherwise


@dataclass(frozen=True)
class RestoreResult:
    restored: bool
    tokens: int = 0  # the prefix now in the session's cache
    saved_tokens: int = 0  # what the file held
    bytes: int = 0
    seconds: float = 0.0
    reason: str = ""  # why nothing was restored (logged, never shown)


def tokenizer_fingerprint(tokenizer: HarmonyTokenizer) -> str:
    h = hashlib.sha256(json.dumps([tokenizer.n_vocab, tokenizer.pattern,
                                   sorted(tokenizer.special_tokens.items())]).encode())  # fmt: skip
    if tokenizer.source is not None and tokenizer.source.is_file():
        h.update(tokenizer.source.read_bytes())
    else:
        for i in range(tokenizer.n_vocab):
            h.update(tokenizer.token_bytes(i) or b"\0special")
    return h.hexdigest()


def model_identity(model: LoadedModel, tokenizer: HarmonyTokenizer) -> dict[str, Any]:
    """What must match for a saved cache to be the one this model would compute."""
    config = (model.path / "config.json").read_bytes()
    identity = {
        "config_sha256": hashlib.sha256(config).hexdigest(),
        "weights": source_identity(checkpoint_files(model.path)),
        "profile": model.profile.name,
        "kv_bits": model.profile.kv_bits,
        "dtype": model.dtype,
        "tokenizer_sha256": tokenizer_fingerprint(tokenizer),
    }
    return dict(json.loads(json.dumps(identity)))  # as it reads back from a manifest


class PromptCache:
    """Saved KV caches of one loaded model's chats, keyed by a short string (the chat's id)."""

    def __init__(
        self,
        model: LoadedModel,
        tokenizer: HarmonyTokenizer,
        folder: Path | None = None,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.folder = folder or default_folder()
        self.max_bytes = max_bytes
        self._model = model
        self.identity = model_identity(model, tokenizer)
        self._drop_stale_temps()

    def path(self, key: str) -> Path:
        if not _KEY.fullmatch(key):
            raise ValueError(f"prompt cache keys are short [A-Za-z0-9_-] strings, not {key!r}")
        return self.folder / f"{key}{SUFFIX}"

    def saved_keys(self) -> list[str]:
        """The keys with a saved cache, least recently used first."""
        return [p.name.removesuffix(SUFFIX) for _, _, p in self._files()]

    def total_bytes(self) -> int:
        return sum(size for _, size, _ in self._files())

    # -- save ------------------------------------------------------------------------------

    def save(self, key: str, session: ChatSession) -> SaveResult:
        """Writes the session's cache under `key`, then evicts the least recently used files
        over the cap. A write that fails leaves the previous file (if any) untouched."""
        t0 = time.perf_counter()
        path = self.path(key)
        context = session.context
        if context.offset == 0 or self._model.processes > 1:  # rank 0 holds only its heads
            return SaveResult(False)
        arrays, manifest = self._serialize(key, context)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            written = cache_file.write(path, arrays, manifest)
        except OSError as e:
            log.warning("cannot save the prompt cache %s: %s", path, e)
            return SaveResult(False, problem=(
                f"The prompt cache could not be saved in {self.folder} ({e.strerror or e}). "
                "Free some disk space or lower the cache size in Settings; your chats are not "
                "affected, only reopening them is slower."))  # fmt: skip
        if written > self.max_bytes:
            path.unlink(missing_ok=True)
            log.info("prompt cache for %s (%d bytes) exceeds the cap; not kept", key, written)
            return SaveResult(False, context.offset, written, time.perf_counter() - t0)
        evicted = self._evict(keep=path)
        seconds = time.perf_counter() - t0
        log.info("saved %d cached tokens of chat %s: %d bytes in %.3f s", context.offset, key,
                 written, seconds)  # fmt: skip
        return SaveResult(True, context.offset, written, seconds, evicted)

    def _serialize(
        self, key: str, context: CachedContext
    ) -> tuple[dict[str, mx.array], dict[str, Any]]:
        n = context.offset
        arrays: dict[str, mx.array] = {}
        layers: list[dict[str, Any]] = []
        for i, c in enumerate(context.cache):
            if isinstance(c, SlidingWindowCache):
                _put_sliding(arrays, f"layer{i}", c.state)
                layers.append({"kind": "sliding", "offset": c.offset})
            elif isinstance(c, QuantizedKVCache):
                assert isinstance(c.keys, tuple) and isinstance(c.values, tuple)
                for j, (k, v) in enumerate(zip(c.keys, c.values, strict=True)):
                    arrays[f"layer{i}.keys.{j}"] = k[..., :n, :]
                    arrays[f"layer{i}.values.{j}"] = v[..., :n, :]
                layers.append({"kind": "quantized", "bits": c.bits, "group_size": c.group_size})
            elif isinstance(c, KVCache) and c.keys is not None and c.values is not None:
                arrays[f"layer{i}.keys"] = c.keys[..., :n, :]
                arrays[f"layer{i}.values"] = c.values[..., :n, :]
                layers.append({"kind": "full"})
            else:
                raise TypeError(f"layer {i}: {type(c).__name__} cannot be saved")
        kept = _chosen_snapshots(sorted(s for s in context.snapshots if s < n))
        snapshots = context.snapshots
        for s in kept:
            for i, state in snapshots[s].sliding.items():
                _put_sliding(arrays, f"snap{s}.layer{i}", state)
        manifest = {"key": key, "identity": self.identity, "tokens": list(context.tokens),
                    "layers": layers, "snapshots": kept, "saved_at": time.time()}  # fmt: skip
        return arrays, manifest

    # -- restore ---------------------------------------------------------------------------

    def restore(self, key: str, session: ChatSession) -> RestoreResult:
        """Gives the session the saved cache's longest prefix that its next prompt can use."""
        t0 = time.perf_counter()
        path = self.path(key)
        if not path.is_file():
            return RestoreResult(False, reason="nothing saved")
        if self._model.processes > 1:  # its other processes' slices of the cache are in no file
            return RestoreResult(False, reason="a model split across processes prefills instead")
        prompt = session.prompt_ids(follow_up=True)
        try:
            manifest, _, _ = cache_file.read_manifest(path)
            tokens = self._check(manifest, key)
            if common_prefix_length(tokens, prompt) == 0:
                raise CacheFileError("the conversation no longer starts as it did")
            manifest, arrays = cache_file.read(path)
            cache, snapshots = self._rebuild(manifest, arrays, len(tokens))
            session.context.install(tokens, cache, snapshots)
        except _PROBLEMS as e:
            log.info("prompt cache %s not used: %s", path.name, e)
            return RestoreResult(False, reason=str(e))
        kept = session.context.rewind(prompt)
        os.utime(path)  # least recently *used*: restoring counts as a use
        seconds = time.perf_counter() - t0
        log.info("restored %d of %d cached tokens for chat %s in %.3f s", kept, len(tokens), key,
                 seconds)  # fmt: skip
        return RestoreResult(kept > 0, kept, len(tokens), path.stat().st_size, seconds)

    def _check(self, manifest: dict[str, Any], key: str) -> list[int]:
        if manifest.get("key") != key:
            raise CacheFileError(f"the file belongs to chat {manifest.get('key')!r}")
        if manifest.get("identity") != self.identity:
            raise CacheFileError("it was saved with another model, profile or tokenizer")
        tokens = manifest.get("tokens")
        if not isinstance(tokens, list) or not all(type(t) is int for t in tokens) or not tokens:
            raise CacheFileError("its token list is malformed")
        return tokens

    def _rebuild(
        self, manifest: dict[str, Any], arrays: dict[str, mx.array], n: int
    ) -> tuple[list[LayerCache], dict[int, CacheSnapshot]]:
        """Fresh layer caches holding the saved arrays, every shape checked against the model."""
        args = self._model.args
        hk, d = args.num_key_value_heads, args.head_dim
        cache = self._model.new_cache()
        layers = manifest["layers"]
        if len(layers) != len(cache):
            raise CacheFileError(f"{len(layers)} layers saved for a {len(cache)}-layer model")
        for i, (c, meta) in enumerate(zip(cache, layers, strict=True)):
            if isinstance(c, SlidingWindowCache):
                c.state = _get_sliding(arrays, f"layer{i}", c, meta.get("offset"), (hk, d))
                if c.offset != n:
                    raise CacheFileError(f"layer {i} holds {c.offset} tokens, not {n}")
            elif isinstance(c, QuantizedKVCache):
                if (meta.get("bits"), meta.get("group_size")) != (c.bits, min(c.group_size, d)):
                    raise CacheFileError(f"layer {i} was quantized differently")
                c.group_size = meta["group_size"]
                per = 32 // c.bits
                widths = (d // per, d // c.group_size, d // c.group_size)
                keys = tuple(_get(arrays, f"layer{i}.keys.{j}", (1, hk, n, w)) for j, w in
                             enumerate(widths))  # fmt: skip
                values = tuple(_get(arrays, f"layer{i}.values.{j}", (1, hk, n, w)) for j, w in
                               enumerate(widths))  # fmt: skip
                c.keys, c.values, c.offset = keys, values, n  # type: ignore[assignment]
            else:
                assert isinstance(c, KVCache)
                if meta.get("kind") != "full":
                    raise CacheFileError(f"layer {i} was saved as {meta.get('kind')!r}")
                c.state = (_get(arrays, f"layer{i}.keys", (1, hk, n, d)),
                           _get(arrays, f"layer{i}.values", (1, hk, n, d)), n)  # fmt: skip
        snapshots: dict[int, CacheSnapshot] = {}
        for s in manifest["snapshots"]:
            if type(s) is not int or not 0 < s < n:
                raise CacheFileError(f"snapshot offset {s!r} is outside 1..{n - 1}")
            sliding: dict[int, SlidingState] = {}
            for i, c in enumerate(cache):
                if isinstance(c, SlidingWindowCache):
                    sliding[i] = _get_sliding(arrays, f"snap{s}.layer{i}", c, s, (hk, d))
            snapshots[s] = CacheSnapshot(s, sliding)
        mx.eval([a for a in arrays.values()])
        return cache, snapshots

    # -- housekeeping ----------------------------------------------------------------------

    def delete(self, key: str) -> int:
        """Deletes the chat's file; returns the bytes freed."""
        path = self.path(key)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size

    def clear(self) -> int:
        """Deletes every saved cache in the folder (any model's); returns the bytes freed."""
        return clear_folder(self.folder)

    def _files(self) -> list[tuple[float, int, Path]]:
        return saved_files(self.folder)

    def _evict(self, keep: Path) -> int:
        files = self._files()
        total = sum(size for _, size, _ in files)
        freed = 0
        for _, size, path in files:
            if total <= self.max_bytes:
                break
            if path == keep:
                continue
            path.unlink(missing_ok=True)
            total -= size
            freed += size
            log.info("evicted prompt cache %s (%d bytes) to stay under the cap", path.name, size)
        return freed

    def _drop_stale_temps(self) -> None:
        """Temporary files a crash left mid-write."""
        if not self.folder.is_dir():
            return
        for path in self.folder.glob(".tmp-*"):
            try:
                if time.time() - path.stat().st_mtime > _STALE_TEMP_S:
                    path.unlink()
            except OSError:
                continue


def _chosen_snapshots(offsets: Sequence[int]) -> list[int]:
    if len(offsets) <= SAVED_SNAPSHOTS + 1:
        return list(offsets)
    return [offsets[0], *offsets[-SAVED_SNAPSHOTS:]]


def _put_sliding(arrays: dict[str, mx.array], name: str, state: SlidingState) -> None:
    keys, values, _ = state
    if keys is None or values is None:
        raise ValueError(f"{name}: an empty sliding window is never saved")
    arrays[f"{name}.keys"], arrays[f"{name}.values"] = keys, values


def _get(arrays: dict[str, mx.array], name: str, shape: tuple[int, ...]) -> mx.array:
    array = arrays.get(name)
    if array is None or tuple(array.shape) != shape:
        got = None if array is None else tuple(array.shape)
        raise CacheFileError(f"{name}: expected shape {shape}, found {got}")
    return array


def _get_sliding(
    arrays: dict[str, mx.array],
    name: str,
    layer: SlidingWindowCache,
    offset: object,
    heads: tuple[int, int],
) -> SlidingState:
    if type(offset) is not int or offset < 1:
        raise CacheFileError(f"{name}: offset {offset!r} is not a positive count")
    keys = arrays.get(f"{name}.keys")
    kept = 0 if keys is None else keys.shape[2]
    # what update_and_fetch leaves: every token up to the capacity
    if kept != min(offset, layer.capacity):
        raise CacheFileError(f"{name}: keeps {kept} tokens at offset {offset}")
    hk, d = heads
    shape = (1, hk, kept, d)
    return _get(arrays, f"{name}.keys", shape), _get(arrays, f"{name}.values", shape), offset
