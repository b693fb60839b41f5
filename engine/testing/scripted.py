"""Scripted sampling for tests: the real model computes, but the tokens are chosen in advance.

Random weights produce garbage, so harmony flows (analysis then final, tool calls, budget cuts,
loops, malformed output) are driven by a sampler that returns the next scripted id whatever the
logits say, while the model, the KV cache and the session run for real.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence

import mlx.core as mx
import numpy as np

from engine.harmony import Message, Role, render_message
from engine.harmony.render import TextEncoder
from engine.tokenizer import SpecialToken


class ScriptExhaustedError(AssertionError):
    """The session sampled more tokens than the test scripted."""


class ScriptedSampler:
    """A sampler (log-probabilities (1, V) -> ids (1,)) that returns scripted ids in order.

    With `record`, it keeps each call's log-probabilities as numpy, so a test can compare what
    the model computed with a from-scratch forward pass. `on_sample(i)` runs before the i-th
    (0-based) sample is returned, e.g. to set a cancel event at a chosen point.
    """

    def __init__(
        self,
        tokens: Iterable[int] = (),
        *,
        record: bool = False,
        on_sample: Callable[[int], None] | None = None,
    ) -> None:
        self._script = [int(t) for t in tokens]
        self._record = record
        self.on_sample = on_sample
        self.calls = 0
        self.seen: list[np.ndarray] = []

    def extend(self, tokens: Iterable[int]) -> None:
        self._script += [int(t) for t in tokens]

    @property
    def remaining(self) -> int:
        return len(self._script) - self.calls

    def discard_remaining(self) -> list[int]:
        """Drops and returns the scripted ids not sampled yet: what the model would have written
        after the point where the session ended its turn."""
        rest = self._script[self.calls :]
        del self._script[self.calls :]
        return rest

    def __call__(self, logprobs: mx.array) -> mx.array:
        if self.calls >= len(self._script):
            raise ScriptExhaustedError(f"the script has only {len(self._script)} tokens")
        if self._record:
            self.seen.append(np.array(logprobs[0].astype(mx.float32)))
        if self.on_sample is not None:
            self.on_sample(self.calls)
        token = self._script[self.calls]
        self.calls += 1
        return mx.array([token], dtype=mx.uint32)


def cancel_at(n: int, event: threading.Event) -> Callable[[int], None]:
    """An `on_sample` hook that sets `event` when sample `n` is queued, i.e. right after the
    n-th sampled token was fed back: what a user's Stop does between tokens."""

    def hook(i: int) -> None:
        if i == n:
            event.set()

    return hook


def reply_ids(
    tokenizer: TextEncoder, messages: Sequence[Message], *, end: int | None = None
) -> list[int]:
    """The ids a model samples to write `messages` after a prompt ending `<|start|>assistant`:
    their rendering without that opening, with the last end token replaced by `end` (default:
    <|return|> after a final message; a tool call already ends with <|call|>)."""
    ids: list[int] = []
    for message in messages:
        ids += render_message(message).token_ids(tokenizer)
    opening = [int(SpecialToken.START), *tokenizer.encode_ordinary(Role.ASSISTANT.value)]
    if ids[: len(opening)] != opening:
        raise ValueError("the reply must start with an assistant message")
    ids = ids[len(opening) :]
    if end is None and ids[-1] == SpecialToken.END:
        end = SpecialToken.RETURN
    if end is not None:
        ids[-1] = int(end)
    return ids
