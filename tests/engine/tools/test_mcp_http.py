"""McpTools over streamable HTTP, against the demo server run by the test on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from engine.tools.mcp import HttpServer, McpTools, ServerState
from tests.engine.tools.mcp_servers import free_port, http_demo_server

NO_CANCEL = threading.Event()


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with http_demo_server() as address:
        yield address


def test_lists_and_calls_tools_over_http(url: str) -> None:
    tools = McpTools([HttpServer("web", url, {"X-Test": "1"}, timeout_s=1.0)])
    try:
        names = [f.name for f in tools.functions()]
        added = tools.call("functions.web__add", '{"a": 20, "b": 22}', NO_CANCEL)
        hung = tools.call("functions.web__sleep_forever", "{}", NO_CANCEL)
        again = tools.call("functions.web__echo_text", '{"text": "still here"}', NO_CANCEL)
    finally:
        tools.close()

    assert names[:3] == ["web__add", "web__echo_text", "web__sleep_forever"]
    assert (added.text, added.is_error) == ("42.0", False)
    assert hung.is_error
    assert 'MCP server "web" did not answer "sleep_forever" within 1 s' in hung.text
    assert (again.text, again.is_error) == ("still here", False)


def test_cancel_stops_an_http_call(url: str) -> None:
    tools = McpTools([HttpServer("web", url)])
    cancel = threading.Event()
    try:
        tools.functions()
        threading.Timer(0.3, cancel.set).start()
        started = time.monotonic()
        outcome = tools.call("functions.web__sleep_forever", "", cancel)
        elapsed = time.monotonic() - started
    finally:
        tools.close()

    assert outcome.is_error and "was stopped by the user" in outcome.text
    assert elapsed < 0.3 + 3


def test_an_address_where_nothing_answers_fails_with_a_note() -> None:
    tools = McpTools([HttpServer("gone", f"http://127.0.0.1:{free_port()}/mcp")])
    try:
        assert tools.functions() == ()
        outcome = tools.call("functions.gone__anything", "{}", NO_CANCEL)
        (status,) = tools.status()
    finally:
        tools.close()

    assert status.state is ServerState.FAILED
    assert status.message is not None
    assert status.message.startswith(
        'MCP server "gone" could not be started: nothing answers at its address'
    )
    assert outcome.is_error and outcome.text == status.message
