"""Servers that are broken from the start: each ends the call with a note, never an exception."""

from __future__ import annotations

import threading
import time

from engine.tools.mcp import McpTools, ServerState, StdioServer
from tests.engine.tools.mcp_servers import JUNK_SERVER, PYTHON

NO_CANCEL = threading.Event()
EXITS = ("-c", "import sys; print('cannot open ~/.secrets', file=sys.stderr); sys.exit(3)")


def test_garbage_on_stdout_then_exit_is_reported_with_the_garbage() -> None:
    tools = McpTools([StdioServer("junk", PYTHON, (str(JUNK_SERVER),))])
    try:
        assert tools.functions() == ()
        outcome = tools.call("functions.junk__tool", "{}", NO_CANCEL)
    finally:
        tools.close()

    assert outcome.is_error
    assert outcome.text.startswith('MCP server "junk" exited before the MCP handshake finished.')
    assert "not MCP (JSON-RPC): 'Welcome to junk 1.0! This is not JSON.'" in outcome.text


def test_a_program_that_answers_only_garbage_times_out_on_start() -> None:
    tools = McpTools(
        [StdioServer("chatty", PYTHON, (str(JUNK_SERVER), "--answer"))], start_timeout_s=1.0
    )
    started = time.monotonic()
    try:
        assert tools.functions() == ()
        (status,) = tools.status()
    finally:
        tools.close()

    assert time.monotonic() - started < 8
    assert status.state is ServerState.FAILED
    assert status.message is not None
    assert status.message.startswith('MCP server "chatty" did not finish starting within 1 s.')
    assert "'junk reply to" in status.message


def test_stop_during_a_slow_start_returns_at_once() -> None:
    tools = McpTools([StdioServer("slow", PYTHON, (str(JUNK_SERVER), "--answer"))])
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    started = time.monotonic()
    try:
        outcome = tools.call("functions.slow__x", "{}", cancel)
        elapsed = time.monotonic() - started
        (status,) = tools.status()
    finally:
        tools.close()

    assert outcome.is_error
    assert outcome.text == "The call to functions.slow__x was stopped by the user."
    assert elapsed < 0.5 + 3  # not the 30 s start timeout
    assert status.state is ServerState.NOT_STARTED


def test_a_missing_program_is_named() -> None:
    tools = McpTools([StdioServer("ghost", "/nonexistent/mcp-server")])
    try:
        outcome = tools.call("functions.ghost__x", "{}", NO_CANCEL)
    finally:
        tools.close()
    assert outcome.is_error
    assert outcome.text == (
        'MCP server "ghost" could not be started: '
        "the program /nonexistent/mcp-server was not found."
    )


def test_a_server_that_exits_on_start_is_tried_twice_then_left_until_restarted() -> None:
    tools = McpTools([StdioServer("flaky", PYTHON, EXITS), StdioServer("off", "x", enabled=False)])
    try:
        assert [s.state for s in tools.status()] == [ServerState.NOT_STARTED, ServerState.DISABLED]
        first = tools.call("functions.flaky__x", "{}", NO_CANCEL)
        second = tools.call("functions.flaky__x", "{}", NO_CANCEL)
        started = time.monotonic()
        third = tools.call("functions.flaky__x", "{}", NO_CANCEL)
        refused_in = time.monotonic() - started
        tools.restart("flaky")
        restarted_state = tools.status()[0].state
        fourth = tools.call("functions.flaky__x", "{}", NO_CANCEL)
    finally:
        tools.close()

    note = (
        'MCP server "flaky" exited before the MCP handshake finished.\n'
        "Its last error output:\ncannot open ~/.secrets"
    )
    assert first.is_error and first.text == note
    assert second.is_error and second.text == note
    assert third.is_error and third.text.startswith(note)
    assert "failed to start 2 times in a row" in third.text
    assert refused_in < 0.5  # not run again
    assert restarted_state is ServerState.NOT_STARTED
    assert fourth.is_error and fourth.text == note  # tried again after the restart
    assert not tools.handles("functions.off__x")
