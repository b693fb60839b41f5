"""The chat's python and MCP tools for a chat whose answers come from a server: offered as
function tools, each call approved on the UI thread (the test stands in for the dialog, as in
test_tool_turns.py) and run here by the real providers (python in its sandbox, the SDK's demo
MCP server on stdio), the steps saved in a real history file. Through the real worker, against
OSS Desk's own server on loopback (the real engine on the tiny model with scripted tokens,
Responses API) and a fake Chat Completions server that streams tool calls as vLLM does."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from app.engine_client import EngineClient
from app.engine_requests import TurnRequest
from app.engine_worker import EngineWorker, chat_sessions
from app.history import HistoryStore
from app.history_bridge import engine_history
from app.remote_backend import connect, remote_sessions
from app.remote_client import ServerConfig
from app.remote_functions import CODE_PARAMETERS
from app.tool_approval import ApprovalBridge
from app.turn_stream import TurnResult, TurnUpdate
from engine import DECLINED_TEXT, ApprovalRequest, Decision, PythonTool
from engine.harmony.builtin_tools import PYTHON_DESCRIPTION
from tests.app.test_remote_tools import ToolFake, run_tool_fake
from tests.app.test_tool_turns import Asker, Choice
from tests.engine.tools.mcp_servers import DEMO_SERVER
from tests.server.conftest import KEY, MODEL_ID, Served

TIMEOUT_MS = 30_000
SERVERS = {"mcpServers": {"demo": {"command": sys.executable, "args": [str(DEMO_SERVER)]}}}
TOOLS = Choice(mcp_servers_json=json.dumps(SERVERS))  # python on, the demo MCP server


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HistoryStore]:
    with HistoryStore(tmp_path / "history.sqlite3") as made:
        yield made


RemoteClient = Callable[[ServerConfig], EngineClient]


@pytest.fixture
def remote_client(qtbot: QtBot, store: HistoryStore) -> Iterator[RemoteClient]:
    """The app's worker with "the model" on a server (probed, as Settings › Model › Use a
    server does) and the tools Settings › Tools turns on: the real providers. Shut down at
    the end, which closes the chat's interpreter and MCP server, also when a test fails."""
    made: list[EngineClient] = []

    def make(config: ServerConfig) -> EngineClient:
        worker = EngineWorker(
            history_path=store.path,
            loader=lambda path, profile, progress: connect(config),
            session_factory=remote_sessions(chat_sessions(None), None),
            tools_choice=lambda: TOOLS,
        )
        client = EngineClient(worker)
        made.append(client)
        with qtbot.waitSignal(client.model_loaded, timeout=TIMEOUT_MS):
            client.load("server", "full")
        return client

    yield make
    for client in made:
        assert client.shutdown()


def turn(
    qtbot: QtBot,
    client: EngineClient,
    store: HistoryStore,
    chat: int,
    text: str,
    updates: list[TurnUpdate] | None = None,
) -> TurnResult:
    """One turn as the window asks for it: the chat's stored history, then the question."""
    history = tuple(engine_history(store.get_conversation(chat)[1]))
    store.add_user_message(chat, text)
    message_id = store.begin_assistant_message(chat, "medium")
    request = TurnRequest(client.next_turn_id(), chat, message_id, "send", text, history, "low")
    if updates is not None:
        client.turn_progressed.connect(updates.append)
    with qtbot.waitSignal(client.turn_finished, timeout=TIMEOUT_MS) as finished:
        client.start_turn(request)
    result: TurnResult = finished.args[0]
    return result


def code(text: str) -> str:
    return json.dumps({"code": text})


def test_a_remote_turn_computes_with_python_calls_an_mcp_tool_and_keeps_python_state(
    qtbot: QtBot, store: HistoryStore, own_server: Served, remote_client: RemoteClient
) -> None:
    client = remote_client(ServerConfig(own_server.base_url, KEY, MODEL_ID))
    asker = Asker(Decision.CHAT, Decision.ONCE)
    ApprovalBridge(client.worker.tools, asker, parent=client)
    own_server.reply(analysis="Compute it.", call=("python", code("x = 6 * 7\nx")))
    own_server.reply(analysis="Now add.", call=("demo__add", '{"a": 2, "b": 3}'))
    own_server.reply("42, and 2 + 3 = 5.", analysis="Done.")
    chat = store.create_conversation()
    updates: list[TurnUpdate] = []
    first = turn(qtbot, client, store, chat, "Compute.", updates)

    assert first.status == "complete", first.error
    assert first.answer == "42, and 2 + 3 = 5."
    # Asked on the UI thread with the code itself (not its JSON) and the MCP arguments.
    assert [(r.recipient, r.arguments, r.language) for r in asker.asked] == [
        ("python", "x = 6 * 7\nx", "python"),
        ("functions.demo__add", '{"a": 2, "b": 3}', "json"),
    ]
    # The window showed each call waiting for the user (as locally), then its step.
    waiting = [(c.recipient, c.arguments_json) for u in updates for c in u.tool_calls]
    assert waiting == [("python", "x = 6 * 7\nx"), ("functions.demo__add", '{"a": 2, "b": 3}')]
    shown = [s for u in updates for s in u.steps]
    assert [(s.kind, s.recipient, s.number, s.output) for s in shown] == [
        ("python", "python", 1, "42\n"),
        ("function", "functions.demo__add", 2, "5.0"),
    ]
    python, add = store.get_conversation(chat)[1][-1].tool_calls
    assert (python.kind, python.arguments, python.result, python.ok) == (
        "python",
        "x = 6 * 7\nx",
        "42\n",
        True,
    )
    assert (add.title, add.result, add.ok) == ("add (MCP server “demo”)", "5.0", True)
    # The server's model read python's own description, the documents note, and both results.
    read = own_server.prompt_text()
    assert "stateful Jupyter notebook" in read and "demo__add" in read
    assert "The python tool can read copies of the files the user attaches in" in read
    assert "42\n" in read and "5.0" in read

    # The interpreter is the chat's: the next remote turn sees `x`, and python, allowed for
    # this chat, is not asked about again.
    own_server.reply(analysis="Once more.", call=("python", code("x + 1")))
    own_server.reply("43.", analysis="Done.")
    second = turn(qtbot, client, store, chat, "And one more?")
    assert second.status == "complete", second.error
    (again,) = store.get_conversation(chat)[1][-1].tool_calls
    assert (again.recipient, again.result) == ("python", "43\n")
    assert len(asker.asked) == 2


@pytest.fixture
def fake() -> Iterator[ToolFake]:
    """A Chat Completions server (vLLM's `reasoning`) asked twice to write a file with python."""
    write = ("python", code("open('/mnt/data/ran', 'w').write('x')"))
    turns: list[tuple[str, tuple[str, str] | str]] = [
        ("Run it.", write),
        ("Declined, so answer.", "I did not run it."),
        ("Run it again.", write),
    ]
    yield from run_tool_fake(ToolFake("vllm", turns))


def test_chat_completions_offers_the_tools_and_a_declined_or_stopped_call_runs_nothing(
    qtbot: QtBot, store: HistoryStore, fake: ToolFake, remote_client: RemoteClient
) -> None:
    client = remote_client(fake.config)
    withdrawn: list[ApprovalRequest] = []
    client.worker.tools.approval_withdrawn.connect(withdrawn.append)
    asked: list[ApprovalRequest] = []

    def decide(request: ApprovalRequest) -> Decision:
        asked.append(request)
        if len(asked) == 1:
            return Decision.DECLINE
        client.cancel()  # the user pressed Stop while the dialog was open
        qtbot.waitUntil(lambda: withdrawn == [request], timeout=TIMEOUT_MS)
        return Decision.ONCE  # too late: the question was withdrawn

    ApprovalBridge(client.worker.tools, decide, parent=client)
    chat = store.create_conversation()
    before = len(fake.requests)
    first = turn(qtbot, client, store, chat, "Write the file.")
    assert first.status == "complete", first.error
    assert first.answer == "I did not run it."

    # Offered: python as a function of its code, described by its namespace's own text,
    # and the MCP server's tools by their names and schemas.
    call_request, answer_request = fake.requests[before:]
    offered = {t["function"]["name"]: t["function"] for t in call_request["tools"]}
    assert offered["python"] == {
        "name": "python",
        "description": PYTHON_DESCRIPTION,
        "parameters": CODE_PARAMETERS,
    }
    add: dict[str, Any] = offered["demo__add"]
    assert add["description"] == "Adds two numbers and returns the sum."
    assert set(add["parameters"]["properties"]) == {"a", "b"}
    # The model read that the user declined, as a tool message for its call.
    assert answer_request["messages"][-1] == {
        "role": "tool",
        "tool_call_id": f"call_{before + 1}",
        "content": DECLINED_TEXT,
    }
    (declined,) = store.get_conversation(chat)[1][-1].tool_calls
    assert declined.declined and declined.result == DECLINED_TEXT

    # Stop while the next question is on screen: nothing runs, nothing more is asked of
    # the server, and the step says the call was stopped.
    asked_before = len(fake.requests)
    second = turn(qtbot, client, store, chat, "Please do.")
    assert second.status == "cancelled"
    assert len(fake.requests) == asked_before + 1
    (stopped,) = store.get_conversation(chat)[1][-1].tool_calls
    assert stopped.summary == "not run: stopped before Python ran" and not stopped.declined
    # Neither call ran: the chat's interpreter was never even started.
    (python,) = [p for p in client.worker.tools._chats[chat].providers if isinstance(p, PythonTool)]
    assert python.pid is None and not (python.work_folder / "ran").exists()
    assert len(asked) == 2
