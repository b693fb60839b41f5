"""MCP servers as tools: their settings, a client manager on its own event loop, and `McpTools`,
the ToolProvider that offers their tools to the model as functions.

Names are imported on first use: the SDK takes seconds to import, and reading the settings
(config.py, which the Settings page uses) must not wait for it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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
    "HttpServer": "config",
    "McpConfigError": "config",
    "ServerConfig": "config",
    "StdioServer": "config",
    "dump_config": "config",
    "load_config": "config",
    "parse_config": "config",
    "parse_config_text": "config",
    "McpClientManager": "manager",
    "ServerState": "manager",
    "ServerStatus": "manager",
    "McpTools": "provider",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


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
