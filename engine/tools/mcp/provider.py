"""`McpTools`: the configured MCP servers' tools offered to the model as harmony functions.

Each tool is the function `SERVER__TOOL` (both parts reduced to letters, digits and `_`, cut to 64
characters, suffixed `_2`... on a collision), with the tool's description and input schema. MCP
tools may change things on the user's machine, so every call needs the user's approval.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

import mcp_types as types

from engine.harmony import ToolDescription, ToolNamespace
from engine.tools.base import ToolOutcome
from engine.tools.mcp.config import ServerConfig
from engine.tools.mcp.manager import (
    DEFAULT_CALL_TIMEOUT_S,
    DEFAULT_START_TIMEOUT_S,
    McpClientManager,
    ServerStatus,
)
from engine.tools.mcp.results import MAX_FUNCTION_NAME, SEPARATOR, identifier, unique

FUNCTIONS_PREFIX = "functions."
_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


class McpTools:
    """A ToolProvider for a list of configured MCP servers (disabled ones are skipped)."""

    def __init__(
        self,
        servers: Sequence[ServerConfig],
        *,
        call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
        start_timeout_s: float = DEFAULT_START_TIMEOUT_S,
    ) -> None:
        self._manager = McpClientManager(
            servers, call_timeout_s=call_timeout_s, start_timeout_s=start_timeout_s
        )
        # Each server's name part, unique and fixed by the configuration alone, so `handles`
        # can answer before any server has started.
        taken: set[str] = set()
        self._prefixes = {
            s.name: unique(identifier(s.name), taken, MAX_FUNCTION_NAME // 2)
            for s in servers
            if s.enabled
        }
        self._functions: dict[str, tuple[str, str]] = {}  # function name -> (server, tool)
        self._descriptions: tuple[ToolDescription, ...] = ()
        self._listed: dict[str, tuple[types.Tool, ...]] = {}

    def system_namespaces(self) -> tuple[ToolNamespace, ...]:
        return ()

    def functions(self) -> tuple[ToolDescription, ...]:
        """Every running server's tools; starts the servers not started yet (those that fail
        offer nothing, and `status()` says why)."""
        return self._list(None)

    def _list(self, cancel: threading.Event | None) -> tuple[ToolDescription, ...]:
        missing = [name for name in self._prefixes if name not in self._listed]
        if missing:
            self._listed.update(self._manager.list_tools(missing, cancel))
            self._build_functions()
        return self._descriptions

    def _build_functions(self) -> None:
        functions: dict[str, tuple[str, str]] = {}
        descriptions: list[ToolDescription] = []
        taken: set[str] = set()
        for server, prefix in self._prefixes.items():
            for tool in self._listed.get(server, ()):
                name = unique(prefix + SEPARATOR + identifier(tool.name), taken)
                functions[name] = (server, tool.name)
                description = tool.description or tool.title or f"The {tool.name} tool."
                schema = tool.input_schema or _EMPTY_SCHEMA
                descriptions.append(ToolDescription(name, description.strip(), schema))
        self._functions = functions
        self._descriptions = tuple(descriptions)

    def handles(self, recipient: str) -> bool:
        if not recipient.startswith(FUNCTIONS_PREFIX):
            return False
        name = recipient[len(FUNCTIONS_PREFIX) :]
        return name in self._functions or any(
            name.startswith(prefix + SEPARATOR) for prefix in self._prefixes.values()
        )

    def needs_approval(self, recipient: str) -> bool:
        return True

    def describe(self, recipient: str) -> str:
        """A title for the approval dialog: `read_file (MCP server “files”)`."""
        target = self._target(recipient)
        if target is None:
            return recipient
        server, tool = target
        return f"{tool} (MCP server “{server}”)"

    def call(self, recipient: str, arguments: str, cancel: threading.Event) -> ToolOutcome:
        target = self._target(recipient, cancel)
        if cancel.is_set():
            return ToolOutcome(f"The call to {recipient} was stopped by the user.", True)
        if target is None:
            return ToolOutcome(self._unknown(recipient), True)
        server, tool = target
        parsed = _parse_arguments(arguments)
        if isinstance(parsed, str):
            return ToolOutcome(f'The arguments for "{tool}" {parsed}', True)
        return self._manager.call(server, tool, parsed, cancel)

    def _unknown(self, recipient: str) -> str:
        """Why `recipient` names no tool: its server failed, or has no such tool."""
        name = recipient.removeprefix(FUNCTIONS_PREFIX)
        for status in self._manager.status():
            prefix = self._prefixes.get(status.name)
            if prefix is not None and name.startswith(prefix + SEPARATOR):
                if status.name not in self._listed and status.message:
                    return status.message
                tools = ", ".join(t.name for t in self._listed.get(status.name, ())) or "none"
                return (
                    f'MCP server "{status.name}" has no tool for {recipient}; its tools: {tools}.'
                )
        available = ", ".join(self._functions) or "none"
        return f"There is no MCP tool {recipient!r}. The MCP tools are: {available}."

    def _target(
        self, recipient: str, cancel: threading.Event | None = None
    ) -> tuple[str, str] | None:
        name = recipient.removeprefix(FUNCTIONS_PREFIX)
        if name not in self._functions and self.handles(recipient):
            self._list(cancel)  # a name from an earlier chat, before this one listed the tools
        return self._functions.get(name)

    def status(self) -> tuple[ServerStatus, ...]:
        """Each configured server: not started, starting, running, failed (with why), disabled."""
        return self._manager.status()

    def restart(self, server: str) -> None:
        """Stops `server` and clears its failures; its tools are listed again on next use."""
        self._listed.pop(server, None)
        self._manager.restart(server)

    def close(self) -> None:
        self._manager.close()


def _parse_arguments(arguments: str) -> dict[str, Any] | str:
    """The JSON object the model wrote, or the end of a sentence saying what is wrong with it."""
    if not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError as e:
        return f"are not valid JSON ({e.msg} at character {e.pos}); send a JSON object."
    if not isinstance(value, dict):
        return f"must be a JSON object, not {type(value).__name__}; send a JSON object."
    return value
