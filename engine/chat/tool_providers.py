"""The tool providers a chat gets from the app's choices: python in its sandbox, MCP servers.

Each provider kind lives in its own package (engine/tools/python, engine/tools/mcp); they are
imported here only when a chat asks for them (the MCP SDK takes seconds to import), and one that
cannot be set up is left out with a sentence saying why, so a chat never fails because a tool is
missing.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import EngineError
from engine.tools.base import ToolProvider


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
    from engine.tools.python import PythonTool

    reason = PythonTool.availability()
    if reason:
        return None, reason
    return PythonTool(), None


def _mcp_tools(text: str) -> tuple[ToolProvider | None, str | None]:
    from engine.tools.mcp import McpTools, parse_config_text

    try:
        servers = parse_config_text(text, "Settings › Tools › MCP servers")
    except EngineError as e:
        return None, str(e)
    if not servers:
        return None, None
    return McpTools(servers), None
