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
from engine.documents import SUPPORTED_SUFFIXES as DOCUMENT_SUFFIXES
from engine.documents import (
    ExtractedDocument,
    FitReport,
    attachment_block,
    check_fits,
    compose_user_message,
    extract,
)
from engine.download import (
    DiskCheck,
    DownloadCancelled,
    DownloadPlan,
    DownloadProgress,
    RetryPolicy,
    check_disk,
    download,
    plan_download,
)
from engine.errors import (
    CacheTrimError,
    ContextOverflowError,
    DownloadError,
    EngineError,
    KernelUnavailableError,
    ModelLoadError,
    TokenizerError,
    UnsupportedDocumentError,
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
from engine.memory import MachineBudget, MemoryPlan, Verdict, machine_budget, plan_memory, recommend
from engine.sampling import GREEDY, SamplingSettings
from engine.tokenizer import HarmonyTokenizer
from engine.weights import checkpoint_files

__all__ = [
    "DOCUMENT_SUFFIXES",
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
    "DiskCheck",
    "DownloadCancelled",
    "DownloadError",
    "DownloadPlan",
    "DownloadProgress",
    "EngineError",
    "ExtractedDocument",
    "Finished",
    "FitReport",
    "GenerationStats",
    "HarmonyTokenizer",
    "KernelUnavailableError",
    "LoadedModel",
    "MachineBudget",
    "MemoryPlan",
    "Message",
    "ModelArgs",
    "ModelLoadError",
    "PrefillProgress",
    "ReasoningBudget",
    "ReasoningCut",
    "ReasoningEffort",
    "RetryPolicy",
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
    "UnsupportedDocumentError",
    "Verdict",
    "attachment_block",
    "check_disk",
    "check_fits",
    "checkpoint_files",
    "compose_user_message",
    "download",
    "extract",
    "load_model",
    "machine_budget",
    "plan_download",
    "plan_memory",
    "recommend",
]
