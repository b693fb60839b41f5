"""Issue 17's acceptance, as a user meets it: tools enabled in the settings, a scripted turn
computes with python in the real sandbox, calls a real MCP server (on stdio, and over HTTP on
loopback) and answers, and the user approves each call in the window's own approval sheet
(clicked here, as a person would). The pane shows both steps, history keeps them, and "Allow in
this chat" is not asked again."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.message_widget import AssistantMessageWidget
from app.tool_approval import ApprovalDialog
from app.tools_settings import ToolsSettings
from app.turn_stream import TurnResult
from engine import HarmonyTokenizer
from tests.app.conftest import TURN_TIMEOUT_MS, MakeWindow
from tests.app.scripting import ScriptedSessions
from tests.engine.chat.test_tool_loop_providers import answer, python_call
from tests.engine.tools.mcp_servers import DEMO_SERVER, http_demo_server

pytestmark = pytest.mark.qt_log_ignore(
    "This plugin does not support propagateSizeHints", "This plugin does not support raise"
)

ADD = (
    "<|channel|>commentary to=functions.demo__add <|constrain|>json"
    '<|message|>{"a": 2, "b": 3}<|call|>'
)


def sheet(qtbot: QtBot, window: object) -> ApprovalDialog:
    found: list[ApprovalDialog] = []

    def shown() -> bool:
        found[:] = [d for d in window.findChildren(ApprovalDialog) if d.isVisible()]  # type: ignore[attr-defined]
        return bool(found)

    qtbot.waitUntil(shown, timeout=TURN_TIMEOUT_MS)
    return found[0]


def send(qtbot: QtBot, window: object, text: str) -> None:
    composer = window.composer  # type: ignore[attr-defined]
    composer.set_text(text)
    qtbot.keyClick(composer.input, Qt.Key.Key_Return)


@pytest.fixture(params=["stdio", "http"])
def demo_server(request: pytest.FixtureRequest) -> Iterator[dict[str, object]]:
    """The SDK-made demo server as Settings › Tools lists it: a command, or a URL on loopback."""
    if request.param == "stdio":
        yield {"command": sys.executable, "args": [str(DEMO_SERVER)]}
        return
    with http_demo_server() as url:
        yield {"url": url}


def test_a_turn_computes_calls_a_server_and_answers_each_call_approved_in_the_sheet(
    qtbot: QtBot, make_window: MakeWindow, tok: HarmonyTokenizer, demo_server: dict[str, object]
) -> None:
    script = ScriptedSessions(tok)
    window = make_window(session_factory=script)
    servers = {"mcpServers": {"demo": demo_server}}
    window.settings.update(python_tool_enabled=True, mcp_servers_json=json.dumps(servers))
    for part in (python_call("x = 6 * 7\nx"), ADD, answer("42, and 2 + 3 = 5.")):
        script.sampler.extend(tok.encode(part, allowed_special="all"))
    turns: list[TurnResult] = []
    window.controller.turn_completed.connect(turns.append)
    send(qtbot, window, "Compute, then add.")

    first = sheet(qtbot, window)
    assert first.request.recipient == "python" and "x = 6 * 7" in first.code.toPlainText()
    qtbot.mouseClick(first.chat_button, Qt.MouseButton.LeftButton)  # Allow in this chat
    second = sheet(qtbot, window)
    assert second.request.recipient == "functions.demo__add"
    assert json.loads(second.request.arguments) == {"a": 2, "b": 3}
    qtbot.mouseClick(second.once_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(turns), timeout=TURN_TIMEOUT_MS)
    assert turns[0].status == "complete", turns[0].error

    widget = window.view.messages()[-1]
    assert isinstance(widget, AssistantMessageWidget)
    pane = widget.thinking.text
    assert "x = 6 * 7" in pane and "42" in pane and "5.0" in pane
    assert window.controller.conversation_id is not None
    stored = window.store.get_conversation(window.controller.conversation_id)[1][-1]
    python, server = stored.tool_calls
    assert (python.kind, python.result, python.ok) == ("python", "42\n", True)
    assert (server.kind, server.result, server.ok) == ("function", "5.0", True)

    # Settings › Tools says how the chat's server is doing, as its MCP tools report it.
    window.show_settings()
    dialog = window._settings_dialog
    assert dialog is not None
    dialog.show_page("Tools")
    tools = dialog.tools
    assert isinstance(tools, ToolsSettings)
    qtbot.waitUntil(lambda: "demo: running" in tools.server_lines.text())
    dialog.close()

    # The next turn: the interpreter kept `x`, and python runs without asking again.
    for part in (python_call("x + 1"), answer("43.")):
        script.sampler.extend(tok.encode(part, allowed_special="all"))
    send(qtbot, window, "And one more?")
    qtbot.waitUntil(lambda: len(turns) == 2, timeout=TURN_TIMEOUT_MS)
    assert turns[1].status == "complete", turns[1].error
    assert not [d for d in window.findChildren(ApprovalDialog) if d.isVisible()]
    (again,) = window.store.get_conversation(window.controller.conversation_id)[1][-1].tool_calls
    assert again.result == "43\n"
