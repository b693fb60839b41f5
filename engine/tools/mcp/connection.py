"""One MCP server's connection, living on the manager's event loop.

The SDK's transports and client are async context managers whose task groups must be entered and
left by one task, so each connection has a runner task that opens them, reports that the server is
ready, and holds them open until `close()`; requests run in other tasks on the same loop.
Stopping goes through anyio cancel scopes rather than `Task.cancel()`, which the SDK says can
break into its shielded shutdown (close stdin, wait, SIGTERM, SIGKILL) and leave a process behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import tempfile
from contextlib import AsyncExitStack
from typing import IO, Any

import anyio
import httpx2
import mcp_types as types
import pydantic
from mcp import Client, MCPError, StdioServerParameters, stdio_client
from mcp.client._transport import Transport
from mcp.client.session import IncomingMessage
from mcp.client.streamable_http import streamable_http_client

from engine.tools.mcp.config import HttpServer, ServerConfig, StdioServer

log = logging.getLogger(__name__)

CLIENT_INFO = types.Implementation(name="oss-desk", version="0.1.0")
_STDERR_TAIL_CHARS = 1500
_GARBAGE_KEPT = 3  # lines of non-JSON-RPC output remembered for the error note
_MAX_TOOL_PAGES = 50


class ServerError(Exception):
    """A server could not do what was asked; `str()` is a note for the model and the user."""


class Connection:
    """A started server: `open()` once, then `list_tools`/`call_tool`/`ping`, then `close()`."""

    def __init__(self, config: ServerConfig, *, start_timeout_s: float) -> None:
        self.config = config
        self._start_timeout_s = start_timeout_s
        self._client: Client | None = None
        self._runner: asyncio.Task[None] | None = None
        self._scope: anyio.CancelScope | None = None
        self._stop = asyncio.Event()
        self._stderr: IO[str] | None = None
        self._garbage: list[str] = []
        self._stderr_mark = 0
        self.lost_reason: str | None = None  # why a running connection ended by itself

    @property
    def alive(self) -> bool:
        return self._client is not None and self.lost_reason is None

    async def open(self) -> None:
        """Starts the server and completes the MCP handshake, or raises ServerError."""
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._runner = asyncio.create_task(self._run(ready), name=f"mcp:{self.config.name}")
        # Shielded: a caller cancelled while waiting must not cancel the runner's future.
        await asyncio.shield(ready)

    async def _run(self, ready: asyncio.Future[None]) -> None:
        deadline = anyio.current_time() + self._start_timeout_s
        try:
            with anyio.CancelScope(deadline=deadline) as scope:
                self._scope = scope
                async with AsyncExitStack() as stack:
                    client = Client(
                        self._transport(),
                        message_handler=self._on_message,
                        client_info=CLIENT_INFO,
                        cache=None,
                    )
                    await stack.enter_async_context(client)
                    scope.deadline = math.inf
                    self._client = client
                    ready.set_result(None)
                    await self._stop.wait()
            if not ready.done():
                what = "was stopped" if self._stop.is_set() else "did not finish starting"
                ready.set_exception(
                    ServerError(self.note(f"{what} within {self._start_timeout_s:g} s"))
                )
        except Exception as e:
            if not ready.done():
                if _is_closed(e):
                    what = "closed the connection before the MCP handshake finished"
                    if isinstance(self.config, StdioServer):
                        what = "exited before the MCP handshake finished"
                else:
                    what = f"could not be started: {describe(e)}"
                ready.set_exception(ServerError(self.note(what)))
            else:
                self.lost_reason = describe(e)
                log.warning("MCP server %r ended: %s", self.config.name, self.lost_reason)
        finally:
            self._client = None
            if self._stderr is not None:
                self._stderr.close()
                self._stderr = None

    def _transport(self) -> Transport:
        config = self.config
        if isinstance(config, StdioServer):
            # The server's stderr goes to a file so a failure can quote its last lines.
            # Closed when the runner ends, which outlives this method.
            self._stderr = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
            params = StdioServerParameters(
                command=config.command,
                args=list(config.args),
                env=dict(config.env) or None,
                cwd=config.cwd,
                encoding_error_handler="replace",
            )
            return stdio_client(params, errlog=self._stderr)
        assert isinstance(config, HttpServer)
        http = httpx2.AsyncClient(
            headers=dict(config.headers), timeout=httpx2.Timeout(30.0, read=300.0)
        )
        return _HttpTransport(config.url, http)

    async def _on_message(self, message: IncomingMessage) -> None:
        if isinstance(message, Exception):
            line = _offending_input(message)
            log.warning("MCP server %r wrote non-JSON-RPC output: %s", self.config.name, line)
            self._garbage = [*self._garbage, line][-_GARBAGE_KEPT:]

    async def list_tools(self) -> tuple[types.Tool, ...]:
        client = self._require()
        tools: list[types.Tool] = []
        cursor: str | None = None
        for _ in range(_MAX_TOOL_PAGES):
            page = await client.list_tools(cursor=cursor)
            tools += page.tools
            cursor = page.next_cursor
            if cursor is None:
                break
        return tuple(tools)

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        client = self._require()
        self._stderr_mark = self._stderr_size()  # notes quote only what this call wrote
        self._garbage = []
        return await client.call_tool(name, arguments)

    async def answers(self, timeout_s: float) -> bool:
        """Whether the server still answers at all (after a call that timed out). A tools/list,
        not a ping: ping is gone from the 2026-07-28 protocol."""
        with anyio.move_on_after(timeout_s):
            try:
                await self._require().list_tools()
                return True
            except Exception as e:
                log.info("MCP server %r did not answer: %s", self.config.name, describe(e))
        return False

    def _require(self) -> Client:
        if self._client is None or self.lost_reason is not None:
            raise ServerError(self.note("is not running"))
        return self._client

    def mark_lost(self, reason: str) -> None:
        if self.lost_reason is None:
            self.lost_reason = reason

    async def close(self, timeout_s: float) -> None:
        """Stops the server; waits at most `timeout_s` (the SDK's own waits are bounded too)."""
        runner = self._runner
        if runner is None or runner.done():
            return
        self._stop.set()
        if self._scope is not None and self._client is None:
            self._scope.cancel()  # still starting: abandon the handshake
        done, _ = await asyncio.wait({runner}, timeout=timeout_s)
        if not done:
            log.warning("MCP server %r did not stop within %g s", self.config.name, timeout_s)

    def note(self, what: str) -> str:
        """`MCP server "x" <what>.` and what the server said on stderr or wrote instead of MCP."""
        lines = [f'MCP server "{self.config.name}" {what}.']
        if self._garbage:
            quoted = "; ".join(repr(g) for g in self._garbage)
            lines.append(f"It wrote output that is not MCP (JSON-RPC): {quoted}.")
        tail = self.stderr_tail()
        if tail:
            lines.append("Its last error output:\n" + tail)
        return "\n".join(lines)

    def stderr_tail(self) -> str:
        """The last lines the server wrote to stderr since the current call began."""
        if self._stderr is None:
            return ""
        with contextlib.suppress(OSError, ValueError):
            self._stderr.seek(self._stderr_mark)
            text = self._stderr.read()[-_STDERR_TAIL_CHARS:]
            return "\n".join(line.rstrip() for line in text.strip().splitlines()[-8:])
        return ""

    def _stderr_size(self) -> int:
        if self._stderr is None:
            return 0
        with contextlib.suppress(OSError, ValueError):
            return os.fstat(self._stderr.fileno()).st_size
        return 0


class _HttpTransport(contextlib.AbstractAsyncContextManager[Any]):
    """`streamable_http_client` over our own HTTP client (for the configured headers), closing
    that client with the transport."""

    def __init__(self, url: str, http: httpx2.AsyncClient) -> None:
        self._url = url
        self._http = http
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> Any:
        await self._stack.enter_async_context(self._http)
        return await self._stack.enter_async_context(
            streamable_http_client(self._url, http_client=self._http)
        )

    async def __aexit__(self, *exc: object) -> bool | None:
        return await self._stack.__aexit__(*exc)  # type: ignore[arg-type]


def describe(error: BaseException) -> str:
    """A one-line reason for people, from the innermost error of an exception group."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    if isinstance(error, FileNotFoundError):
        return f"the program {error.filename or ''} was not found".replace("  ", " ")
    if isinstance(error, PermissionError):
        return f"the program {error.filename or ''} may not be run (permission denied)"
    if isinstance(error, httpx2.ConnectError):
        return f"nothing answers at its address ({error})"
    if isinstance(error, httpx2.HTTPStatusError):
        return f"its address answered HTTP {error.response.status_code}"
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def _is_closed(error: BaseException) -> bool:
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return isinstance(error, MCPError) and error.code == types.CONNECTION_CLOSED


def _offending_input(error: Exception) -> str:
    """The line a server wrote that failed to parse, cut short, else the error's first line."""
    if isinstance(error, pydantic.ValidationError):
        for detail in error.errors():
            value = detail.get("input")
            if isinstance(value, str):
                return value[:120]
    return describe(error)[:120]
