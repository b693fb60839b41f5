"""The MCP servers the user lists in Settings › Tools, checked before they are saved. Qt-free.

The text is the `{"mcpServers": {"name": {...}}}` JSON other desktop apps use, read by the same
parser the tools are started from (engine.tools.mcp), so the page accepts exactly what will run
and its messages name the server and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

SERVERS_KEY = "mcpServers"
CLAUDE_DESKTOP_CONFIG = (
    Path.home() / "Library" / "Application Support" / "Claude" / "claude_desktop_config.json"
)
EXAMPLE = '{"mcpServers": {"files": {"command": "npx", "args": ["-y", "server-filesystem"]}}}'


class ConfiguredServer(Protocol):
    """engine.tools.mcp's StdioServer or HttpServer, as far as this page reads them."""

    @property
    def name(self) -> str: ...
    @property
    def enabled(self) -> bool: ...


@dataclass(frozen=True)
class ServersCheck:
    """The servers the text lists when it is valid; else `problem` says what to fix."""

    servers: tuple[ConfiguredServer, ...]
    problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem


class ServersError(ValueError):
    """The servers (typed, or in Claude Desktop's file) cannot be used as written."""


def check_servers(text: str, source: str = "the MCP servers") -> ServersCheck:
    """Parses and checks the Settings text; empty text is valid and lists no servers."""
    if not text.strip():
        return ServersCheck(())
    from engine import McpConfigError, parse_mcp_servers  # the SDK itself is not imported

    try:
        return ServersCheck(tuple(parse_mcp_servers(text, source)))
    except McpConfigError as e:
        return ServersCheck((), str(e))


def describe(server: ConfiguredServer) -> str:
    """How a configured server will be reached, for its status line before it has run."""
    if not server.enabled:
        return "disabled"
    command = getattr(server, "command", None)
    if command is not None:
        return f"starts “{command}” when the model first uses it"
    return f"connects to {getattr(server, 'url', '?')} when the model first uses it"


def merged_with_claude_desktop(text: str, path: Path) -> tuple[str, list[str], list[str]]:
    """`text` with the servers of Claude Desktop's settings file at `path` added: the new text,
    the names added, and the names skipped because `text` already has a server by that name.
    Raises ServersError (naming the file) if either cannot be used; the user's entries and
    keys are kept as written."""
    try:
        file_text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ServersError(
            f"Check Claude Desktop's settings at {path}: they cannot be read ({e})."
        ) from e
    theirs_check = check_servers(file_text, str(path))  # every server checked before any is taken
    if not theirs_check.ok:
        raise ServersError(theirs_check.problem)
    mine_check = check_servers(text)
    if not mine_check.ok:
        raise ServersError(f"{mine_check.problem} Then import again.")
    theirs: dict[str, Any] = json.loads(file_text).get(SERVERS_KEY, {})
    mine: dict[str, Any] = json.loads(text) if text.strip() else {SERVERS_KEY: {}}
    servers: dict[str, Any] = mine.setdefault(SERVERS_KEY, {})
    added = [name for name in theirs if name not in servers]
    skipped = [name for name in theirs if name in servers]
    for name in added:
        servers[name] = theirs[name]
    return json.dumps(mine, indent=2, ensure_ascii=False), added, skipped
