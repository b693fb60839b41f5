"""The values the window and the engine thread exchange (convention 9: only through queued
signals): what a turn asks for, what a loaded model reports, and what the worker needs of a chat
session. Both sides import this module; neither imports the other for these.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from engine import (
    ChatEvent,
    DocumentDecision,
    Message,
    ReasoningEffort,
    SamplingSettings,
    ToolCallRequested,
)

Action = Literal["send", "regenerate", "edit"]
# The name of `make demo`'s model in the window, so nobody mistakes it for gpt-oss.
DEMO_LABEL = "Demo model — not gpt-oss"
Finish = threading.Event | None  # "Finish now": set, the model ends its reasoning and answers


class TurnSession(Protocol):
    """What the worker needs of a chat session (engine.ChatSession; fakes in tests)."""

    @property
    def messages(self) -> tuple[Message, ...]: ...
    @property
    def pending_tool_call(self) -> ToolCallRequested | None: ...
    def set_effort(self, effort: ReasoningEffort | str) -> None: ...
    def set_sampling(self, settings: SamplingSettings) -> None: ...
    def send(
        self, text: str, cancel: threading.Event | None = None, finish: Finish = None
    ) -> Iterator[ChatEvent]: ...
    def regenerate(
        self, cancel: threading.Event | None = None, finish: Finish = None
    ) -> Iterator[ChatEvent]: ...
    def edit_last_user_message(
        self, text: str, cancel: threading.Event | None = None, finish: Finish = None
    ) -> Iterator[ChatEvent]: ...
    def submit_tool_result(
        self,
        call: ToolCallRequested,
        result_text: str,
        cancel: threading.Event | None = None,
        finish: Finish = None,
    ) -> Iterator[ChatEvent]: ...


@dataclass(frozen=True)
class ModelInfo:
    path: str
    context_tokens: int  # what the memory plan allows, at most the model's own context
    profile: str
    dtype: str = ""
    expert_backend: str = ""
    expert_backend_reason: str = ""
    load_seconds: float = 0.0
    fit_message: str = ""
    fits: bool = True  # False when the memory plan says even the smallest profile is tight
    is_demo: bool = False  # `make demo`'s tiny model with scripted replies

    @property
    def name(self) -> str:
        # The demo says what it is wherever the model is named (the status line by Send).
        if self.is_demo:
            return DEMO_LABEL
        return Path(self.path).name or self.path

    def diagnostics(self) -> dict[str, str]:
        """Rows for the About window."""
        rows = {
            "Model": f"{DEMO_LABEL} ({self.path})" if self.is_demo else self.path,
            "Context": f"{self.context_tokens:,} tokens",
            "Profile": self.profile,
            "Expert backend": self.expert_backend
            + (f" ({self.expert_backend_reason})" if self.expert_backend_reason else ""),
            "Activations": self.dtype,
            "Load time": f"{self.load_seconds:.1f} s",
        }
        if self.fit_message:
            rows["Memory"] = self.fit_message
        return {k: v for k, v in rows.items() if v}


@dataclass(frozen=True)
class TurnRequest:
    """One answer to write. `history` is the conversation before the turn as the store has it
    (for "regenerate" and "edit" it ends with the user message being answered or replaced);
    the worker rebuilds its session from it when its own does not match."""

    turn_id: int
    conversation_id: int
    message_id: int  # the assistant row in the store that the answer streams into
    action: Action
    text: str  # the composed user message, for "send" and "edit"
    history: tuple[Message, ...]
    effort: str
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    # How this turn reads its attached documents; "browse" turns search them with the browser.
    documents: DocumentDecision | None = None
    cancel: threading.Event = field(default_factory=threading.Event, compare=False)
    finish: threading.Event = field(default_factory=threading.Event, compare=False)
    # The developer message's instructions (None: the session's own) and the answer's token cap
    # (None: the one the session was made with).
    instructions: str | None = None
    answer_tokens: int | None = None


Loader = Callable[[str, str, Callable[[int, int], None]], tuple[Any, Any, ModelInfo]]
SessionFactory = Callable[[Any, Any, Sequence[Message]], TurnSession]
