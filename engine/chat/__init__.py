"""Harmony chat on the engine: ChatSession, its events, reasoning budgets.

Names are imported on first use (engine/lazy.py): the app shows its window before MLX loads.
"""

from typing import TYPE_CHECKING

from engine.lazy import make_lazy

if TYPE_CHECKING:
    from engine.chat.budget import LoopGuard, ReasoningBudget
    from engine.chat.cache_folder import DEFAULT_MAX_BYTES as DEFAULT_PROMPT_CACHE_BYTES
    from engine.chat.cache_folder import clear_folder as clear_prompt_cache_folder
    from engine.chat.cache_folder import default_folder as default_prompt_cache_folder
    from engine.chat.cache_folder import folder_bytes as prompt_cache_folder_bytes
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
    from engine.chat.prompt_cache import PromptCache, RestoreResult, SaveResult
    from engine.chat.session import ChatSession, TurnEvents
    from engine.chat.tool_approvals import Approvals
    from engine.chat.tool_loop import ToolLoop, declare_tools
    from engine.chat.tool_providers import ProvidersMade, make_tool_providers
    from engine.chat.tool_steps import (
        DEFAULT_MAX_CALLS,
        CitationsResolved,
        LoopEvent,
        LoopEvents,
        ResolvedCitation,
        ToolStep,
    )

_EXPORTS = {
    "Approvals": "engine.chat.tool_approvals",
    "AttachedDocument": "engine.chat.document_mode",
    "ChannelDelta": "engine.chat.events",
    "ChatEvent": "engine.chat.events",
    "ChatSession": "engine.chat.session",
    "CitationsResolved": "engine.chat.tool_steps",
    "CutReason": "engine.chat.events",
    "DEFAULT_MAX_CALLS": "engine.chat.tool_steps",
    "DEFAULT_PROMPT_CACHE_BYTES": "engine.chat.cache_folder:DEFAULT_MAX_BYTES",
    "DocumentDecision": "engine.chat.document_mode",
    "DocumentMode": "engine.chat.document_mode",
    "FinishReason": "engine.chat.events",
    "LoopEvent": "engine.chat.tool_steps",
    "LoopEvents": "engine.chat.tool_steps",
    "LoopGuard": "engine.chat.budget",
    "PrefillProgress": "engine.chat.events",
    "PromptCache": "engine.chat.prompt_cache",
    "ProvidersMade": "engine.chat.tool_providers",
    "ReasoningBudget": "engine.chat.budget",
    "ReasoningCut": "engine.chat.events",
    "ResolvedCitation": "engine.chat.tool_steps",
    "RestoreResult": "engine.chat.prompt_cache",
    "SaveResult": "engine.chat.prompt_cache",
    "ToolCallRequested": "engine.chat.events",
    "ToolLoop": "engine.chat.tool_loop",
    "ToolStep": "engine.chat.tool_steps",
    "TurnEvents": "engine.chat.session",
    "TurnFinished": "engine.chat.events",
    "TurnStats": "engine.chat.events",
    "browser_for": "engine.chat.document_mode",
    "clear_prompt_cache_folder": "engine.chat.cache_folder:clear_folder",
    "compose_turn_message": "engine.chat.document_mode",
    "decide_document_mode": "engine.chat.document_mode",
    "declare_tools": "engine.chat.tool_loop",
    "default_prompt_cache_folder": "engine.chat.cache_folder:default_folder",
    "index_for_browsing": "engine.chat.document_mode",
    "make_tool_providers": "engine.chat.tool_providers",
    "prompt_cache_folder_bytes": "engine.chat.cache_folder:folder_bytes",
    "with_browser": "engine.chat.document_mode",
}
make_lazy(__name__, _EXPORTS)
__all__ = [
    "DEFAULT_MAX_CALLS",
    "DEFAULT_PROMPT_CACHE_BYTES",
    "Approvals",
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
    "ProvidersMade",
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
    "declare_tools",
    "default_prompt_cache_folder",
    "index_for_browsing",
    "make_tool_providers",
    "prompt_cache_folder_bytes",
    "with_browser",
]
