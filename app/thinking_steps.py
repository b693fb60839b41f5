"""A python or MCP call in the reasoning pane: a boxed step with the code (or the arguments), what
came back, how long it took, and whether it was declined or failed.

A call appears as soon as the model makes it (waiting for approval), and its step fills the same
box when the call ends. Long code or output shows its first lines and a "Show all" link; a cut
note in the output ("[… characters cut …]") stays visible even then. The fields a step carries
beyond the browser's (arguments, output, duration) are read with getattr so an older ToolStep
still renders.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QTextBlockFormat,
    QTextCharFormat,
    QTextCursor,
    QTextFrame,
    QTextFrameFormat,
)

from app.code_highlight import insert_highlighted, plain_code_format
from engine import ToolStep

CODE_LINES = 12  # shown of long code until "Show all"
OUTPUT_LINES = 8
LINK_SCHEME = "step:"
_CUT_NOTE = re.compile(r"^\[… [\d,]+ characters cut")

# "recorded": a call read back from history without its outcome.
State = Literal["waiting", "recorded", "done", "failed", "declined", "stopped"]


@dataclass
class CallView:
    """What the pane shows of one python or MCP call."""

    recipient: str
    title: str
    language: str  # "python" or "json", for the colours
    code: str
    state: State = "waiting"
    output: str = ""
    duration_s: float | None = None
    summary: str = ""  # the step's one line, which says why a call failed or was not run
    expanded: bool = False

    @property
    def long(self) -> bool:
        return _lines(self.code) > CODE_LINES or _lines(self.output) > OUTPUT_LINES


def is_call_recipient(recipient: str) -> bool:
    """Calls shown as boxes: python and functions (MCP); the browser's are one-line steps."""
    return recipient == "python" or recipient.startswith("functions.")


def _title(recipient: str) -> str:
    return "Python" if recipient == "python" else recipient.removeprefix("functions.")


def _shown_code(language: str, code: str) -> str:
    if language != "json":
        return code
    try:
        return json.dumps(json.loads(code), indent=2, ensure_ascii=False)
    except ValueError:
        return code


def call_view(recipient: str, arguments: str, state: State = "waiting") -> CallView:
    language = "python" if recipient == "python" else "json"
    code = _shown_code(language, arguments)
    return CallView(recipient, _title(recipient), language, code, state)


def finish_view(view: CallView, step: ToolStep) -> None:
    """Fills `view` from the step its call produced."""
    view.title = getattr(step, "title", "") or view.title
    arguments = getattr(step, "arguments", "")
    if arguments:
        view.code = _shown_code(view.language, arguments)
    view.output = getattr(step, "output", "") or ""
    view.duration_s = getattr(step, "duration_s", None)
    view.summary = step.summary
    if getattr(step, "declined", False):
        view.state = "declined"
    elif step.ok:
        view.state = "done"
    else:
        view.state = "failed" if view.output or view.duration_s is not None else "stopped"


def _lines(text: str) -> int:
    return len(text.splitlines())


def _seconds(duration_s: float) -> str:
    return f"{duration_s * 1000:.0f} ms" if duration_s < 1 else f"{duration_s:.1f} s"


def headline(view: CallView) -> str:
    if view.state in ("failed", "stopped") and view.summary:  # it says why, with the time
        return view.summary[:1].upper() + view.summary[1:]
    took = f" · {_seconds(view.duration_s)}" if view.duration_s is not None else ""
    what = {
        "waiting": "pending…",  # approval or the run itself: the pane cannot tell
        "recorded": "",
        "done": "ran" if view.recipient == "python" else "called",
        "failed": "failed",
        "declined": "declined by you: not run",
        "stopped": "not run",
    }[view.state]
    return f"{view.title} — {what}{took}" if what else view.title


def plain_text(view: CallView) -> str:
    """The step as plain text, for the pane's text and search."""
    parts = [headline(view), view.code]
    if view.output:
        parts.append(view.output)
    return "\n".join(part.rstrip("\n") for part in parts) + "\n"


def _shown_lines(text: str, limit: int, expanded: bool) -> tuple[str, int]:
    """`text` as shown, and how many lines were left out (a cut note is never left out)."""
    lines = text.splitlines()
    if expanded or len(lines) <= limit:
        return text.rstrip("\n"), 0
    shown = lines[:limit]
    notes = [line for line in lines[limit:] if _CUT_NOTE.match(line)]
    return "\n".join(shown + notes), len(lines) - limit - len(notes)


def _colors(dark: bool) -> dict[str, QColor]:
    # The stylesheets' error and warning colours and code-block box (resources/*.qss).
    if dark:
        return {
            "failed": QColor("#FF6B5E"),
            "declined": QColor("#F5C451"),
            "border": QColor("#38383A"),
            "background": QColor("#1C1C1E"),
        }
    return {
        "failed": QColor("#C4281C"),
        "declined": QColor("#8A5A00"),
        "border": QColor("#E0E0E5"),
        "background": QColor("#F5F5F7"),
    }


def insert_frame(cursor: QTextCursor, dark: bool) -> QTextFrame:
    return cursor.insertFrame(_frame_format(dark))


def _frame_format(dark: bool) -> QTextFrameFormat:
    fmt = QTextFrameFormat()
    fmt.setBorder(1)
    fmt.setBorderBrush(QBrush(_colors(dark)["border"]))
    fmt.setBackground(_colors(dark)["background"])
    fmt.setBorderStyle(QTextFrameFormat.BorderStyle.BorderStyle_Solid)
    fmt.setPadding(6)
    fmt.setTopMargin(4)
    fmt.setBottomMargin(4)
    return fmt


def fill_frame(frame: QTextFrame, view: CallView, index: int, dark: bool) -> None:
    """(Re)writes the box `frame` for `view`; `index` is the link's id for Show all."""
    frame.setFrameFormat(_frame_format(dark))
    cursor = frame.firstCursorPosition()
    cursor.setPosition(frame.lastPosition(), QTextCursor.MoveMode.KeepAnchor)
    cursor.removeSelectedText()
    cursor.setBlockFormat(QTextBlockFormat())
    head = QTextCharFormat()
    head.setFontWeight(QFont.Weight.DemiBold)
    colour = _colors(dark).get("failed" if view.state == "stopped" else view.state)
    if colour is not None:
        head.setForeground(colour)
    cursor.insertText(headline(view), head)
    code, code_hidden = _shown_lines(view.code, CODE_LINES, view.expanded)
    cursor.insertBlock()
    insert_highlighted(cursor, code, view.language, dark=dark)
    output, output_hidden = _shown_lines(view.output, OUTPUT_LINES, view.expanded)
    if output:
        label = QTextCharFormat()
        label.setFontItalic(True)
        cursor.insertBlock()
        cursor.insertText("Output" if view.recipient == "python" else "Result", label)
        cursor.insertBlock()
        cursor.insertText(output, plain_code_format())
    hidden = code_hidden + output_hidden
    if view.long:
        link = QTextCharFormat()
        link.setAnchor(True)
        link.setAnchorHref(f"{LINK_SCHEME}{index}")
        link.setFontUnderline(True)
        link.setForeground(QColor("#6CA6FF" if dark else "#2F6FDB"))
        cursor.insertBlock()
        cursor.insertText(f"Show all ({hidden} more lines)" if hidden else "Show less", link)
