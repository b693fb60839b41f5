"""Harmony chat on the engine: ChatSession, its events, reasoning budgets."""

from engine.chat.budget import LoopGuard, ReasoningBudget
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
from engine.chat.session import ChatSession, TurnEvents

__all__ = [
    "ChannelDelta",
    "ChatEvent",
    "ChatSession",
    "CutReason",
    "FinishReason",
    "LoopGuard",
    "PrefillProgress",
    "ReasoningBudget",
    "ReasoningCut",
    "ToolCallRequested",
    "TurnEvents",
    "TurnFinished",
    "TurnStats",
]
