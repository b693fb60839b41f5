"""Token generation: chunked prefill, then one token at a time, cancellable between tokens."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import mlx.core as mx

from engine.cache import LayerCache
from engine.model import Model
from engine.sampling import Sampler

StopReason = Literal["stop", "length", "cancel"]
DEFAULT_PREFILL_STEP = 512
# Prefill runs in pieces of at most this many tokens and checks for Stop between them: MLX cannot
# interrupt an evaluation, so this bounds the work left once Stop is pressed.
CANCEL_STEP = 64


@dataclass(frozen=True)
class GenerationStats:
    prompt_tokens: int
    generated_tokens: int
    ttft_s: float  # prompt submitted -> first token known
    prefill_tokens_per_s: float
    decode_tokens_per_s: float  # tokens after the first, per second


@dataclass(frozen=True)
class Token:
    id: int
    logprob: float


@dataclass(frozen=True)
class Finished:
    reason: StopReason
    stats: GenerationStats
    stop_token: int | None = None


def prefill(
    model: Model,
    tokens: Sequence[int],
    cache: Sequence[LayerCache],
    step: int = DEFAULT_PREFILL_STEP,
    on_progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> mx.array | None:
    """Runs all of `tokens` through the model in chunks of `step` (at most CANCEL_STEP).

    Returns the last position's logits (1, V), or None if cancelled, which is checked before
    each chunk. Chunking bounds the attention scores and activations held at once, whatever the
    prompt's length.
    """
    if not tokens:
        raise ValueError("prefill needs at least one token")
    if step < 1:
        raise ValueError("step must be positive")
    step = min(step, CANCEL_STEP)
    logits: mx.array | None = None
    n = len(tokens)
    for start in range(0, n, step):
        if cancel is not None and cancel.is_set():
            return None
        chunk = mx.array(list(tokens[start : start + step]), dtype=mx.uint32)[None]
        logits = model(chunk, cache=cache, last_only=True)[:, -1, :]
        mx.eval(logits)
        if on_progress is not None:
            on_progress(min(start + step, n), n)
    return logits


def generate_tokens(
    model: Model,
    prompt: Sequence[int],
    cache: Sequence[LayerCache],
    sampler: Sampler,
    *,
    stop_ids: Collection[int] = (),
    max_tokens: int = 256,
    cancel: threading.Event | None = None,
    prefill_step: int = DEFAULT_PREFILL_STEP,
    on_prefill: Callable[[int, int], None] | None = None,
) -> Iterator[Token | Finished]:
    """Yields each generated Token, then one Finished with the reason and timing.

    The cache must already hold everything before `prompt`; afterwards it holds the prompt and
    every generated token except the last one (which was never fed back).
    """
    t0 = time.perf_counter()
    logits = prefill(model, prompt, cache, prefill_step, on_prefill, cancel)
    stop = set(stop_ids)
    produced = 0
    t_first = t_last = t0

    def stats() -> GenerationStats:
        prefill_s = max(t_first - t0, 1e-9)
        decode_s = t_last - t_first
        return GenerationStats(
            prompt_tokens=len(prompt),
            generated_tokens=produced,
            ttft_s=t_first - t0 if produced else 0.0,
            prefill_tokens_per_s=len(prompt) / prefill_s if produced else 0.0,
            decode_tokens_per_s=(produced - 1) / decode_s if produced > 1 and decode_s > 0 else 0.0,
        )

    if logits is None:
        yield Finished("cancel", stats())
        return

    def sample(lg: mx.array) -> tuple[mx.array, mx.array]:
        logprobs = lg - mx.logsumexp(lg, axis=-1, keepdims=True)
        return sampler(logprobs), logprobs

    token, logprobs = sample(logits)
    mx.async_eval(token, logprobs)
    while True:
        if produced >= max_tokens:
            yield Finished("length", stats())
            return
        token_id = int(token.item())  # type: ignore[arg-type]
        logprob = float(logprobs[0, token_id].item())  # type: ignore[arg-type]
        produced += 1
        t_last = time.perf_counter()
        if produced == 1:
            t_first = t_last
        if token_id in stop:
            yield Token(token_id, logprob)
            yield Finished("stop", stats(), stop_token=token_id)
            return
        if produced < max_tokens:
            # Queue the next step before handing this token out, so the device works meanwhile.
            next_logits = model(token.reshape(1, 1), cache=cache)[:, -1, :]
            token, logprobs = sample(next_logits)
            mx.async_eval(token, logprobs)
        yield Token(token_id, logprob)
        if cancel is not None and cancel.is_set():
            if produced < max_tokens:
                mx.eval(token)  # let the queued step land so the cache stays consistent
            yield Finished("cancel", stats())
            return


class Decoder:
    """Step-wise decoding for callers that interleave tokens of their own with sampled ones.

    `feed(tokens)` runs tokens through the model and, with `sample=True`, queues a sample after
    them; `take()` waits for that sample; `push(token_id)` feeds one token back and queues the
    next sample. Each sample is queued before the caller handles the previous token, so the
    device computes while the caller works. The cache holds exactly the tokens fed so far.
    """

    def __init__(self, model: Model, cache: Sequence[LayerCache], sampler: Sampler) -> None:
        self._model = model
        self._cache = cache
        self._sampler = sampler
        self._pending: tuple[mx.array, mx.array] | None = None

    def feed(self, tokens: Sequence[int], *, sample: bool) -> None:
        """Runs `tokens` (one chunk: the caller bounds its length) through the model."""
        if not tokens:
            raise ValueError("feed needs at least one token")
        chunk = mx.array([int(t) for t in tokens], dtype=mx.uint32)[None]
        logits = self._model(chunk, cache=self._cache, last_only=True)[:, -1, :]
        self._pending = None
        if sample:
            self._queue(logits)
        else:
            mx.eval(logits)

    def push(self, token_id: int) -> None:
        self.feed([token_id], sample=True)

    def take(self) -> Token:
        """The token sampled after the last fed one; raises if nothing was queued."""
        if self._pending is None:
            raise RuntimeError("no sample is queued: feed tokens with sample=True first")
        token, logprobs = self._pending
        self._pending = None
        token_id = int(token.item())  # type: ignore[arg-type]
        return Token(token_id, float(logprobs[0, token_id].item()))  # type: ignore[arg-type]

    def _queue(self, logits: mx.array) -> None:
        logprobs = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
        token = self._sampler(logprobs)
        mx.async_eval(token, logprobs)
        self._pending = (token, logprobs)
