"""The sheet that asks before a tool call runs: each button gives its Decision, Esc declines, a
Return typed for the composer does not approve anything, and the code is shown coloured."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pygments.styles import get_style_by_name
from pygments.token import Keyword, Name, String
from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtGui import QColor, QKeyEvent, QTextDocument
from PySide6.QtWidgets import QApplication, QPushButton, QWidget
from pytestqt.qtbot import QtBot

from app.code_highlight import code_font
from app.markdown_render import LIGHT_CODE_STYLE
from app.settings import SettingsStore
from app.tool_approval import ApprovalDialog, ask, install_approvals, withdraw
from app.tool_turns import ToolTurns
from engine.tools.approval import ApprovalRequest, Decision

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

CODE = 'def mean(xs):\n    """Average."""\n    return sum(xs) / len(xs)\n\nprint(mean([1, 2, 3]))\n'
PYTHON = ApprovalRequest("python", "Python", CODE, "python")
MCP = ApprovalRequest(
    "functions.files__read_file",
    "read_file (MCP server “files”)",
    '{"path": "notes/todo.md", "max_lines": 40}',
    "json",
)


def shown(qtbot: QtBot, request: ApprovalRequest = PYTHON, grace_ms: int = 0) -> ApprovalDialog:
    dialog = ApprovalDialog(request, return_grace_ms=grace_ms)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


def colours(document: QTextDocument, word: str) -> set[str]:
    """The foreground colours of the fragments that are exactly `word`."""
    found = set()
    block = document.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            if fragment.text().strip() == word:
                found.add(fragment.charFormat().foreground().color().name())
            it += 1
        block = block.next()
    return found


def pygments_colour(token: object) -> str:
    return "#" + get_style_by_name(LIGHT_CODE_STYLE).style_for_token(token)["color"]


@pytest.mark.parametrize(
    ("button", "decision"),
    [
        ("once_button", Decision.ONCE),
        ("chat_button", Decision.CHAT),
        ("always_button", Decision.ALWAYS),
        ("decline_button", Decision.DECLINE),
    ],
)
def test_each_button_gives_its_decision(qtbot: QtBot, button: str, decision: Decision) -> None:
    dialog = shown(qtbot)
    with qtbot.waitSignal(dialog.decided) as decided:
        qtbot.mouseClick(getattr(dialog, button), Qt.MouseButton.LeftButton)
    assert decided.args == [decision]
    assert dialog.decision is decision and not dialog.isVisible()


def test_the_buttons_name_the_tool_and_run_once_is_the_default(qtbot: QtBot) -> None:
    dialog = shown(qtbot, MCP)
    texts = [b.text() for b in dialog.findChildren(QPushButton)]
    assert sorted(texts) == sorted(
        ["Run once", "Allow in this chat", "Always allow read_file", "Decline"]
    )
    assert dialog.once_button.isDefault()
    assert [b for b in dialog.findChildren(QPushButton) if b.isDefault()] == [dialog.once_button]
    assert dialog.windowModality() == Qt.WindowModality.WindowModal
    assert "read_file (MCP server “files”)" in dialog.heading.text()
    focusable = [w for w in dialog.findChildren(QWidget) if w.isVisible() and w.focusPolicy().value]
    assert focusable and [w for w in focusable if not w.accessibleName()] == []
    assert dialog.code.accessibleName() == "Arguments"


def test_escape_declines(qtbot: QtBot) -> None:
    dialog = shown(qtbot, grace_ms=60_000)  # Esc is never held back
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert dialog.decision is Decision.DECLINE and not dialog.isVisible()


def test_return_runs_once_even_from_another_button(qtbot: QtBot) -> None:
    dialog = shown(qtbot)
    dialog.decline_button.setFocus()
    qtbot.keyClick(dialog.decline_button, Qt.Key.Key_Return)
    assert dialog.decision is Decision.ONCE and not dialog.isVisible()


def test_a_return_typed_as_the_sheet_appears_is_not_an_approval(qtbot: QtBot) -> None:
    """The user was sending a message in the composer when the sheet came up."""
    dialog = shown(qtbot, grace_ms=60_000)
    for widget in (dialog.once_button, dialog.code, dialog):
        qtbot.keyClick(widget, Qt.Key.Key_Return)
    assert dialog.isVisible()
    dialog._grace_ms = 0  # the sheet has been on screen long enough
    repeat = QKeyEvent(
        QEvent.Type.KeyPress, Qt.Key.Key_Return, Qt.KeyboardModifier.NoModifier, "\r", True
    )
    QApplication.sendEvent(dialog.once_button, repeat)  # a key held down since the composer
    assert dialog.isVisible()
    qtbot.keyClick(dialog.once_button, Qt.Key.Key_Return)
    assert dialog.decision is Decision.ONCE and not dialog.isVisible()


def test_python_code_is_coloured_monospace_and_selectable(qtbot: QtBot) -> None:
    dialog = shown(qtbot)
    document = dialog.code.document()
    assert document.toPlainText() == CODE
    assert colours(document, "def") == {pygments_colour(Keyword)}
    assert colours(document, "return") == {pygments_colour(Keyword)}
    assert colours(document, '"""Average."""') == {pygments_colour(String.Doc)}
    assert dialog.code.isReadOnly()
    assert dialog.code.textInteractionFlags() & Qt.TextInteractionFlag.TextSelectableByMouse
    fragment = document.begin().begin().fragment()
    assert fragment.charFormat().fontFixedPitch()
    assert fragment.charFormat().font().family() == code_font().family()


def test_json_arguments_are_indented_and_coloured(qtbot: QtBot) -> None:
    dialog = shown(qtbot, MCP)
    text = dialog.code.toPlainText()
    assert text.splitlines()[1] == '  "path": "notes/todo.md",'
    key = pygments_colour(Name.Tag)
    assert colours(dialog.code.document(), '"path"') == {key}
    assert QColor(key) != QColor(pygments_colour(String.Double))


def test_ask_waits_for_the_answer(qtbot: QtBot) -> None:
    parent = QWidget()
    qtbot.addWidget(parent)
    parent.show()

    def choose() -> None:
        dialog = parent.findChild(ApprovalDialog)
        assert dialog is not None and dialog.isVisible()
        dialog.chat_button.click()

    QTimer.singleShot(50, choose)
    assert ask(parent, PYTHON) is Decision.CHAT


def test_a_withdrawn_question_closes_as_declined(qtbot: QtBot) -> None:
    """Stop was pressed while the sheet was up: the loop no longer waits, so neither does it."""
    parent = QWidget()
    qtbot.addWidget(parent)
    parent.show()
    withdrawn: list[bool] = []

    def stop() -> None:
        withdrawn.append(withdraw(parent, MCP))  # another call's question: left alone
        withdrawn.append(withdraw(parent, PYTHON))

    QTimer.singleShot(50, stop)
    assert ask(parent, PYTHON) is Decision.DECLINE
    assert withdrawn == [False, True]


def test_the_apps_sheet_answers_the_engine_thread_without_a_nested_event_loop(
    qtbot: QtBot, tmp_path: Path
) -> None:
    """The wiring the window uses (install_approvals): the engine thread waits in approve(),
    the sheet opens while the UI's own event loop runs on, and the click answers the wait;
    "always" lands in the settings file."""
    window = QWidget()
    qtbot.addWidget(window)
    window.show()
    settings = SettingsStore.in_file(tmp_path / "settings.ini")
    tools = ToolTurns(None, warn=lambda info: None)
    install_approvals(tools, window, settings)
    answers: list[Decision] = []
    engine_thread = threading.Thread(
        target=lambda: answers.append(tools.approve(PYTHON, threading.Event()))
    )
    engine_thread.start()
    qtbot.waitUntil(lambda: any(d.isVisible() for d in window.findChildren(ApprovalDialog)))
    (dialog,) = window.findChildren(ApprovalDialog)
    assert dialog.windowModality() is Qt.WindowModality.WindowModal
    dialog.always_button.click()
    engine_thread.join(5)
    assert answers == [Decision.ALWAYS]
    qtbot.waitUntil(lambda: settings.settings.always_approved_tools == ["python"])
    qtbot.waitUntil(lambda: not window.findChildren(ApprovalDialog))  # deleted once closed


def test_stop_while_the_apps_sheet_is_up_closes_it(qtbot: QtBot, tmp_path: Path) -> None:
    window = QWidget()
    qtbot.addWidget(window)
    window.show()
    tools = ToolTurns(None, warn=lambda info: None)
    install_approvals(tools, window, SettingsStore.in_file(tmp_path / "settings.ini"))
    cancel = threading.Event()
    answers: list[Decision] = []
    engine_thread = threading.Thread(target=lambda: answers.append(tools.approve(MCP, cancel)))
    engine_thread.start()
    qtbot.waitUntil(lambda: any(d.isVisible() for d in window.findChildren(ApprovalDialog)))
    cancel.set()  # Stop
    engine_thread.join(5)
    assert answers == [Decision.DECLINE]
    qtbot.waitUntil(lambda: not any(d.isVisible() for d in window.findChildren(ApprovalDialog)))
