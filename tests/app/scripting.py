"""The real ChatSession with the model's tokens chosen in advance (engine.testing.scripted):
the tiny model, KV cache, harmony parser and session all run; only the sampler is scripted."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from engine import ChatSession, HarmonyTokenizer, Message
from engine.testing.scripted import ScriptedSampler, reply_ids

GATE_TIMEOUT_S = 30.0


class ScriptedSessions:
    """A session factory for EngineWorker; every session shares one scripted sampler, so a test
    scripts each turn with `reply` before sending, whatever session the worker builds."""

    def __init__(self, tok: HarmonyTokenizer, **options: Any) -> None:
        self.tok = tok
        self.sampler = ScriptedSampler(on_sample=self._on_sample)
        self.sessions: list[ChatSession] = []
        self.options = options
        self._gates: dict[int, threading.Event] = {}
        self.reached: dict[int, threading.Event] = {}
        self.after_cancel = 0
        self.cancel_seen: threading.Event | None = None

    def __call__(self, model: Any, tokenizer: Any, history: Sequence[Message]) -> ChatSession:
        session = ChatSession.from_messages(
            model, tokenizer, history, sampler=self.sampler, **self.options
        )
        self.sessions.append(session)
        return session

    def reply(self, final: str | None = None, *, analysis: str | None = None) -> list[int]:
        messages = []
        if analysis is not None:
            messages.append(Message.assistant(analysis, channel="analysis"))
        if final is not None:
            messages.append(Message.assistant(final))
        ids = reply_ids(self.tok, messages)
        self.sampler.extend(ids)
        return ids

    def hold_at(self, sample: int) -> threading.Event:
        """Sample number `sample` (counted over the whole test) waits until the returned event
        is set; `reached[sample]` is set when it starts waiting."""
        self._gates[sample] = threading.Event()
        self.reached[sample] = threading.Event()
        return self._gates[sample]

    def watch_cancel(self, cancel: threading.Event) -> None:
        """Count the tokens sampled after `cancel` was set (Stop must halt within one)."""
        self.cancel_seen = cancel

    def _on_sample(self, i: int) -> None:
        if self.cancel_seen is not None and self.cancel_seen.is_set():
            self.after_cancel += 1
        gate = self._gates.get(i)
        if gate is not None:
            self.reached[i].set()
            gate.wait(GATE_TIMEOUT_S)

    def prompt_text(self, session: int = -1) -> str:
        """What the model actually read: the KV cache's tokens, decoded."""
        return self.tok.decode(list(self.sessions[session].cached_tokens))
