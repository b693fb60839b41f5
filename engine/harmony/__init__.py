"""OpenAI's harmony chat format for gpt-oss: conversations, rendering and streaming parsing.

Implemented from the format's documentation and test data on top of `engine.tokenizer`, so it works
offline (the `openai-harmony` package downloads its vocabulary at run time). Its renderings are
checked token for token against openai-harmony in tests (tests/engine/harmony/*oracle*).
"""

from engine.harmony.builtin_tools import browser_namespace, python_namespace
from engine.harmony.conversation import (
    CONSTRAIN_JSON,
    Author,
    Channel,
    Content,
    Conversation,
    DeveloperContent,
    Message,
    ReasoningEffort,
    Role,
    SystemContent,
    TextContent,
    ToolDescription,
    ToolNamespace,
)
from engine.harmony.parser import (
    Event,
    HarmonyStreamParser,
    MessageDone,
    MessageStarted,
    Stopped,
    StopReason,
    TextDelta,
    ToolCall,
    parse_messages,
)
from engine.harmony.render import (
    Rendering,
    drop_analysis_before_first_final,
    drop_earlier_turns_analysis,
    render_conversation,
    render_for_completion,
    render_for_training,
    render_message,
)
from engine.harmony.schema_ts import schema_to_typescript

__all__ = [
    "CONSTRAIN_JSON",
    "Author",
    "Channel",
    "Content",
    "Conversation",
    "DeveloperContent",
    "Event",
    "HarmonyStreamParser",
    "Message",
    "MessageDone",
    "MessageStarted",
    "ReasoningEffort",
    "Rendering",
    "Role",
    "StopReason",
    "Stopped",
    "SystemContent",
    "TextContent",
    "TextDelta",
    "ToolCall",
    "ToolDescription",
    "ToolNamespace",
    "browser_namespace",
    "drop_analysis_before_first_final",
    "drop_earlier_turns_analysis",
    "parse_messages",
    "python_namespace",
    "render_conversation",
    "render_for_completion",
    "render_for_training",
    "render_message",
    "schema_to_typescript",
]
