"""Tool turns through the app's engine thread: the real worker on the tiny checkpoint with
scripted tokens, two small real providers (tests/engine/chat/test_tool_loop_providers.py), the
approval asked on the UI thread and answered by the test (standing in for the dialog), and the
steps saved in a real history file, reloaded and exported."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, Qt, QThread
from pytestqt.qtbot import QtBot

from app.engine_client import EngineClient
from app.engine_requests import TurnRequest
from app.engine_worker import EngineWorker
from app.history import HistoryStore
from app.history.export import export_markdown
from app.history_bridge import stored_step
from app.message_widget import AssistantMessageWidget
from app.tool_approval import ApprovalBridge
from app.tool_turns import ToolsChoice, ToolTurns, documents_note
from app.turn_stream import TurnResult, TurnUpdate
from engine import (
    ApprovalRequest,
    AttachedDocument,
    ChatSession,
    Decision,
    DocumentDecision,
    HarmonyTokenizer,
    LoadedModel,
    Message,
    ProvidersMade,
    PythonTool,
    ToolProvider,
    extract,
    load_model,
)
from tests.app.scripting import ScriptedSessions
from tests.engine.chat.test_tool_loop_providers import (
    Arithmetic,
    Counter,
    answer,
    count_call,
    python_call,
)

TIMEOUT_MS = 30_000
WAIT_S = 1.5  # how long the user takes to approve, in the thinking-time test


@dataclass(frozen=True)
class Choice:
    """What Settings › Tools says (the app's Settings has the same fields)."""

    python_tool_enabled: bool = True
    mcp_servers_json: str = ""
    always_approved_tools: list[str] = field(default_factory=list)


class Asker:
    """The UI side of the round trip: answers each question with the next decision, noting
    the thread it was asked on."""

    def __init__(self, *decisions: Decision) -> None:
        self.decisions = list(decisions)
        self.asked: list[ApprovalRequest] = []
        self.threads: list[QThread] = []

    def __call__(self, request: ApprovalRequest) -> Decision:
        self.asked.append(request)
        self.threads.append(QThread.currentThread())
        return self.decisions.pop(0)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HistoryStore]:
    with HistoryStore(tmp_path / "history.sqlite3") as made:
        yield made


def start(
    qtbot: QtBot,
    store: HistoryStore,
    model_dir: Path,
    tok: HarmonyTokenizer,
    providers: list[ToolProvider],
    choice: Choice | None = None,
) -> tuple[EngineClient, ScriptedSessions]:
    sessions = ScriptedSessions(tok)
    worker = EngineWorker(
        history_path=store.path,
        session_factory=sessions,
        tools_choice=lambda: choice or Choice(),
    )
    worker.tools.factory = lambda _: ProvidersMade(tuple(providers), ())
    client = EngineClient(worker)
    with qtbot.waitSignal(client.model_loaded, timeout=TIMEOUT_MS):
        client.load(str(model_dir), "full")
    return client, sessions


def script(sessions: ScriptedSessions, *parts: str) -> None:
    for part in parts:
        sessions.sampler.extend(sessions.tok.encode(part, allowed_special="all"))


def turn(
    qtbot: QtBot,
    client: EngineClient,
    store: HistoryStore,
    conversation: int,
    text: str,
    updates: list[TurnUpdate] | None = None,
    history: tuple[Message, ...] = (),
) -> TurnResult:
    store.add_user_message(conversation, text)
    message_id = store.begin_assistant_message(conversation, "medium")
    request = TurnRequest(
        client.next_turn_id(), conversation, message_id, "send", text, history, "low"
    )
    if updates is not None:
        client.turn_progressed.connect(updates.append)
    with qtbot.waitSignal(client.turn_finished, timeout=TIMEOUT_MS) as finished:
        client.start_turn(request)
    result: TurnResult = finished.args[0]
    return result


def test_each_call_is_approved_on_the_ui_thread_and_its_steps_are_kept(
    qtbot: QtBot, store: HistoryStore, model_dir: Path, tok: HarmonyTokenizer
) -> None:
    arithmetic, counter = Arithmetic(), Counter()
    client, sessions = start(qtbot, store, model_dir, tok, [arithmetic, counter])
    asker, saved = Asker(Decision.ONCE, Decision.ALWAYS), list[str]()
    ApprovalBridge(client.worker.tools, asker, saved.append, parent=client)
    script(sessions, python_call("2 + 3 * 4"), count_call(5), answer("14, and the tally is 5."))
    chat = store.create_conversation()
    updates: list[TurnUpdate] = []
    result = turn(qtbot, client, store, chat, "Compute, then count.", updates)

    assert result.status == "complete", result.error
    assert result.answer == "14, and the tally is 5."
    assert arithmetic.calls == ["2 + 3 * 4"] and counter.total == 5
    assert [(r.recipient, r.arguments, r.language) for r in asker.asked] == [
        ("python", "2 + 3 * 4", "python"),
        ("functions.count", '{"by": 5}', "json"),
    ]
    app = QCoreApplication.instance()
    assert app is not None and all(t is app.thread() for t in asker.threads)
    qtbot.waitUntil(lambda: saved == ["functions.count"])  # "always" reaches the settings

    # The window got both steps as they happened, with what ran and what came back.
    shown = [s for u in updates for s in u.steps]
    assert [(s.kind, s.arguments, s.output) for s in shown] == [
        ("python", "2 + 3 * 4", "14"),
        ("function", '{"by": 5}', '{"total": 5}'),
    ]

    # The history file holds them (read by a connection of its own), and export shows them.
    assert client.shutdown()
    with HistoryStore(store.path) as reopened:
        summary, messages = reopened.get_conversation(chat)
    stored = messages[-1].tool_calls
    assert [(c.recipient, c.kind, c.arguments, c.result, c.ok) for c in stored] == [
        ("python", "python", "2 + 3 * 4", "14", True),
        ("functions.count", "function", '{"by": 5}', '{"total": 5}', True),
    ]
    assert all(c.duration_s is not None and c.duration_s >= 0 for c in stored)
    # The history keeps no approval wait: it is not part of the step (nor of the thinking).
    kept = replace(shown[0], duration_s=stored[0].duration_s, waited_s=0.0)
    assert stored_step(stored[0], 1) == kept
    # A reopened chat's reasoning pane shows them again as boxes, with what came back.
    restored = AssistantMessageWidget(messages[-1].id, "medium")
    qtbot.addWidget(restored)
    restored.restore(messages[-1])
    assert len(restored.thinking.calls) == 2
    assert "2 + 3 * 4" in restored.thinking.text and '{"total": 5}' in restored.thinking.text
    assert stored[1].title == "count (MCP server “tally”)"
    exported = export_markdown(summary, messages)
    took = f"{(stored[0].duration_s or 0) * 1000:.0f} ms"
    python_block = "```python\n2 + 3 * 4\n```\n\n**Output**\n\n```text\n14\n```"
    assert f"**Python** · {took}\n\n{python_block}" in exported
    assert "**Tool call** count (MCP server “tally”)" in exported
    assert '```json\n{"by": 5}\n```' in exported


def test_stop_while_the_question_is_on_screen_runs_nothing(
    qtbot: QtBot, store: HistoryStore, model_dir: Path, tok: HarmonyTokenizer
) -> None:
    arithmetic = Arithmetic()
    client, sessions = start(qtbot, store, model_dir, tok, [arithmetic])
    withdrawn: list[ApprovalRequest] = []
    client.worker.tools.approval_withdrawn.connect(withdrawn.append)

    def press_stop_then_answer(request: ApprovalRequest) -> Decision:
        client.cancel()  # the user pressed Stop while the dialog was open
        qtbot.waitUntil(lambda: withdrawn == [request], timeout=TIMEOUT_MS)
        return Decision.ONCE  # too late: the question was withdrawn

    ApprovalBridge(client.worker.tools, press_stop_then_answer, parent=client)
    script(sessions, python_call("9 * 9"), answer("Never written."))
    chat = store.create_conversation()
    result = turn(qtbot, client, store, chat, "9 * 9?")
    assert result.status == "cancelled" and arithmetic.calls == []
    (call,) = store.get_conversation(chat)[1][-1].tool_calls
    assert (call.kind, call.result, call.ok, call.declined) == ("python", None, False, False)
    assert call.summary.startswith("not run: stopped")
    assert client.shutdown()


def test_a_declined_call_is_kept_as_declined(
    qtbot: QtBot, store: HistoryStore, model_dir: Path, tok: HarmonyTokenizer
) -> None:
    arithmetic = Arithmetic()
    client, sessions = start(qtbot, store, model_dir, tok, [arithmetic])
    ApprovalBridge(client.worker.tools, Asker(Decision.DECLINE), parent=client)
    script(sessions, python_call("6 * 7"), answer("You declined."))
    chat = store.create_conversation()
    result = turn(qtbot, client, store, chat, "6 * 7?")
    assert result.status == "complete" and arithmetic.calls == []
    summary, messages = store.get_conversation(chat)
    (call,) = messages[-1].tool_calls
    assert call.declined and call.result == "The user declined to run this tool call."
    assert "*Not run: the user declined it.*" in export_markdown(summary, messages)
    assert client.shutdown()


@pytest.fixture(scope="module")
def model(model_dir: Path) -> LoadedModel:
    return load_model(model_dir, dtype="float32")


def test_providers_live_per_chat_and_close_with_it(
    model: LoadedModel, tok: HarmonyTokenizer
) -> None:
    made: list[Arithmetic] = []
    choice = Choice()

    def factory(chosen: ToolsChoice) -> ProvidersMade:
        if not chosen.python_tool_enabled:
            return ProvidersMade((), ())
        made.append(Arithmetic())
        return ProvidersMade((made[-1],), ())

    tools = ToolTurns(lambda: choice, warn=lambda _: None, factory=factory)
    session = ChatSession(model, tok)
    first = tools.for_turn(session, 1, fresh=True)
    assert first is not None and first.providers == (made[0],)
    assert [ns.name for ns in session.system.tools] == []  # declared by the turn's loop
    first.loop(session)
    assert [ns.name for ns in session.system.tools] == ["python"]
    again = tools.for_turn(session, 1, fresh=False)
    assert again is not None and again.providers == (made[0],) and len(made) == 1

    # Editing the first message leaves nothing of the model's work: the interpreter restarts.
    restarted = tools.for_turn(session, 1, fresh=True)
    assert restarted is not None and made[0].closed and len(made) == 2
    restarted.loop(session)
    assert [ns.name for ns in session.system.tools] == ["python"]
    # The settings changed (python off): the chat's python goes, and so does its namespace.
    choice = Choice(python_tool_enabled=False, mcp_servers_json="{}")
    assert tools.for_turn(session, 1, fresh=False) is None
    assert made[1].closed and session.system.tools == () and len(made) == 2

    choice = Choice()
    for chat in (2, 3, 4, 5):
        tools.for_turn(ChatSession(model, tok), chat, fresh=True)
    assert [p.closed for p in made[2:]] == [True, False, False, False]  # three chats stay open
    tools.forget(4)
    assert made[4].closed and not made[5].closed
    tools.close()
    assert all(p.closed for p in made)


def test_an_answer_for_another_question_is_ignored() -> None:
    tools = ToolTurns(None, warn=lambda _: None)
    asked = ApprovalRequest("python", "Python", "1", "python")
    other = ApprovalRequest("python", "Python", "2", "python")
    cancel = threading.Event()
    decisions: list[Decision] = []
    worker = threading.Thread(target=lambda: decisions.append(tools.approve(asked, cancel)))
    requested = threading.Event()
    tools.approval_requested.connect(lambda _: requested.set(), Qt.ConnectionType.DirectConnection)
    worker.start()
    assert requested.wait(5)
    tools.answer_approval(Decision.ALWAYS, other)
    tools.answer_approval(Decision.CHAT, asked)
    worker.join(5)
    assert decisions == [Decision.CHAT]
    tools.answer_approval(Decision.ONCE)  # nothing is asked any more: ignored, no error


DEMO_SERVER = Path(__file__).parents[1] / "engine" / "tools" / "mcp_servers" / "demo_server.py"


def test_the_settings_tools_compute_call_a_server_and_keep_state_per_chat(
    qtbot: QtBot, store: HistoryStore, model_dir: Path, tok: HarmonyTokenizer
) -> None:
    """The real providers from the settings: python in its sandbox and an MCP server on stdio
    (the SDK's, from the MCP tests), each call approved on the UI thread."""
    servers = {"mcpServers": {"demo": {"command": sys.executable, "args": [str(DEMO_SERVER)]}}}
    choice = Choice(mcp_servers_json=json.dumps(servers))
    sessions = ScriptedSessions(tok)
    worker = EngineWorker(
        history_path=store.path, session_factory=sessions, tools_choice=lambda: choice
    )
    client = EngineClient(worker)
    with qtbot.waitSignal(client.model_loaded, timeout=TIMEOUT_MS):
        client.load(str(model_dir), "full")
    asker = Asker(Decision.CHAT, Decision.ONCE, Decision.ONCE)
    ApprovalBridge(worker.tools, asker, parent=client)
    add = (
        "<|channel|>commentary to=functions.demo__add <|constrain|>json"
        '<|message|>{"a": 2, "b": 3}<|call|>'
    )
    script(sessions, python_call("x = 6 * 7\nx"), add, answer("42, and 2 + 3 = 5."))
    chat = store.create_conversation()
    first = turn(qtbot, client, store, chat, "Compute.")
    assert first.status == "complete", first.error
    python, server = store.get_conversation(chat)[1][-1].tool_calls
    assert (python.result, python.ok) == ("42\n", True)
    assert (server.title, server.result, server.ok) == ("add (MCP server “demo”)", "5.0", True)
    # The interpreter is the chat's: the next turn sees `x` (and is not asked again).
    script(sessions, python_call("x + 1"), answer("43."))
    history = sessions.sessions[-1].messages
    second = turn(qtbot, client, store, chat, "And one more?", history=history)
    assert second.status == "complete", second.error
    (again,) = store.get_conversation(chat)[1][-1].tool_calls
    assert again.result == "43\n"
    assert [r.recipient for r in asker.asked] == ["python", "functions.demo__add"]
    prompt = sessions.prompt_text()
    assert "## python\n\n" in prompt and "type demo__add = (_: {" in prompt
    assert client.shutdown()  # closes the chat's interpreter and server


def test_python_reads_the_attached_file_where_the_developer_message_says(
    qtbot: QtBot, store: HistoryStore, model_dir: Path, tok: HarmonyTokenizer, tmp_path: Path
) -> None:
    notes = tmp_path / "launch notes.txt"
    notes.write_text("The launch code is 7431.\n", encoding="utf-8")
    python = PythonTool()
    client, sessions = start(qtbot, store, model_dir, tok, [python])
    ApprovalBridge(client.worker.tools, Asker(Decision.ONCE), parent=client)
    folder = python.documents_path
    code = f"print(open({folder + '/launch notes.txt'!r}).read().split()[-1])"
    script(sessions, python_call(code), answer("7431."))
    chat = store.create_conversation()
    text = "What is the launch code?"
    store.add_user_message(chat, text)
    message_id = store.begin_assistant_message(chat, "medium")
    document = AttachedDocument(extract(notes), 12)
    request = TurnRequest(
        client.next_turn_id(), chat, message_id, "send", text, (), "low",
        documents=DocumentDecision("full_text", "", None, (document,)),
    )  # fmt: skip
    with qtbot.waitSignal(client.turn_finished, timeout=TIMEOUT_MS) as finished:
        client.start_turn(request)
    assert finished.args[0].status == "complete", finished.args[0].error
    (step,) = store.get_conversation(chat)[1][-1].tool_calls
    assert (step.result, step.ok) == ("7431.\n", True)
    assert documents_note(folder) in (sessions.sessions[-1].instructions or "")
    assert client.shutdown()


def test_the_time_a_call_waits_for_the_user_is_not_thinking_time(
    qtbot: QtBot, store: HistoryStore, model_dir: Path, tok: HarmonyTokenizer
) -> None:
    client, sessions = start(qtbot, store, model_dir, tok, [Arithmetic()])
    asker = Asker(Decision.ONCE)

    def slow_user(request: ApprovalRequest) -> Decision:
        time.sleep(WAIT_S)  # reads the code for a while before clicking
        return asker(request)

    ApprovalBridge(client.worker.tools, slow_user, parent=client)
    script(sessions, python_call("6 * 7"), answer("42."))
    chat = store.create_conversation()
    updates: list[TurnUpdate] = []
    result = turn(qtbot, client, store, chat, "Compute.", updates)
    assert result.status == "complete", result.error
    (step,) = [s for u in updates for s in u.steps]
    assert step.waited_s >= WAIT_S
    thought = store.get_conversation(chat)[1][-1].stats["thinking_s"]
    assert 0 <= thought < WAIT_S  # the tiny model's own reasoning takes a fraction of that
    assert client.shutdown()
