"""One model run of a chat turn: prefill what the cache lacks, then sample and parse until the
model stops, calls a tool, runs out of room, or is cancelled.

Fallbacks, so the user always gets an answer or a clear ending:
- reasoning past the effort's budget, looping (LoopGuard), or the `finish` event set by the
  user ("Finish now") while the model writes its analysis: the run writes
  `<|end|><|start|>assistant<|channel|>final<|message|>` itself and keeps sampling (ReasoningCut);
- a stop (`<|return|>`, `<|call|>` without a recipient, `<|endoftext|>`) before any final-channel
  message: the stop token is dropped and the same final header written instead, once per run;
- a message in another role's name (`<|start|>user...`): the model is writing the other side
  of the conversation, so the turn ends there ("stop") and that message is not kept;
- anything else malformed is the parser's business (it never raises, and routes unlabelled text
  to analysis); sampling ends at the token limits with TurnFinished("length").

Tool calls are routed by their recipient on any channel (gpt-oss sends many from `analysis`):
a complete assistant message with a recipient ends the turn as a call, whether `<|call|>`,
`<|end|>` or `<|return|>` closed it, and text the model writes after it is never sampled. A call
that cannot run as written still ends the turn as a call, with a `problem` for the model.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass

from engine.chat.budget import LoopGuard, ReasoningBudget
from engine.chat.context import CachedContext
from engine.chat.events import (
    ChannelDelta,
    ChatEvent,
    CutReason,
    FinishReason,
    PrefillProgress,
    ReasoningCut,
    ToolCallRequested,
    TurnFinished,
    TurnStats,
)
from engine.chat.prompt import TERMINAL_TOKENS, Prompt, final_header_ids
from engine.chat.structured import FinalChannelConstraint
from engine.chat.tool_calls import ToolCatalog, tool_call
from engine.generate import CANCEL_STEP
from engine.harmony import (
    Author,
    Channel,
    Event,
    HarmonyStreamParser,
    Message,
    MessageDone,
    MessageStarted,
    Role,
    TextContent,
    TextDelta,
    ToolCall,
)
from engine.tokenizer import FIRST_SPECIAL_ID, HarmonyTokenizer, SpecialToken

# A run may force the final channel this many times for budget or loop; after that the token
# limits end it, so a model that keeps reopening its analysis cannot ping-pong forever.
MAX_CUTS = 3


@dataclass(frozen=True)
class RunLimits:
    reasoning_tokens: int  # the effort's budget
    answer_tokens: int  # final-channel tokens before "length"
    max_context: int
    prefill_step: int
    loop: ReasoningBudget  # for the loop guard's settings


class Run:
    """Iterate `events()` once. Afterwards `messages` holds what the model wrote (cut-off
    messages included) and `tool_call` the call it made, if any."""

    def __init__(
        self,
        context: CachedContext,
        tokenizer: HarmonyTokenizer,
        prompt: Prompt,
        limits: RunLimits,
        cancel: threading.Event,
        tools: ToolCatalog | None = None,
        finish: threading.Event | None = None,
        constraint: FinalChannelConstraint | None = None,
    ) -> None:
        """`constraint` (structured output) masks the final message's tokens; the context's
        sampler must be its `wrap` of the sampler."""
        self._ctx = context
        self._tokenizer = tokenizer
        self._prompt = prompt
        self._limits = limits
        self._cancel = cancel
        self._finish_now = finish or threading.Event()
        self._tools = tools or ToolCatalog()
        self._parser = HarmonyStreamParser(tokenizer)
        self._guard = LoopGuard.from_budget(limits.loop)
        self._constraint = constraint
        self.messages: list[Message] = []
        self.tool_call: ToolCallRequested | None = None
        self._open: MessageStarted | None = None
        self._answer: list[str] = []
        self._final_seen = False
        self._foreign = False  # the model began a message in another role's name
        self._forced_answer = False
        self._cuts = 0
        self._kept = self._generated = self._reasoning = self._answered = self._injected = 0
        self._t0 = self._t_first = self._t_last = time.perf_counter()
        self._header_length = len(final_header_ids(tokenizer, close_message=True))

    def events(self) -> Iterator[ChatEvent]:
        self._t0 = time.perf_counter()
        if not (yield from self._prefill()):
            yield from self._finish("cancel")
            return
        while True:
            if self._cancel.is_set():
                yield from self._finish("cancel")
                return
            token = self._ctx.take().id
            self._count(token)
            if self._constraint is not None:
                self._constraint.consume(token)
            if token in TERMINAL_TOKENS and self._needs_answer():
                self._reasoning += 1
                self._forced_answer = True
                if not self._room(self._header_length):
                    yield from self._finish("length")
                    return
                yield from self._inject([], "no_answer")
                continue
            in_final = self._open is not None and self._open.channel == Channel.FINAL
            out = self._parse([token])
            if in_final:  # the answer's text and its end token
                self._answered += 1
            else:
                self._reasoning += 1
            if token in TERMINAL_TOKENS or self.tool_call is not None or self._foreign:
                yield from out
                yield from self._finish("tool_call" if self.tool_call else "stop")
                return
            cut = self._cut_reason(token)
            if cut is not None and self._room(self._header_length + 1):
                yield from out
                yield from self._inject([token], cut)
                continue
            if self._over_limits() or not self._room(1):
                yield from out
                yield from self._finish("length")
                return
            self._ctx.push(token)
            if token == SpecialToken.END:
                self._ctx.snapshot()  # a message boundary: later runs may rewind to it
            yield from out

    def _prefill(self) -> Generator[ChatEvent, None, bool]:
        """Feeds the prompt after the reusable prefix in chunks of at most CANCEL_STEP tokens
        (so Stop lands soon), snapshotting at the prompt's marks; returns False if cancelled."""
        ids = self._prompt.ids
        self._kept = self._ctx.rewind(ids)
        total, step = len(ids) - self._kept, min(self._limits.prefill_step, CANCEL_STEP)
        stops = {self._kept + i for i in range(step, total, step)}
        stops |= {m for m in self._prompt.marks if self._kept < m <= len(ids)} | {len(ids)}
        start = self._kept
        for end in sorted(stops):
            if self._cancel.is_set():
                return False
            self._ctx.feed(ids[start:end], sample=end == len(ids))
            if end in self._prompt.marks:
                self._ctx.snapshot(compact=True)
            yield PrefillProgress(end - self._kept, total, time.perf_counter() - self._t0)
            start = end
        return True

    def _needs_answer(self) -> bool:
        """A stop with no final-channel message yet, and not the end of a tool call."""
        calling = self._open is not None and self._open.recipient is not None
        return not (self._final_seen or self._forced_answer or calling)

    def _cut_reason(self, token: int) -> CutReason | None:
        """Budget, loop and the user's "Finish now" only count analysis text, and only cut inside
        it (never a tool call or an answer in progress)."""
        opened = self._open
        if token >= FIRST_SPECIAL_ID or opened is None:
            return None
        if opened.channel != Channel.ANALYSIS or opened.recipient is not None:
            return None
        looping = self._guard.add(token)
        if self._cuts >= MAX_CUTS:
            return None
        if self._finish_now.is_set():
            return "user"
        if looping:
            return "loop"
        return "budget" if self._reasoning >= self._limits.reasoning_tokens else None

    def _inject(self, before: Sequence[int], reason: CutReason) -> Iterator[ChatEvent]:
        """Feeds `before` (a sampled token not yet in the cache) and the final header, then
        queues the next sample; reports the cut before the answer starts."""
        header = final_header_ids(self._tokenizer, close_message=self._open is not None)
        self._cuts += reason != "no_answer"
        self._injected += len(header)
        yield ReasoningCut(reason, self._reasoning)
        yield from self._parse(header)
        self._ctx.feed([*before, *header], sample=True)

    def _room(self, n: int) -> bool:
        return self._ctx.offset + n <= self._limits.max_context

    def _over_limits(self) -> bool:
        limits = self._limits
        total = limits.reasoning_tokens + limits.answer_tokens
        return self._answered >= limits.answer_tokens or self._generated >= total

    def _count(self, token: int) -> None:
        self._generated += 1
        self._t_last = time.perf_counter()
        if self._generated == 1:
            self._t_first = self._t_last

    def _parse(self, tokens: Sequence[int]) -> list[ChatEvent]:
        events: list[Event] = []
        for token in tokens:
            events += self._parser.feed(token)
        return self._convert(events)

    def _convert(self, events: Sequence[Event]) -> list[ChatEvent]:
        out: list[ChatEvent] = []
        for e in events:
            if isinstance(e, MessageStarted):
                self._open = e
                self._final_seen |= e.channel == Channel.FINAL
                answer = e.channel == Channel.FINAL and e.recipient is None
                if self._constraint is not None and answer:
                    self._constraint.begin()
                self._foreign |= e.role is not Role.ASSISTANT
            elif isinstance(e, TextDelta):
                out.append(ChannelDelta(e.channel.value, e.text, e.recipient))
                if e.channel == Channel.FINAL and e.recipient is None:
                    self._answer.append(e.text)
            elif isinstance(e, MessageDone):
                self._open = None
                if e.complete or e.text:
                    self.messages.append(_history_message(e))
            elif isinstance(e, ToolCall):
                call = tool_call(
                    e.recipient, e.arguments_json_text, e.channel.value, e.content_type, self._tools
                )
                self.tool_call = call
                out.append(call)
        return out

    def _finish(self, reason: FinishReason) -> Iterator[ChatEvent]:
        yield from self._convert(self._parser.finish("cancel" if reason == "cancel" else "end"))
        yield TurnFinished(reason, self._stats(), "".join(self._answer))

    def _stats(self) -> TurnStats:
        produced = self._generated
        prefilled = len(self._prompt.ids) - self._kept
        prefill_s = self._t_first - self._t0
        decode_s = self._t_last - self._t_first
        return TurnStats(
            prompt_tokens=len(self._prompt.ids),
            reused_tokens=self._kept,
            prefill_tokens=prefilled,
            generated_tokens=produced,
            reasoning_tokens=self._reasoning,
            answer_tokens=self._answered,
            injected_tokens=self._injected,
            ttft_s=prefill_s if produced else 0.0,
            prefill_tokens_per_s=prefilled / prefill_s if produced and prefill_s > 0 else 0.0,
            decode_tokens_per_s=(produced - 1) / decode_s if produced > 1 and decode_s > 0 else 0.0,
            elapsed_s=time.perf_counter() - self._t0,
        )


def _history_message(done: MessageDone) -> Message:
    """The message as history keeps it: the resolved channel, so text the model left unlabelled
    counts as analysis and is dropped with it next turn."""
    return Message(
        Author(done.role, done.author_name),
        (TextContent(done.text),),
        done.channel.value,
        done.recipient,
        done.content_type,
    )
