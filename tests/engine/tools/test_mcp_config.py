"""The MCP server settings: the JSON shapes desktop apps write, and errors that name what to fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.tools.mcp import (
    HttpServer,
    McpConfigError,
    StdioServer,
    dump_config,
    load_config,
    parse_config,
    parse_config_text,
)

CLAUDE_DESKTOP = """{
  "mcpServers": {
    "filesystem": {
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-filesystem", "/Users/me/Desktop"],
      "env": {"LOG_LEVEL": "debug"}
    },
    "search": {"url": "http://127.0.0.1:8000/mcp", "headers": {"Authorization": "Bearer x"}},
    "cline-style": {"type": "streamableHttp", "url": "https://example.com/mcp",
                    "disabled": true, "timeout": 90, "autoApprove": ["read"]},
    "vscode-style": {"type": "stdio", "command": "uvx", "args": ["mcp-server-git"], "cwd": "/tmp"}
  }
}"""


def test_reads_the_shapes_desktop_apps_write(tmp_path: Path) -> None:
    path = tmp_path / "claude_desktop_config.json"
    path.write_text(CLAUDE_DESKTOP, encoding="utf-8")

    servers = load_config(path)

    assert servers == (
        StdioServer(
            "filesystem",
            "npx",
            ("-y", "@modelcontextprotocol/server-filesystem", "/Users/me/Desktop"),
            {"LOG_LEVEL": "debug"},
        ),
        HttpServer("search", "http://127.0.0.1:8000/mcp", {"Authorization": "Bearer x"}),
        HttpServer("cline-style", "https://example.com/mcp", enabled=False, timeout_s=90.0),
        StdioServer("vscode-style", "uvx", ("mcp-server-git",), cwd="/tmp"),
    )
    assert servers[0].env == {"LOG_LEVEL": "debug"}
    assert servers[1].headers == {"Authorization": "Bearer x"}


@pytest.mark.parametrize(
    ("entry", "kind"),
    [
        ({"transport": "stdio", "command": "x"}, StdioServer),
        ({"type": "streamable-http", "url": "http://h/mcp"}, HttpServer),
        ({"type": "http", "url": "http://h/mcp"}, HttpServer),
        ({"serverUrl": "https://h/mcp"}, HttpServer),  # Windsurf
        ({"type": "stdio", "command": "x", "url": "http://h/mcp"}, StdioServer),
    ],
)
def test_type_or_transport_picks_the_transport(entry: dict[str, Any], kind: type) -> None:
    (server,) = parse_config({"mcpServers": {"s": entry}})
    assert isinstance(server, kind)


def test_vscode_servers_key_is_read() -> None:
    (server,) = parse_config({"servers": {"git": {"type": "stdio", "command": "uvx"}}})
    assert server == StdioServer("git", "uvx")


def test_dump_reads_back_as_the_same_servers() -> None:
    servers = parse_config_text(CLAUDE_DESKTOP)
    assert parse_config(json.loads(json.dumps(dump_config(servers)))) == servers


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ([], 'JSON object with an "mcpServers" object inside; it is an array'),
        ({"servers_typo": {}}, 'Add an "mcpServers" object'),
        ({"mcpServers": []}, 'Make "mcpServers" in the MCP configuration an object'),
        ({"mcpServers": {"a": "npx"}}, 'Make MCP server "a" an object'),
        ({"mcpServers": {" ": {"command": "x"}}}, "Give every MCP server a name"),
        ({"mcpServers": {"a": {}}}, 'Add a "command" (a program to run) or a "url"'),
        ({"mcpServers": {"a": {"command": "x", "url": "http://h"}}}, 'either "command" or "url"'),
        ({"mcpServers": {"a": {"command": ""}}}, 'Fix "command" of MCP server "a": it must be a'),
        ({"mcpServers": {"a": {"command": 3}}}, "it is a number (3)"),
        ({"mcpServers": {"a": {"command": "x", "args": "-y"}}}, 'Fix "args" of MCP server "a"'),
        ({"mcpServers": {"a": {"command": "x", "args": ["-p", 80]}}}, "item 2 is a number (80)"),
        ({"mcpServers": {"a": {"command": "x", "env": {"N": 1}}}}, 'the value of "N" must be'),
        ({"mcpServers": {"a": {"command": "x", "env": ["N=1"]}}}, 'Fix "env" of MCP server "a"'),
        ({"mcpServers": {"a": {"url": "ftp://h/mcp"}}}, 'Fix "url" of MCP server "a": it must be'),
        ({"mcpServers": {"a": {"url": "http://"}}}, 'Fix "url" of MCP server "a"'),
        ({"mcpServers": {"a": {"url": "http://h", "headers": {"K": None}}}}, 'value of "K"'),
        ({"mcpServers": {"a": {"type": "sse", "url": "http://h/sse"}}}, "Use streamable HTTP"),
        ({"mcpServers": {"a": {"type": "websocket", "url": "ws://h"}}}, '"websocket" is not a'),
        ({"mcpServers": {"a": {"type": 1, "command": "x"}}}, 'Fix "type" of MCP server "a"'),
        ({"mcpServers": {"a": {"type": "stdio", "url": "http://h"}}}, 'Add a "command" to MCP'),
        ({"mcpServers": {"a": {"transport": "http", "command": "x"}}}, 'Add a "url" to MCP'),
        ({"mcpServers": {"a": {"command": "x", "disabled": "yes"}}}, 'Fix "disabled" of MCP'),
        ({"mcpServers": {"a": {"command": "x", "timeout": 0}}}, 'Fix "timeout" of MCP server'),
        ({"mcpServers": {"a": {"command": "x", "timeout": True}}}, 'Fix "timeout" of MCP server'),
    ],
)
def test_bad_settings_name_the_server_and_field(document: Any, expected: str) -> None:
    with pytest.raises(McpConfigError) as info:
        parse_config(document)
    assert expected in str(info.value)


def test_bad_json_says_where(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text('{"mcpServers": {\n  "a": {"command": "x",}\n}}', encoding="utf-8")
    with pytest.raises(McpConfigError, match=rf"Fix the JSON in {path}: .* at line 2, column"):
        load_config(path)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(McpConfigError, match="cannot be read"):
        load_config(tmp_path / "nope.json")
