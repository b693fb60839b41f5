"""The MCP client manager: one asyncio loop on a thread of its own, synchronous methods for the
engine thread, and the policy for servers that fail.

Servers start on first use. A call that fails because of the server (it crashed, hung, wrote
garbage, is unreachable) returns an error outcome whose text names the server; nothing raises out
of `call`. A server that stopped is started again by the next call; a server that fails to start
twice in a row is left alone until `restart()` (Settings › Tools) so a broken command is not run
on every turn.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
import logging
import threading
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import mcp_types as types
from mcp import MCPError

from engine.tools.base import ToolOutcome, truncate_output
from engine.tools.mcp.config import ServerConfig
from engine.tools.mcp.connection import Connection, ServerError, describe
from engine.tools.mcp.results import result_text

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_CALL_TIMEOUT_S = 60.0
DEFAULT_START_TIMEOUT_S = 30.0
DEFAULT_CLOSE_TIMEOUT_S = 8.0  # the SDK's own stdio shutdown takes at most about 6.5 s
_PROBE_TIMEOUT_S = 2.0
_CANCEL_GRACE_S = 3.0  # for the SDK's courtesy `notifications/cancelled` to go out
_POLL_S = 0.05  # how often a waiting engine thread looks at its cancel event
_START_ATTEMPTS = 2


class ServerState(enum.Enum):
    NOT_STARTED = "not started"
    STARTING = "starting"
    RUNNING = "running"
    FAILED = "failed"
    DISABLED = "disabled"


@dataclass(frozen=True)
class ServerStatus:
    """What Settings › Tools shows for one server."""

    name: str
    state: ServerState
    message: str | None = None  # why it failed
    tool_count: int | None = None


class _Slot:
    """One configured server's state; touched only on the loop thread, except `status`."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.connection: Connection | None = None
        self.tools: tuple[types.Tool, ...] | None = None
        self.failed_starts = 0
        self.last_failure = ""
        self.lock: asyncio.Lock | None = None  # made on the loop
        state = ServerState.NOT_STARTED if config.enabled else ServerState.DISABLED
        self.status = ServerStatus(config.name, state)


class McpClientManager:
    """Starts, calls and stops the configured MCP servers. Thread-safe; methods block."""

    def __init__(
        self,
        servers: Sequence[ServerConfig],
        *,
        call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
        start_timeout_s: float = DEFAULT_START_TIMEOUT_S,
        close_timeout_s: float = DEFAULT_CLOSE_TIMEOUT_S,
    ) -> None:
        names = [s.name for s in servers]
        if len(set(names)) != len(names):
            raise ValueError(f"MCP server names must be unique: {names}")
        self._slots = {s.name: _Slot(s) for s in servers}
        self._call_timeout_s = call_timeout_s
        self._start_timeout_s = start_timeout_s
        self._close_timeout_s = close_timeout_s
        self._guard = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self._stopping: set[asyncio.Task[None]] = set()  # servers being stopped in the background

    @property
    def servers(self) -> tuple[ServerConfig, ...]:
        return tuple(slot.config for slot in self._slots.values())

    def status(self) -> tuple[ServerStatus, ...]:
        with self._guard:
            return tuple(slot.status for slot in self._slots.values())

    def list_tools(
        self, names: Sequence[str], cancel: threading.Event | None = None
    ) -> dict[str, tuple[types.Tool, ...]]:
        """The tools of each named server, starting those not running (together); a server that
        cannot be started or listed is left out, and its status says why."""
        if self._closed:
            return {}
        wanted = [self._slots[n] for n in names if self._slots[n].config.enabled]
        handle = _CancelHandle()
        bound = self._start_timeout_s + self._call_timeout_s + 5
        stop = (cancel, handle) if cancel is not None else None
        return self._run(self._list_all(wanted, handle), stop, bound) or {}

    def call(
        self,
        server: str,
        tool: str,
        arguments: dict[str, Any],
        cancel: threading.Event,
    ) -> ToolOutcome:
        """Calls `tool` on `server`; every failure is an outcome with `is_error`."""
        started = time.monotonic()
        slot = self._slots[server]
        if self._closed:
            return ToolOutcome(f'MCP server "{server}" is closed: the chat was closed.', True)
        timeout = slot.config.timeout_s or self._call_timeout_s
        handle = _CancelHandle()
        bound = self._start_timeout_s + timeout + _PROBE_TIMEOUT_S + 5
        text, is_error = self._run(
            self._call(slot, tool, arguments, timeout, handle), (cancel, handle), bound
        ) or (f'The call to "{tool}" on MCP server "{server}" was stopped.', True)
        shown, cut = truncate_output(text)
        return ToolOutcome(shown, is_error, time.monotonic() - started, cut)

    def restart(self, server: str) -> None:
        """Stops `server` and forgets its failures; the next use starts it again."""
        if self._loop is not None and not self._closed:
            self._run(
                self._stop_slot(self._slots[server], forget=True), None, self._close_timeout_s
            )

    def close(self) -> None:
        """Stops every server and the loop thread, within about `close_timeout_s`; idempotent."""
        if self._closed:
            return
        self._closed = True
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._run(self._close_all(), None, self._close_timeout_s + 2)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=2)
        if not thread.is_alive():
            loop.close()

    # -- the engine thread's side ---------------------------------------------------------------

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._guard:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                # A daemon thread: a forgotten close() must not keep the app from quitting.
                thread = threading.Thread(target=loop.run_forever, name="mcp-loop", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def _run(
        self,
        coro: Coroutine[Any, Any, T],
        cancel: tuple[threading.Event, _CancelHandle] | None,
        bound_s: float,
    ) -> T | None:
        """Runs `coro` on the loop and waits for it; None if it was cancelled or ran past
        `bound_s` (a safety net: every coroutine here bounds its own waits)."""
        loop = self._ensure_loop()
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        deadline = time.monotonic() + bound_s
        cancel_sent = False
        while True:
            # Polling: the cancel event is a threading.Event set by the UI, with nothing to await.
            try:
                return future.result(timeout=_POLL_S)
            except concurrent.futures.TimeoutError:
                pass
            except concurrent.futures.CancelledError:
                return None
            if cancel is not None and cancel[0].is_set() and not cancel_sent:
                loop.call_soon_threadsafe(cancel[1].cancel)
                cancel_sent = True
                deadline = min(deadline, time.monotonic() + _CANCEL_GRACE_S)
            if time.monotonic() > deadline or not (self._thread and self._thread.is_alive()):
                log.warning("an MCP operation ran past its bound; abandoning it")
                future.cancel()
                return None

    # -- the loop's side ------------------------------------------------------------------------

    def _set_status(self, slot: _Slot, state: ServerState, message: str | None = None) -> None:
        tools = len(slot.tools) if slot.tools is not None else None
        with self._guard:
            slot.status = ServerStatus(slot.config.name, state, message, tools)

    async def _ensure(self, slot: _Slot) -> Connection:
        """The slot's running connection, started now if need be; raises ServerError."""
        if slot.lock is None:
            slot.lock = asyncio.Lock()
        async with slot.lock:
            if slot.connection is not None and slot.connection.alive:
                return slot.connection
            await self._stop_slot(slot, forget=False)
            if slot.failed_starts >= _START_ATTEMPTS:
                refusal = (
                    f"{slot.last_failure}\nIt failed to start {slot.failed_starts} times in a row "
                    "and is not started again until it is restarted in Settings › Tools."
                )
                self._set_status(slot, ServerState.FAILED, refusal)
                raise ServerError(refusal)
            self._set_status(slot, ServerState.STARTING)
            connection = Connection(slot.config, start_timeout_s=self._start_timeout_s)
            try:
                await connection.open()
            except ServerError as e:
                slot.failed_starts += 1
                slot.last_failure = str(e)
                self._set_status(slot, ServerState.FAILED, str(e))
                await connection.close(self._close_timeout_s)
                raise
            except BaseException:  # cancelled while starting: stop what was started
                self._set_status(slot, ServerState.NOT_STARTED)
                with anyio.CancelScope(shield=True):
                    await connection.close(self._close_timeout_s)
                raise
            slot.failed_starts = 0
            slot.connection = connection
            self._set_status(slot, ServerState.RUNNING)
            return connection

    async def _list_all(
        self, slots: list[_Slot], handle: _CancelHandle
    ) -> dict[str, tuple[types.Tool, ...]]:
        listed: dict[str, tuple[types.Tool, ...]] = {}

        async def list_one(slot: _Slot) -> None:
            if tools := await self._list(slot):
                listed[slot.config.name] = tools

        with anyio.CancelScope() as scope:
            handle.attach(scope)
            async with anyio.create_task_group() as group:
                for slot in slots:
                    group.start_soon(list_one, slot)
        return {s.config.name: listed[s.config.name] for s in slots if s.config.name in listed}

    async def _list(self, slot: _Slot) -> tuple[types.Tool, ...] | None:
        try:
            connection = await self._ensure(slot)
            if slot.tools is None:
                with anyio.fail_after(self._call_timeout_s):
                    slot.tools = await connection.list_tools()
                self._set_status(slot, ServerState.RUNNING)
            return slot.tools
        except ServerError:
            return None  # the status already says why
        except Exception as e:  # a server's bad answer must not end the listing of the others
            log.warning(
                "listing the tools of MCP server %r failed", slot.config.name, exc_info=True
            )
            await self._lose(slot, f"could not list its tools: {describe(e)}")
            return None

    async def _call(
        self,
        slot: _Slot,
        tool: str,
        arguments: dict[str, Any],
        timeout_s: float,
        handle: _CancelHandle,
    ) -> tuple[str, bool]:
        name = slot.config.name
        with anyio.CancelScope() as scope:
            handle.attach(scope)
            try:
                connection = await self._ensure(slot)
            except ServerError as e:
                return str(e), True
            try:
                with anyio.move_on_after(timeout_s) as timer:
                    result = await connection.call_tool(tool, arguments)
                    prefix = f'Tool "{tool}" of MCP server "{name}" reported an error:\n'
                    text = result_text(result)
                    return (prefix + text, True) if result.is_error else (text, False)
            except MCPError as e:
                if e.code == types.CONNECTION_CLOSED:
                    what = f'stopped while running "{tool}"; it is started again on the next call'
                    return await self._lose(slot, what), True
                return f'MCP server "{name}" refused the call to "{tool}": {e.message}', True
            except ServerError as e:
                return str(e), True
            except Exception as e:  # e.g. a result that fails its own output schema
                log.warning("MCP call %s/%s failed", name, tool, exc_info=True)
                return f'MCP server "{name}" gave "{tool}" an unusable answer: {describe(e)}', True
            if timer.cancelled_caught:
                note = f'did not answer "{tool}" within {timeout_s:g} s; the call was cancelled'
                if await connection.answers(min(_PROBE_TIMEOUT_S, timeout_s)):
                    return connection.note(note), True
                hung = (
                    note + ". It does not answer at all now and is started again on the next call"
                )
                return await self._lose(slot, hung), True
        return f'The call to "{tool}" on MCP server "{name}" was stopped by the user.', True

    async def _lose(self, slot: _Slot, what: str) -> str:
        """Marks the slot's server as gone (stopping what is left of it) and returns the note."""
        connection = slot.connection
        note = (
            connection.note(what)
            if connection is not None
            else f'MCP server "{slot.config.name}" {what}.'
        )
        self._set_status(slot, ServerState.FAILED, note)
        if connection is not None:
            connection.mark_lost(what)
            slot.connection = None
            # Stopping a dead or hung process can take seconds; the caller need not wait for it.
            task = asyncio.get_running_loop().create_task(connection.close(self._close_timeout_s))
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)
        return note

    async def _stop_slot(self, slot: _Slot, *, forget: bool) -> None:
        connection, slot.connection = slot.connection, None
        if forget:
            slot.failed_starts = 0
            slot.tools = None
            self._set_status(slot, ServerState.NOT_STARTED)
        if connection is not None:
            await connection.close(self._close_timeout_s)

    async def _close_all(self) -> None:
        connections = [s.connection for s in self._slots.values() if s.connection is not None]
        for slot in self._slots.values():
            slot.connection = None
        await asyncio.gather(
            *(c.close(self._close_timeout_s) for c in connections),
            *list(self._stopping),
        )
        current = asyncio.current_task()
        others = [t for t in asyncio.all_tasks() if t is not current]
        for task in others:  # calls still waiting on servers that are gone now
            task.cancel()
        if others:
            await asyncio.wait(others, timeout=1)


class _CancelHandle:
    """Lets the engine thread cancel one call's scope on the loop."""

    def __init__(self) -> None:
        self.scope: anyio.CancelScope | None = None
        self.cancelled = False

    def attach(self, scope: anyio.CancelScope) -> None:
        self.scope = scope
        if self.cancelled:
            scope.cancel()

    def cancel(self) -> None:
        self.cancelled = True
        if self.scope is not None:
            self.scope.cancel()
