"""OpenAI's harmony chat format for gpt-oss: conversations, rendering and streaming parsing.

Implemented from the format's documentation and test data on top of `engine.tokenizer`, so it works
offline (the `openai-harmony` package downloads its vocabulary at run time). Its renderings are
checked token for token against openai-harmony in tests (tests/engine/harmony/*oracle*).

Names are imported on first use (engine/lazy.py): the app shows its window before MLX loads.
"""

from typing import TYPE_CHECKING

from engine.lazy import make_lazy

if TYPE_CHECKING:
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

_EXPORTS = {
    "Author": "engine.harmony.conversation",
    "CONSTRAIN_JSON": "engine.harmony.conversation",
    "Channel": "engine.harmony.conversation",
    "Content": "engine.harmony.conversation",
    "Conversation": "engine.harmony.conversation",
    "DeveloperContent": "engine.harmony.conversation",
    "Event": "engine.harmony.parser",
    "HarmonyStreamParser": "engine.harmony.parser",
    "Message": "engine.harmony.conversation",
    "MessageDone": "engine.harmony.parser",
    "MessageStarted": "engine.harmony.parser",
    "ReasoningEffort": "engine.harmony.conversation",
    "Rendering": "engine.harmony.render",
    "Role": "engine.harmony.conversation",
    "StopReason": "engine.harmony.parser",
    "Stopped": "engine.harmony.parser",
    "SystemContent": "engine.harmony.conversation",
    "TextContent": "engine.harmony.conversation",
    "TextDelta": "engine.harmony.parser",
    "ToolCall": "engine.harmony.parser",
    "ToolDescription": "engine.harmony.conversation",
    "ToolNamespace": "engine.harmony.conversation",
    "browser_namespace": "engine.harmony.builtin_tools",
    "drop_analysis_before_first_final": "engine.harmony.render",
    "drop_earlier_turns_analysis": "engine.harmony.render",
    "parse_messages": "engine.harmony.parser",
    "python_namespace": "engine.harmony.builtin_tools",
    "render_conversation": "engine.harmony.render",
    "render_for_completion": "engine.harmony.render",
    "render_for_training": "engine.harmony.render",
    "render_message": "engine.harmony.render",
    "schema_to_typescript": "engine.harmony.schema_ts",
}
make_lazy(__name__, _EXPORTS)
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
