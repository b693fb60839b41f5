"""What a chat turn reports, as frozen dataclasses of plain values (no mx.array), in order:

PrefillProgress* -> (ChannelDelta | ReasoningCut)* -> ToolCallRequested? -> TurnFinished.

Every turn ends with exactly one TurnFinished, also when it is cancelled or runs out of room.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

FinishReason: TypeAlias = Literal["stop", "tool_call", "length", "cancel"]
# budget: the effort's reasoning budget ran out; loop: the analysis repeats itself;
# no_answer: the model stopped without writing a final-channel message; user: the user asked
# for the answer now ("Finish now").
CutReason: TypeAlias = Literal["budget", "loop", "no_answer", "user"]


@dataclass(frozen=True)
class PrefillProgress:
    """`done` of `total` new prompt tokens are processed (total excludes reused cache tokens),
    `elapsed_s` after the turn started (restoring and rewinding the cache included)."""

    done: int
    total: int
    elapsed_s: float = 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds until the prompt is processed at the rate so far; None before any rate."""
        if self.done <= 0 or self.elapsed_s <= 0:
            return None
        return self.elapsed_s * (self.total - self.done) / self.done


@dataclass(frozen=True)
class ChannelDelta:
    """Text the model wrote on `channel` ("analysis", "commentary" or "final").

    `recipient` is set for a tool call's arguments (e.g. "functions.get_weather"); those are
    also reported whole by ToolCallRequested, so a view may skip these deltas.
    """

    channel: str
    text: str
    recipient: str | None = None


@dataclass(frozen=True)
class ToolCallRequested:
    """The model called a tool; the turn ends with reason "tool_call" and continues when the
    caller passes this object and the tool's output to `ChatSession.submit_tool_result`.

    Calls come on any channel (gpt-oss often calls from `analysis`). When `problem` is set the
    call cannot run as written (no such tool, arguments that are not JSON): answer it with
    `error_result()`, which tells the model what to fix."""

    recipient: str  # as the model wrote it, e.g. "functions.get_weather"
    arguments_json: str  # the raw argument text (JSON when the model follows the schema)
    arguments: Any = field(default=None, compare=False)  # parsed JSON, or None if unparseable
    channel: str = "commentary"
    content_type: str | None = field(default=None, compare=False)  # e.g. "<|constrain|>json"
    problem: str | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        """The function name without the "functions." namespace."""
        return self.recipient.removeprefix("functions.")

    def error_result(self) -> str | None:
        """The tool result that reports `problem` to the model, or None if there is none."""
        return None if self.problem is None else json.dumps({"error": self.problem})


@dataclass(frozen=True)
class ReasoningCut:
    """The session ended the analysis itself and opened the final channel, so an answer follows.

    `tokens` is how many reasoning tokens the turn had sampled by then.
    """

    reason: CutReason
    tokens: int


@dataclass(frozen=True)
class TurnStats:
    prompt_tokens: int  # the whole rendered prompt
    reused_tokens: int  # of those, already in the KV cache
    prefill_tokens: int  # of those, processed now (prompt_tokens - reused_tokens)
    generated_tokens: int  # sampled tokens, stop token included
    reasoning_tokens: int  # sampled tokens outside final-channel messages
    answer_tokens: int  # sampled tokens inside final-channel messages
    injected_tokens: int  # tokens the session wrote itself (ReasoningCut)
    ttft_s: float  # turn started -> first token sampled
    prefill_tokens_per_s: float
    decode_tokens_per_s: float  # tokens after the first, per second
    elapsed_s: float


@dataclass(frozen=True)
class TurnFinished:
    """The last event of every turn. With reason "length" or "cancel" the text so far is kept in
    the session's messages. `answer` is this run's final-channel text; it is empty when the
    model wrote none (cancelled or cut off first, or a tool call)."""

    reason: FinishReason
    stats: TurnStats
    answer: str = ""


ChatEvent: TypeAlias = (
    PrefillProgress | ChannelDelta | ToolCallRequested | ReasoningCut | TurnFinished
)
