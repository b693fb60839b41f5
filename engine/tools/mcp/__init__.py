"""MCP servers as tools: their settings, a client manager on its own event loop, and `McpTools`,
the ToolProvider that offers their tools to the model as functions.

Names are imported on first use: the SDK takes seconds to import, and reading the settings
(config.py, which the Settings page uses) must not wait for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.lazy import make_lazy

if TYPE_CHECKING:
    from engine.tools.mcp.config import (
        HttpServer,
        McpConfigError,
        ServerConfig,
        StdioServer,
        dump_config,
        load_config,
        parse_config,
        parse_config_text,
    )
    from engine.tools.mcp.manager import McpClientManager, ServerState, ServerStatus
    from engine.tools.mcp.provider import McpTools

_EXPORTS = {
    "HttpServer": "engine.tools.mcp.config",
    "McpConfigError": "engine.tools.mcp.config",
    "ServerConfig": "engine.tools.mcp.config",
    "StdioServer": "engine.tools.mcp.config",
    "dump_config": "engine.tools.mcp.config",
    "load_config": "engine.tools.mcp.config",
    "parse_config": "engine.tools.mcp.config",
    "parse_config_text": "engine.tools.mcp.config",
    "McpClientManager": "engine.tools.mcp.manager",
    "ServerState": "engine.tools.mcp.manager",
    "ServerStatus": "engine.tools.mcp.manager",
    "McpTools": "engine.tools.mcp.provider",
}


__all__ = [
    "HttpServer",
    "McpClientManager",
    "McpConfigError",
    "McpTools",
    "ServerConfig",
    "ServerState",
    "ServerStatus",
    "StdioServer",
    "dump_config",
    "load_config",
    "parse_config",
    "parse_config_text",
]

make_lazy(__name__, _EXPORTS)
