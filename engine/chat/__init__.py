"""Harmony chat on the engine: ChatSession, its events, reasoning budgets."""

from engine.chat.budget import LoopGuard, ReasoningBudget
from engine.chat.document_mode import (
    AttachedDocument,
    DocumentDecision,
    DocumentMode,
    browser_for,
    compose_turn_message,
    decide_document_mode,
    index_for_browsing,
    with_browser,
)
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
from engine.chat.tool_loop import DEFAULT_MAX_CALLS, LoopEvent, LoopEvents, ToolLoop
from engine.chat.tool_steps import CitationsResolved, ResolvedCitation, ToolStep

__all__ = [
    "DEFAULT_MAX_CALLS",
    "DEFAULT_PROMPT_CACHE_BYTES",
    "AttachedDocument",
    "ChannelDelta",
    "ChatEvent",
    "ChatSession",
    "CitationsResolved",
    "CutReason",
    "DocumentDecision",
    "DocumentMode",
    "FinishReason",
    "LoopEvent",
    "LoopEvents",
    "LoopGuard",
    "PrefillProgress",
    "PromptCache",
    "ReasoningBudget",
    "ReasoningCut",
    "ResolvedCitation",
    "RestoreResult",
    "SaveResult",
    "ToolCallRequested",
    "ToolLoop",
    "ToolStep",
    "TurnEvents",
    "TurnFinished",
    "TurnStats",
    "browser_for",
    "clear_prompt_cache_folder",
    "compose_turn_message",
    "decide_document_mode",
    "default_prompt_cache_folder",
    "index_for_browsing",
    "prompt_cache_folder_bytes",
    "with_browser",
]
