"""The tool providers a chat gets from the app's choices: python in its sandbox, MCP servers.

Each provider kind lives in its own package (engine/tools/python, engine/tools/mcp) with
dependencies of its own; they are imported here only when a chat asks for them, and one that
cannot be imported or set up is left out with a sentence saying why, so a chat never fails
because a tool is missing.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from engine.errors import EngineError
from engine.tools.base import ToolProvider

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProvidersMade:
    providers: tuple[ToolProvider, ...]
    problems: tuple[str, ...]  # for the user: why a tool the settings ask for is not offered


def make_tool_providers(*, python: bool, mcp_servers_json: str) -> ProvidersMade:
    """New providers for one chat (the caller closes them with the chat)."""
    providers: list[ToolProvider] = []
    problems: list[str] = []
    if python:
        tool, problem = _python_tool()
        if tool is not None:
            providers.append(tool)
        if problem:
            problems.append(problem)
    if mcp_servers_json.strip():
        tools, problem = _mcp_tools(mcp_servers_json)
        if tools is not None:
            providers.append(tools)
        if problem:
            problems.append(problem)
    return ProvidersMade(tuple(providers), tuple(problems))


def _python_tool() -> tuple[ToolProvider | None, str | None]:
    package = _package("engine.tools.python", "PythonTool")
    if package is None:
        return None, "The Python tool is not part of this version of OSS Desk, so it is off."
    reason: str | None = package.PythonTool.availability()
    if reason:
        return None, reason
    tool: ToolProvider = package.PythonTool()
    return tool, None


def _mcp_tools(text: str) -> tuple[ToolProvider | None, str | None]:
    package = _package("engine.tools.mcp", "McpTools")
    if package is None:
        return None, "MCP servers are not supported by this version of OSS Desk, so they are off."
    try:
        servers: tuple[Any, ...] = package.parse_config_text(text, "Settings › Tools › MCP servers")
    except EngineError as e:
        return None, str(e)
    if not servers:
        return None, None
    tools: ToolProvider = package.McpTools(servers)
    return tools, None


def _package(name: str, provider: str) -> ModuleType | None:
    """The provider's package, or None while it is not there (it is built separately)."""
    try:
        module = importlib.import_module(name)
    except ImportError as e:
        log.info("%s cannot be imported: %s", name, e)
        return None
    return module if hasattr(module, provider) else None
