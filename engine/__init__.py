"""OSS Desk's engine: gpt-oss in MLX. Qt-free; the app uses only what this module exports.

No mx.array crosses this boundary: callers pass and receive ints, strings, numpy arrays and frozen
dataclasses.
"""

from engine.chat import (
    ChannelDelta,
    ChatEvent,
    ChatSession,
    PrefillProgress,
    ReasoningBudget,
    ReasoningCut,
    ToolCallRequested,
    TurnEvents,
    TurnFinished,
    TurnStats,
)
from engine.config import ModelArgs
from engine.errors import (
    CacheTrimError,
    ContextOverflowError,
    EngineError,
    KernelUnavailableError,
    ModelLoadError,
    TokenizerError,
)
from engine.generate import Finished, GenerationStats, Token
from engine.harmony import (
    Author,
    Channel,
    Conversation,
    DeveloperContent,
    Message,
    ReasoningEffort,
    Role,
    SystemContent,
    TextContent,
    ToolDescription,
)
from engine.inference import LoadedModel, load_model
from engine.sampling import GREEDY, SamplingSettings
from engine.tokenizer import HarmonyTokenizer

__all__ = [
    "GREEDY",
    "Author",
    "CacheTrimError",
    "Channel",
    "ChannelDelta",
    "ChatEvent",
    "ChatSession",
    "ContextOverflowError",
    "Conversation",
    "DeveloperContent",
    "EngineError",
    "Finished",
    "GenerationStats",
    "HarmonyTokenizer",
    "KernelUnavailableError",
    "LoadedModel",
    "Message",
    "ModelArgs",
    "ModelLoadError",
    "PrefillProgress",
    "ReasoningBudget",
    "ReasoningCut",
    "ReasoningEffort",
    "Role",
    "SamplingSettings",
    "SystemContent",
    "TextContent",
    "Token",
    "TokenizerError",
    "ToolCallRequested",
    "ToolDescription",
    "TurnEvents",
    "TurnFinished",
    "TurnStats",
    "load_model",
]
