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
from engine.chat.prompt_cache import DEFAULT_MAX_BYTES as DEFAULT_PROMPT_CACHE_BYTES
from engine.chat.prompt_cache import PromptCache, RestoreResult, SaveResult
from engine.chat.prompt_cache import clear_folder as clear_prompt_cache_folder
from engine.chat.prompt_cache import default_folder as default_prompt_cache_folder
from engine.chat.prompt_cache import folder_bytes as prompt_cache_folder_bytes
from engine.chat.session import ChatSession, TurnEvents

__all__ = [
    "DEFAULT_PROMPT_CACHE_BYTES",
    "ChannelDelta",
    "ChatEvent",
    "ChatSession",
    "CutReason",
    "FinishReason",
    "LoopGuard",
    "PrefillProgress",
    "PromptCache",
    "ReasoningBudget",
    "ReasoningCut",
    "RestoreResult",
    "SaveResult",
    "ToolCallRequested",
    "TurnEvents",
    "TurnFinished",
    "TurnStats",
    "clear_prompt_cache_folder",
    "default_prompt_cache_folder",
    "prompt_cache_folder_bytes",
]
