"""The collapsible "Reasoning" section of an answer: the analysis channel, live, plus tool calls.

It is labelled as the model's raw thinking because that is what it is: unfiltered, sometimes
wrong, and not written for the user. While the answer streams the pane is open and follows the
newest text in a box of bounded height; when the answer completes it may collapse (a setting).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QResizeEvent, QTextCursor
from PySide6.QtWidgets import QFrame, QTextBrowser, QToolButton, QVBoxLayout, QWidget

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
        chunk = ("\n" if self._text and not self._text.endswith("\n") else "") + line + "\n"
        self._text += chunk
        self._insert(chunk)
        self._update_title()

    @property
    def steps(self) -> list[str]:
        return list(self._steps)

    def add_step(self, step: ToolStep) -> None:
        """A browser call as the user reads it, on its own line ("searched: …")."""
        line = step.summary if step.ok else f"{step.summary} (the model was told)"
        self._steps.append(line)
        chunk = ("\n" if self._text and not self._text.endswith("\n") else "") + line + "\n"
        self._text += chunk
        self._insert(chunk)
        self._update_title()

    def set_text(self, text: str) -> None:
        self._text = text
        self.body.setPlainText(text)
        self._fit_height()

    def set_status(self, status: str) -> None:
        """A short note after the title, e.g. "thought for 4.2 s" or "cut short"."""
        self._status = status
        self._update_title()

    def is_empty(self) -> bool:
        return not self._text.strip() and not self._tool_calls and not self._steps

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
        cursor.insertText(text)  # O(delta): the pane may hold thousands of reasoning tokens
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
