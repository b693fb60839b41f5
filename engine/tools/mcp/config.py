"""MCP server settings in the JSON shape other desktop apps use, parsed into dataclasses.

Claude Desktop, Cursor, LM Studio, Cline and VS Code all write a map of named servers:

    {"mcpServers": {"files": {"command": "npx", "args": ["-y", "server-files", "~/notes"],
                              "env": {"TOKEN": "..."}},
                    "search": {"url": "http://127.0.0.1:8000/mcp", "headers": {"X-Key": "..."}}}}

A server has a `command` (run as a subprocess, spoken to over stdio) or a `url` (streamable HTTP);
a `type` or `transport` field, where an app writes one, must agree. Keys other apps add
(`autoApprove`, `alwaysAllow`, ...) are ignored; `disabled` and `timeout` (seconds per call, as in
Cline) are honoured. Every error names the server and the field, and says what to fix.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from engine.errors import EngineError


class McpConfigError(EngineError):
    """The MCP server settings cannot be used as written."""


@dataclass(frozen=True)
class StdioServer:
    """A server the app starts as a subprocess and speaks to over its stdin and stdout."""

    name: str
    command: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict, hash=False)
    cwd: str | None = None
    enabled: bool = True
    timeout_s: float | None = None  # None: the manager's default


@dataclass(frozen=True)
class HttpServer:
    """A server already running somewhere, spoken to over streamable HTTP."""

    name: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict, hash=False)
    enabled: bool = True
    timeout_s: float | None = None


ServerConfig = StdioServer | HttpServer

# What apps write in `type`/`transport`, lower-cased with `-` and `_` removed.
_STDIO_TYPES = {"stdio"}
_HTTP_TYPES = {"http", "streamablehttp", "streamable", "shttp"}
_SSE_TYPES = {"sse"}


def parse_config(data: Any) -> tuple[ServerConfig, ...]:
    """The servers in a parsed `{"mcpServers": {...}}` document (VS Code's `"servers"` too)."""
    if not isinstance(data, Mapping):
        raise McpConfigError(
            'Write the MCP configuration as a JSON object with an "mcpServers" object inside; '
            f"it is {_kind(data)}."
        )
    key = "mcpServers" if "mcpServers" in data else "servers" if "servers" in data else None
    if key is None:
        raise McpConfigError(
            'Add an "mcpServers" object to the MCP configuration: it lists each server by name.'
        )
    servers = data[key]
    if not isinstance(servers, Mapping):
        raise McpConfigError(
            f'Make "{key}" in the MCP configuration an object of named servers; '
            f"it is {_kind(servers)}."
        )
    return tuple(parse_server(str(name), entry) for name, entry in servers.items())


def parse_config_text(text: str, source: str = "the MCP configuration") -> tuple[ServerConfig, ...]:
    """`parse_config` of JSON text; `source` names it in errors (a file path, "the settings")."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise McpConfigError(
            f"Fix the JSON in {source}: {e.msg} at line {e.lineno}, column {e.colno}."
        ) from e
    return parse_config(data)


def load_config(path: Path) -> tuple[ServerConfig, ...]:
    """The servers in a JSON file such as Claude Desktop's `claude_desktop_config.json`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise McpConfigError(
            f"Check the MCP configuration file {path}: it cannot be read ({e.strerror})."
        ) from e
    return parse_config_text(text, source=str(path))


def parse_server(name: str, entry: Any) -> ServerConfig:
    """One named server entry."""
    if not name.strip():
        raise McpConfigError(
            "Give every MCP server a name: one of them is named by an empty string."
        )
    if not isinstance(entry, Mapping):
        raise McpConfigError(
            f'Make MCP server "{name}" an object with a "command" or a "url"; it is {_kind(entry)}.'
        )
    kind = _transport(name, entry)
    enabled = not _optional_bool(name, entry, "disabled")
    timeout_s = _optional_timeout(name, entry)
    if kind == "stdio":
        return StdioServer(
            name=name,
            command=_required_string(name, entry, "command"),
            args=_string_list(name, entry, "args"),
            env=_string_map(name, entry, "env"),
            cwd=_optional_string(name, entry, "cwd"),
            enabled=enabled,
            timeout_s=timeout_s,
        )
    url_key = "url" if "url" in entry else "serverUrl"  # Windsurf writes serverUrl
    url = _required_string(name, entry, url_key)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise McpConfigError(
            f'Fix "{url_key}" of MCP server "{name}": it must be an http:// or https:// address '
            f"with a host, such as http://127.0.0.1:8000/mcp; it is {url!r}."
        )
    return HttpServer(
        name=name,
        url=url,
        headers=_string_map(name, entry, "headers"),
        enabled=enabled,
        timeout_s=timeout_s,
    )


def dump_config(servers: tuple[ServerConfig, ...]) -> dict[str, Any]:
    """The `{"mcpServers": ...}` document for `servers`, which `parse_config` reads back."""
    out: dict[str, Any] = {}
    for server in servers:
        entry: dict[str, Any]
        if isinstance(server, StdioServer):
            entry = {"command": server.command, "args": list(server.args)}
            if server.env:
                entry["env"] = dict(server.env)
            if server.cwd is not None:
                entry["cwd"] = server.cwd
        else:
            entry = {"type": "http", "url": server.url}
            if server.headers:
                entry["headers"] = dict(server.headers)
        if not server.enabled:
            entry["disabled"] = True
        if server.timeout_s is not None:
            entry["timeout"] = server.timeout_s
        out[server.name] = entry
    return {"mcpServers": out}


def _transport(name: str, entry: Mapping[str, Any]) -> str:
    has_command = "command" in entry
    has_url = "url" in entry or "serverUrl" in entry
    declared_key = "type" if "type" in entry else "transport" if "transport" in entry else None
    if declared_key is not None:
        declared = entry[declared_key]
        if not isinstance(declared, str):
            raise McpConfigError(
                f'Fix "{declared_key}" of MCP server "{name}": write "stdio" or "http"; '
                f"it is {_kind(declared)}."
            )
        normalized = declared.lower().replace("-", "").replace("_", "")
        if normalized in _SSE_TYPES:
            raise McpConfigError(
                f'Use streamable HTTP for MCP server "{name}": OSS Desk does not speak the older '
                'SSE transport. Most servers offer both; change "type" to "http" and the URL to '
                "the server's streamable HTTP endpoint (often ending in /mcp)."
            )
        if normalized in _STDIO_TYPES:
            if not has_command:
                raise McpConfigError(
                    f'Add a "command" to MCP server "{name}": its {declared_key} is "stdio".'
                )
            return "stdio"
        if normalized in _HTTP_TYPES:
            if not has_url:
                raise McpConfigError(
                    f'Add a "url" to MCP server "{name}": its {declared_key} is "{declared}".'
                )
            return "http"
        raise McpConfigError(
            f'Fix "{declared_key}" of MCP server "{name}": write "stdio" or "http"; '
            f'"{declared}" is not a transport OSS Desk knows.'
        )
    if has_command and has_url:
        raise McpConfigError(
            f'Keep either "command" or "url" in MCP server "{name}", not both, or add "type": '
            '"stdio" or "http" to say which to use.'
        )
    if has_command:
        return "stdio"
    if has_url:
        return "http"
    raise McpConfigError(
        f'Add a "command" (a program to run) or a "url" (a running server) to MCP server "{name}".'
    )


def _required_string(name: str, entry: Mapping[str, Any], key: str) -> str:
    value = entry[key]
    if not isinstance(value, str) or not value.strip():
        raise McpConfigError(
            f'Fix "{key}" of MCP server "{name}": it must be a non-empty string; '
            f"it is {_kind(value)}."
        )
    return value.strip()


def _optional_string(name: str, entry: Mapping[str, Any], key: str) -> str | None:
    if entry.get(key) is None:
        return None
    return _required_string(name, entry, key)


def _optional_bool(name: str, entry: Mapping[str, Any], key: str) -> bool:
    value = entry.get(key, False)
    if not isinstance(value, bool):
        raise McpConfigError(
            f'Fix "{key}" of MCP server "{name}": write true or false; it is {_kind(value)}.'
        )
    return value


def _optional_timeout(name: str, entry: Mapping[str, Any]) -> float | None:
    value = entry.get("timeout")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise McpConfigError(
            f'Fix "timeout" of MCP server "{name}": write a number of seconds above 0; '
            f"it is {_kind(value)}."
        )
    return float(value)


def _string_list(name: str, entry: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = entry.get(key)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise McpConfigError(
            f'Fix "{key}" of MCP server "{name}": it must be a list of strings; '
            f"it is {_kind(value)}."
        )
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise McpConfigError(
                f'Fix "{key}" of MCP server "{name}": it must be a list of strings, '
                f"but item {i + 1} is {_kind(item)}; put it in quotes."
            )
    return tuple(value)


def _string_map(name: str, entry: Mapping[str, Any], key: str) -> dict[str, str]:
    value = entry.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise McpConfigError(
            f'Fix "{key}" of MCP server "{name}": it must be an object of names to strings; '
            f"it is {_kind(value)}."
        )
    for k, v in value.items():
        if not isinstance(v, str):
            raise McpConfigError(
                f'Fix "{key}" of MCP server "{name}": the value of "{k}" must be a string; '
                f"it is {_kind(v)}; put it in quotes."
            )
    return {str(k): v for k, v in value.items()}


def _kind(value: Any) -> str:
    """How a JSON value reads in an error: `a number (3)`, `an array`, `null`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({value!r})" if value.strip() else "an empty string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__
