"""Python and MCP calls in the reasoning pane: a box per call with the code coloured, the output
in monospace (long output folded, its cut note always visible), the duration, and a declined or
failed call said plainly. Steps are made as the tool loop makes them (engine provider_step)."""

from __future__ import annotations

import pytest
from pygments.styles import get_style_by_name
from pygments.token import Keyword
from PySide6.QtCore import QUrl
from PySide6.QtGui import QColor, QPalette, QTextDocument
from pytestqt.qtbot import QtBot

from app.markdown_render import DARK_CODE_STYLE, LIGHT_CODE_STYLE
from app.thinking_pane import ThinkingPane
from app.thinking_steps import OUTPUT_LINES
from engine import ToolCallRequested, ToolStep
from engine.chat.tool_steps import provider_step
from engine.tools.base import ToolOutcome, truncate_output

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

CODE = "import math\n\ndef area(r):\n    return math.pi * r ** 2\n\nprint(round(area(2), 3))\n"
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "<cell>", line 1, in <module>\n'
    "ZeroDivisionError: division by zero\n"
)


def made_pane(qtbot: QtBot) -> ThinkingPane:
    pane = ThinkingPane()
    qtbot.addWidget(pane)
    pane.resize(740, 500)
    pane.show()
    pane.set_expanded(True)
    return pane


def fragments(document: QTextDocument) -> list[tuple[str, str, bool]]:
    """(text, foreground colour, fixed pitch) of every fragment, frames included."""
    found = []
    block = document.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fmt = it.fragment().charFormat()
            colour = fmt.foreground().color().name() if fmt.foreground().style().value else ""
            found.append((it.fragment().text(), colour, fmt.fontFixedPitch()))
            it += 1
        block = block.next()
    return found


def keyword_colour(style: str) -> str:
    return "#" + get_style_by_name(style).style_for_token(Keyword)["color"]


def python_step(code: str, text: str, *, error: bool = False, seconds: float = 0.42) -> ToolStep:
    outcome = ToolOutcome(text, is_error=error, duration_s=seconds)
    return provider_step("python", "Python", code, 1, outcome, duration_s=seconds)


def test_a_python_call_shows_its_code_then_its_output_in_the_same_box(qtbot: QtBot) -> None:
    pane = made_pane(qtbot)
    pane.append("I will compute it.")
    pane.add_tool_call(ToolCallRequested("python", CODE))
    (call,) = pane.calls
    assert "Python — pending…" in pane.body.toPlainText()
    pane.add_step(python_step(CODE, "12.566\n"))
    pane.append("The area is 12.566.")
    assert pane.calls == [call] and call.state == "done"
    shown = pane.body.toPlainText()
    assert "pending" not in shown
    assert "Python — ran · 420 ms" in shown and "print(round(area(2), 3))" in shown
    assert shown.index("I will compute it.") < shown.index("12.566\n") < shown.index("The area")
    parts = fragments(pane.body.document())
    assert ("import", keyword_colour(LIGHT_CODE_STYLE), True) in parts
    assert any(text == "12.566" and fixed for text, _, fixed in parts)
    after = [p for p in parts if p[0] == "The area is 12.566."]
    assert after == [("The area is 12.566.", "", False)]  # the reasoning goes on as text
    assert "1 tool call" in pane.toggle.text()
    assert "12.566" in pane.text and "print(round" in pane.text


def test_long_output_is_folded_with_its_cut_note_visible(qtbot: QtBot) -> None:
    pane = made_pane(qtbot)
    output = "".join(f"row {i}: {'x' * 60}\n" for i in range(600))  # 40,000 characters
    text, truncated = truncate_output(output)
    assert truncated
    pane.add_step(python_step("for i in range(600): print(i)", text))
    shown = pane.body.toPlainText()
    assert "row 0:" in shown and f"row {OUTPUT_LINES - 1}:" in shown
    assert f"row {OUTPUT_LINES}:" not in shown
    assert "characters cut" in shown and "Show all (" in shown
    pane.body.anchorClicked.emit(QUrl("step:0"))
    shown = pane.body.toPlainText()
    assert f"row {OUTPUT_LINES}:" in shown and "row 599:" in shown and "Show less" in shown
    pane.body.anchorClicked.emit(QUrl("step:0"))
    assert f"row {OUTPUT_LINES}:" not in pane.body.toPlainText()


def test_a_declined_call_says_so_and_shows_no_output(qtbot: QtBot) -> None:
    pane = made_pane(qtbot)
    pane.add_tool_call(ToolCallRequested("python", "import os; os.remove('x')"))
    pane.add_step(
        provider_step("python", "Python", "import os; os.remove('x')", 1, None, declined=True)
    )
    shown = pane.body.toPlainText()
    assert "Python — declined by you: not run" in shown and "Output" not in shown
    (headline,) = [p for p in fragments(pane.body.document()) if p[0].startswith("Python —")]
    assert headline[1] == "#8a5a00"  # the stylesheet's warning colour


def test_a_failed_call_shows_the_error_and_its_traceback(qtbot: QtBot) -> None:
    pane = made_pane(qtbot)
    pane.add_step(python_step("1 / 0", TRACEBACK, error=True, seconds=1.5))
    shown = pane.body.toPlainText()
    # the headline says what went wrong: a traceback's last line
    assert "Python failed (1.5 s): ZeroDivisionError: division by zero" in shown
    assert 'File "<cell>", line 1' in shown  # and the traceback is there to read
    colours = {c for text, c, _ in fragments(pane.body.document()) if "failed" in text}
    assert colours == {"#c4281c"}


def test_an_mcp_call_shows_the_tool_its_arguments_and_result(qtbot: QtBot) -> None:
    pane = made_pane(qtbot)
    arguments = '{"path": "notes/todo.md"}'
    pane.add_tool_call(ToolCallRequested("functions.files__read_file", arguments))
    outcome = ToolOutcome("- buy milk\n- call Ana\n", duration_s=0.08)
    title = "read_file (MCP server “files”)"
    step = provider_step(
        "functions.files__read_file", title, arguments, 1, outcome, duration_s=0.08
    )
    pane.add_step(step)
    shown = pane.body.toPlainText()
    assert f"{title} — called · 80 ms" in shown
    assert '  "path": "notes/todo.md"' in shown  # indented to be read
    assert "Result" in shown and "- call Ana" in shown
    assert pane.steps == []  # document steps are the browser's only


def test_a_call_read_back_from_history_is_not_waiting(qtbot: QtBot) -> None:
    pane = made_pane(qtbot)
    pane.set_text("Earlier reasoning.")
    pane.add_tool_call(("python", "print(2)"))
    assert pane.calls[0].state == "recorded"
    assert "pending" not in pane.body.toPlainText() and "print(2)" in pane.body.toPlainText()


def test_the_code_is_recoloured_when_the_appearance_turns_dark(qtbot: QtBot) -> None:
    pane = made_pane(qtbot)
    pane.add_step(python_step(CODE, "12.566\n"))
    light = keyword_colour(LIGHT_CODE_STYLE)
    assert ("import", light, True) in fragments(pane.body.document())
    dark = QPalette(pane.palette())
    dark.setColor(QPalette.ColorRole.Base, QColor("#1C1C1E"))
    dark.setColor(QPalette.ColorRole.Window, QColor("#1C1C1E"))
    pane.setPalette(dark)
    assert ("import", keyword_colour(DARK_CODE_STYLE), True) in fragments(pane.body.document())
