"""The collapsible "Reasoning" section of an answer: the analysis channel, live, plus tool calls.

It is labelled as the model's raw thinking because that is what it is: unfiltered, sometimes
wrong, and not written for the user. While the answer streams the pane is open and follows the
newest text in a box of bounded height; when the answer completes it may collapse (a setting).
Browser calls are one line each; python and MCP calls are boxes with their code and output, in
the order they happened (app/thinking_steps.py).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QResizeEvent, QTextCharFormat, QTextCursor, QTextFrame
from PySide6.QtWidgets import QFrame, QTextBrowser, QToolButton, QVBoxLayout, QWidget

from app.code_highlight import is_dark
from app.thinking_steps import (
    LINK_SCHEME,
    CallView,
    call_view,
    fill_frame,
    finish_view,
    insert_frame,
    is_call_recipient,
    plain_text,
)
from engine import ToolCallRequested, ToolStep

MAX_BODY_HEIGHT = 240
LABEL = "Reasoning"
DESCRIPTION = "The model's raw thinking, shown as it was written; it may contain mistakes."


class ThinkingPane(QFrame):
    expanded_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setProperty("role", "reasoning")
        self._text = ""
        self._tool_calls: list[str] = []
        self._steps: list[str] = []  # the browser's readable steps, e.g. "searched: …"
        self._calls: list[CallView] = []  # python and MCP calls, each a box in the text
        self._frames: list[QTextFrame] = []  # their boxes, by the same index
        self._dark = is_dark(self)
        self._status = ""
        self.toggle = QToolButton()
        self.toggle.setCheckable(True)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setAutoRaise(True)
        # Styled as a disclosure triangle (resources/*.qss): expanded is not "pressed".
        self.toggle.setProperty("role", "disclosure")
        self.toggle.setAccessibleName(LABEL)
        self.toggle.setAccessibleDescription(DESCRIPTION)
        self.toggle.setToolTip(DESCRIPTION)
        self.toggle.toggled.connect(self._show_body)
        # A text browser, styled by the stylesheet's reasoning-text role; text goes in as plain
        # text through a cursor, so nothing the model writes is read as HTML.
        self.body = QTextBrowser()
        self.body.setOpenLinks(False)
        self.body.setProperty("role", "reasoning-text")
        self.body.setAccessibleName("Reasoning text")
        self.body.setAccessibleDescription(DESCRIPTION)
        self.body.setFrameShape(QFrame.Shape.NoFrame)
        self.body.setMaximumHeight(MAX_BODY_HEIGHT)
        self.body.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.body.anchorClicked.connect(self._toggle_call)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.toggle, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.body)
        self.set_expanded(False)
        self._update_title()

    # -- content -------------------------------------------------------------------------

    @property
    def text(self) -> str:
        return self._text

    @property
    def tool_calls(self) -> list[str]:
        return list(self._tool_calls)

    def append(self, text: str) -> None:
        if not text:
            return
        self._text += text
        self._insert(text)

    def add_tool_call(self, call: ToolCallRequested | tuple[str, str]) -> None:
        recipient, arguments = (
            (call.recipient, call.arguments_json) if isinstance(call, ToolCallRequested) else call
        )
        line = f"Tool call: {recipient}({arguments.strip()})"
        self._tool_calls.append(line)
        if is_call_recipient(recipient):
            # A tuple is a call read back from history: its outcome, if any, comes as a step.
            live = isinstance(call, ToolCallRequested)
            self._add_call(call_view(recipient, arguments, "waiting" if live else "recorded"))
            return
        chunk = ("\n" if self._text and not self._text.endswith("\n") else "") + line + "\n"
        self._text += chunk
        self._insert(chunk)
        self._update_title()

    @property
    def calls(self) -> list[CallView]:
        """The python and MCP calls shown as boxes, in order."""
        return list(self._calls)

    def _add_call(self, view: CallView) -> None:
        self._calls.append(view)
        self._text += ("\n" if self._text and not self._text.endswith("\n") else "") + plain_text(
            view
        )
        bar = self.body.verticalScrollBar()
        following = not self._full() or bar.value() >= bar.maximum() - 4
        cursor = QTextCursor(self.body.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        frame = insert_frame(cursor, is_dark(self))
        self._frames.append(frame)
        fill_frame(frame, view, len(self._calls) - 1, is_dark(self))
        self._after_change(following)
        self._update_title()

    def _refill(self, index: int) -> None:
        bar = self.body.verticalScrollBar()
        at = bar.value()
        fill_frame(self._frames[index], self._calls[index], index, is_dark(self))
        self._after_change(False)
        bar.setValue(min(at, bar.maximum()))

    @Slot(QUrl)
    def _toggle_call(self, url: QUrl) -> None:
        """The Show all / Show less link of a long call's box."""
        text = url.toString()
        if not text.startswith(LINK_SCHEME) or not text[len(LINK_SCHEME) :].isdigit():
            return
        index = int(text[len(LINK_SCHEME) :])
        if index < len(self._calls):
            self._calls[index].expanded = not self._calls[index].expanded
            self._refill(index)

    @property
    def steps(self) -> list[str]:
        return list(self._steps)

    def add_step(self, step: ToolStep) -> None:
        """A browser call as the user reads it, on its own line ("searched: …"); a python or
        MCP call's result, in the box its call opened (or a new one)."""
        if is_call_recipient(step.recipient):
            self._finish_call(step)
            return
        line = step.summary if step.ok else f"{step.summary} (the model was told)"
        self._steps.append(line)
        chunk = ("\n" if self._text and not self._text.endswith("\n") else "") + line + "\n"
        self._text += chunk
        self._insert(chunk)
        self._update_title()

    def _finish_call(self, step: ToolStep) -> None:
        waiting = [
            i
            for i, view in enumerate(self._calls)
            if view.state in ("waiting", "recorded") and view.recipient == step.recipient
        ]
        if not waiting:  # a step without its call first (e.g. restored): a box of its own
            view = call_view(step.recipient, getattr(step, "arguments", ""))
            finish_view(view, step)
            self._tool_calls.append(f"Tool call: {step.recipient}({view.code.strip()})")
            self._add_call(view)
            return
        view = self._calls[waiting[0]]
        before = plain_text(view)
        finish_view(view, step)
        at = self._text.rfind(before)
        if at >= 0:
            self._text = self._text[:at] + plain_text(view) + self._text[at + len(before) :]
        self._refill(waiting[0])
        self._update_title()

    def set_text(self, text: str) -> None:
        """Replaces the reasoning text; the call boxes follow it."""
        self._text = text
        self.body.setPlainText(text)
        calls, self._calls, self._frames = self._calls, [], []
        for view in calls:
            self._add_call(view)
        self._fit_height()

    def set_status(self, status: str) -> None:
        """A short note after the title, e.g. "thought for 4.2 s" or "cut short"."""
        self._status = status
        self._update_title()

    def is_empty(self) -> bool:
        return not self._text.strip() and not self._tool_calls and not self._steps

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and self._frames:
            dark = is_dark(self)
            if dark != self._dark:  # the appearance changed: recolour the code
                self._dark = dark
                for index in range(len(self._frames)):
                    fill_frame(self._frames[index], self._calls[index], index, dark)

    # -- open / closed -------------------------------------------------------------------

    def is_expanded(self) -> bool:
        return self.toggle.isChecked()

    def set_expanded(self, expanded: bool) -> None:
        self.toggle.setChecked(expanded)
        self._show_body(expanded)

    @Slot(bool)
    def _show_body(self, expanded: bool) -> None:
        self.body.setVisible(expanded)
        self._fit_height()
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
        self._update_title()
        self.expanded_changed.emit(expanded)

    def _update_title(self) -> None:
        parts = [f"{LABEL} (the model's raw thinking)"]
        if self._tool_calls:
            n = len(self._tool_calls)
            parts.append(f"{n} tool call{'s' if n != 1 else ''}")
        if self._steps:
            n = len(self._steps)
            parts.append(f"{n} document step{'s' if n != 1 else ''}")
        if self._status:
            parts.append(self._status)
        self.toggle.setText(" · ".join(parts))

    def _insert(self, text: str) -> None:
        bar = self.body.verticalScrollBar()
        # Before the box is full the reader cannot have scrolled away: keep following then too
        # (else the insert that fills the box would leave the view at the top for good).
        following = not self._full() or bar.value() >= bar.maximum() - 4
        cursor = QTextCursor(self.body.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        # O(delta): the pane may hold thousands of reasoning tokens. A fresh format: the text
        # after a call's box must not take the box's last colours.
        cursor.insertText(text, QTextCharFormat())
        self._after_change(following)

    def _after_change(self, following: bool) -> None:
        bar = self.body.verticalScrollBar()
        if self.body.height() < MAX_BODY_HEIGHT:
            self._fit_height()
        # Until the box is full everything fits, so it stays at the top; then it follows.
        bar.setValue(bar.maximum() if following and self._full() else 0)

    def _full(self) -> bool:
        return self.body.height() >= MAX_BODY_HEIGHT

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            self._fit_height()

    def _fit_height(self) -> None:
        """As tall as the text (estimated from its length, since a hidden or not yet laid out
        document has no height), at most MAX_BODY_HEIGHT; then the box scrolls."""
        metrics = self.body.fontMetrics()
        width = self.body.viewport().width() if self.body.isVisible() else self.width() - 24
        per_line = max(20, width // max(1, metrics.averageCharWidth()))
        lines = 0
        for line in self._text.split("\n"):
            lines += max(1, -(-len(line) // per_line))
            if lines * metrics.lineSpacing() > MAX_BODY_HEIGHT:
                break
        margins = 2 * int(self.body.document().documentMargin()) + 2 * self.body.frameWidth()
        slack = metrics.lineSpacing() // 2  # wrapping is estimated; never hide the last line
        height = lines * metrics.lineSpacing() + margins + slack
        if self.body.isVisible():  # laid out: the document knows its real height
            laid_out = self.body.document().size().height() + 2 * self.body.frameWidth()
            height = max(height, int(laid_out) + 1)
        self.body.setFixedHeight(min(MAX_BODY_HEIGHT, height))
        if not self._full():
            self.body.verticalScrollBar().setValue(0)
