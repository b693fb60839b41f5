"""McpTools over stdio, against a real MCP server made with the SDK (mcp_servers/demo_server.py)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.tools.mcp import McpTools, ServerState, StdioServer
from tests.engine.tools.mcp_servers import DEMO_SERVER, PYTHON

NO_CANCEL = threading.Event()


def demo_server(name: str, pid_file: Path | None = None, timeout_s: float = 10.0) -> StdioServer:
    env = {"DEMO_PID_FILE": str(pid_file)} if pid_file else {}
    return StdioServer(name, PYTHON, (str(DEMO_SERVER),), env, timeout_s=timeout_s)


def pids(pid_file: Path) -> list[int]:
    return [int(line) for line in pid_file.read_text().split()]


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def pid_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mcp") / "demo.pids"


@pytest.fixture(scope="module")
def quick_pid_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mcp") / "quick.pids"


@pytest.fixture(scope="module")
def tools(pid_file: Path, quick_pid_file: Path) -> Iterator[McpTools]:
    # "demo!" reduces to the same name part as "demo": its functions are `demo_2__...`. Its
    # calls time out after 1 s, for the tests of hanging calls.
    provider = McpTools(
        [demo_server("demo", pid_file), demo_server("demo!", quick_pid_file, timeout_s=1.0)]
    )
    yield provider
    provider.close()


def test_tools_are_offered_as_functions_named_per_server(tools: McpTools) -> None:
    functions = {f.name: f for f in tools.functions()}

    assert {"demo__add", "demo__echo_text", "demo__sleep_forever", "demo__die"} <= set(functions)
    assert {"demo_2__add", "demo_2__echo_text"} <= set(functions)
    add = functions["demo__add"]
    assert add.description == "Adds two numbers and returns the sum."
    assert add.parameters is not None
    assert add.parameters["required"] == ["a", "b"]
    assert add.parameters["properties"]["a"]["type"] == "number"
    assert tools.handles("functions.demo__add")
    assert tools.handles("functions.demo_2__echo_text")
    assert not tools.handles("functions.weather__get")
    assert not tools.handles("python")
    assert tools.needs_approval("functions.demo__add")
    assert tools.describe("functions.demo_2__echo_text") == "echo-text (MCP server “demo!”)"
    assert tools.system_namespaces() == ()
    assert [(s.name, s.state, s.tool_count) for s in tools.status()] == [
        ("demo", ServerState.RUNNING, 8),
        ("demo!", ServerState.RUNNING, 8),
    ]


def test_a_call_returns_the_tools_text(tools: McpTools) -> None:
    tools.functions()
    added = tools.call("functions.demo__add", '{"a": 2, "b": 3.5}', NO_CANCEL)
    echoed = tools.call("functions.demo_2__echo_text", '{"text": "héllo ✓"}', NO_CANCEL)

    assert (added.text, added.is_error, added.truncated) == ("5.5", False, False)
    assert (echoed.text, echoed.is_error) == ("héllo ✓", False)
    assert added.duration_s > 0


def test_a_tool_error_is_an_error_outcome_naming_tool_and_server(tools: McpTools) -> None:
    tools.functions()
    outcome = tools.call("functions.demo__fail", "{}", NO_CANCEL)
    assert outcome.is_error
    assert outcome.text.startswith('Tool "fail" of MCP server "demo" reported an error:')


def test_images_become_a_note_and_long_text_is_cut_visibly(tools: McpTools) -> None:
    tools.functions()
    picture = tools.call("functions.demo__picture", "", NO_CANCEL)
    long = tools.call("functions.demo__long_text", '{"n": 4000}', NO_CANCEL)

    assert picture.text == "a red dot\n[an image (image/png, 69 bytes): not shown to the model]"
    assert long.truncated and not long.is_error
    assert long.text.startswith("line 0\nline 1\n") and long.text.endswith("line 3999\n")
    assert "characters cut" in long.text


@pytest.mark.parametrize(
    ("recipient", "arguments", "expected"),
    [
        ("functions.demo__add", '{"a": 1,', "are not valid JSON"),
        ("functions.demo__add", "[1, 2]", "must be a JSON object, not list"),
        ("functions.demo__nope", "{}", 'MCP server "demo" has no tool for functions.demo__nope'),
        ("functions.demo__add", '{"a": "x", "b": 1}', 'MCP server "demo"'),
    ],
)
def test_bad_calls_are_error_outcomes(
    tools: McpTools, recipient: str, arguments: str, expected: str
) -> None:
    tools.functions()
    outcome = tools.call(recipient, arguments, NO_CANCEL)
    assert outcome.is_error
    assert expected in outcome.text


def test_a_call_that_hangs_times_out_and_the_server_stays(
    tools: McpTools, quick_pid_file: Path
) -> None:
    tools.functions()
    before = pids(quick_pid_file)
    started = time.monotonic()
    outcome = tools.call("functions.demo_2__sleep_forever", "", NO_CANCEL)

    assert outcome.is_error
    assert outcome.text == (
        'MCP server "demo!" did not answer "sleep_forever" within 1 s; the call was cancelled.'
    )
    assert time.monotonic() - started < 4
    assert tools.call("functions.demo_2__add", '{"a": 1, "b": 1}', NO_CANCEL).text == "2.0"
    assert pids(quick_pid_file) == before  # the same process answered


def test_cancel_stops_a_call_soon(tools: McpTools) -> None:
    tools.functions()
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    outcome = tools.call("functions.demo_2__sleep_forever", "", cancel)

    assert outcome.is_error
    assert "was stopped by the user" in outcome.text
    assert time.monotonic() - started < 0.3 + 3


def test_a_crashed_server_is_restarted_by_the_next_call(tools: McpTools, pid_file: Path) -> None:
    tools.functions()
    crashed_pid = pids(pid_file)[-1]
    outcome = tools.call("functions.demo__die", "", NO_CANCEL)

    assert outcome.is_error
    assert outcome.text.startswith('MCP server "demo" stopped while running "die"')
    assert outcome.text.endswith("Its last error output:\ndemo server: dying now")
    assert tools.status()[0].state is ServerState.FAILED
    again = tools.call("functions.demo__add", '{"a": 2, "b": 2}', NO_CANCEL)
    assert (again.text, again.is_error) == ("4.0", False)
    assert tools.status()[0].state is ServerState.RUNNING
    assert pids(pid_file)[-1] != crashed_pid


def test_a_server_that_stops_answering_is_restarted(tools: McpTools, quick_pid_file: Path) -> None:
    tools.functions()
    hung_pid = pids(quick_pid_file)[-1]
    outcome = tools.call("functions.demo_2__freeze", "", NO_CANCEL)

    assert outcome.is_error
    assert outcome.text.startswith('MCP server "demo!" did not answer "freeze" within 1 s')
    assert "It does not answer at all now" in outcome.text
    assert tools.call("functions.demo_2__add", '{"a": 3, "b": 3}', NO_CANCEL).text == "6.0"
    assert pids(quick_pid_file)[-1] != hung_pid


def test_close_stops_every_server_process_within_a_bound(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    provider = McpTools([demo_server("a", pid_file), demo_server("b", pid_file)])
    assert len(provider.functions()) == 16
    running = pids(pid_file)
    assert len(running) == 2 and all(is_running(p) for p in running)

    started = time.monotonic()
    provider.close()
    provider.close()

    assert time.monotonic() - started < 10
    assert not any(is_running(p) for p in running)
    after = provider.call("functions.a__add", '{"a": 1, "b": 1}', NO_CANCEL)
    assert after.is_error and "closed" in after.text
