"""The contract between the chat's tool loop and a kind of tool (python, an MCP server).

A provider is created once per chat (python keeps its interpreter's state between calls) and
closed when the chat is closed or restarted. `call` runs on the engine thread and must return
within its own time limit or soon after `cancel` is set; it never raises for anything the tool
did (a crash, a hang, garbage output): those become an outcome with `is_error` and a text the
model can read, so one bad call never ends the chat.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

from engine.harmony import ToolDescription, ToolNamespace

# What the model reads of one result at most; the rest is cut with a visible note.
DEFAULT_OUTPUT_CHARS = 16_000


@dataclass(frozen=True)
class ToolOutcome:
    """One call's result: `text` goes back to the model as the tool message."""

    text: str
    is_error: bool = False
    duration_s: float = 0.0
    truncated: bool = False


class ToolProvider(Protocol):
    """A kind of tool offered to the model."""

    def system_namespaces(self) -> tuple[ToolNamespace, ...]:
        """Built-in namespaces for the system message (python's), else ()."""
        ...

    def functions(self) -> tuple[ToolDescription, ...]:
        """Functions for the developer message's `functions` namespace (MCP tools), else ()."""
        ...

    def handles(self, recipient: str) -> bool:
        """Whether a call to `recipient` ("python", "functions.NAME") is this provider's."""
        ...

    def needs_approval(self, recipient: str) -> bool:
        """Whether the user must approve a call before it runs (read-only tools need not)."""
        ...

    def call(self, recipient: str, arguments: str, cancel: threading.Event) -> ToolOutcome:
        """Runs one call; `arguments` is the message text (code for python, JSON for functions)."""
        ...

    def close(self) -> None:
        """Stops whatever the provider started (processes, connections); idempotent."""
        ...


def truncate_output(text: str, limit: int = DEFAULT_OUTPUT_CHARS) -> tuple[str, bool]:
    """`text` cut to `limit` characters, keeping its head and tail, with a note the model and the
    user both see; and whether anything was cut."""
    if len(text) <= limit:
        return text, False
    head = limit * 3 // 4
    tail = limit - head
    cut = len(text) - head - tail
    note = f"\n[… {cut:,} characters cut: the first {head:,} and last {tail:,} are shown …]\n"
    return text[:head] + note + text[len(text) - tail :], True
