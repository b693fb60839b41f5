"""The conversation: a scrolling column of message widgets that follows the newest text.

Each message is its own widget, so restoring or streaming one never re-lays out the others'
text. The view sticks to the bottom while an answer grows unless the user scrolled up to read.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QVBoxLayout, QWidget

from app.history import StoredAttachment, StoredMessage
from app.message_widget import AssistantMessageWidget, UserMessageWidget, describe_attachment

EMPTY_HINT = (
    "Ask anything. Drop a PDF, Word, Markdown, HTML, CSV or text file here to ask about it.\n"
    "Everything stays on this Mac."
)
FOLLOW_SLACK_PX = 24
# Text lines longer than ~760 px are hard to follow back to the next line's start; wider windows
# centre a column of this width, as Messages and ChatGPT do.
READING_WIDTH = 760
SIDE_MARGIN = 20


def attachment_label(attachment: StoredAttachment) -> str:
    return describe_attachment(attachment.name, attachment.pages, attachment.token_count)


class ChatView(QScrollArea):
    edit_requested = Signal()
    regenerate_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("chatView")
        self.setAccessibleName("Conversation")
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._container = QWidget()
        self._container.setObjectName("chatContainer")
        self._layout = QVBoxLayout(self._container)
        self._layout.setContentsMargins(SIDE_MARGIN, 16, SIDE_MARGIN, 16)
        self._layout.setSpacing(14)
        self._layout.addStretch(1)
        self.empty_hint = QLabel(EMPTY_HINT)
        self.empty_hint.setProperty("role", "secondary")
        self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_hint.setWordWrap(True)
        self._layout.insertWidget(0, self.empty_hint)
        self.setWidget(self._container)
        self._messages: list[UserMessageWidget | AssistantMessageWidget] = []
        self._following = True
        self._dark = False
        self._reasoning_visible = True
        bar = self.verticalScrollBar()
        bar.valueChanged.connect(self._track_position)
        bar.rangeChanged.connect(self._keep_following)

    # -- content -------------------------------------------------------------------------

    def messages(self) -> list[UserMessageWidget | AssistantMessageWidget]:
        return list(self._messages)

    def clear(self) -> None:
        for widget in self._messages:
            self._layout.removeWidget(widget)
            widget.hide()  # deletion waits for the event loop; hide it now
            widget.deleteLater()
        self._messages = []
        self.empty_hint.show()
        self._following = True

    def show_messages(self, messages: Sequence[StoredMessage]) -> None:
        """Replace the view with a stored conversation."""
        self.clear()
        self.setUpdatesEnabled(False)  # one repaint for the whole conversation
        try:
            for message in messages:
                if message.role == "user":
                    self.add_user(
                        message.content, [attachment_label(a) for a in message.attachments]
                    )
                elif message.role == "assistant":
                    self.add_assistant(message.id, message.effort).restore(message)
        finally:
            self.setUpdatesEnabled(True)
        self.scroll_to_bottom()

    def add_user(self, text: str, attachments: Sequence[str] = ()) -> UserMessageWidget:
        widget = UserMessageWidget(text, attachments)
        widget.edit_requested.connect(self.edit_requested)
        self._append(widget)
        return widget

    def add_assistant(self, message_id: int, effort: str | None) -> AssistantMessageWidget:
        widget = AssistantMessageWidget(message_id, effort, dark=self._dark)
        widget.regenerate_requested.connect(self.regenerate_requested)
        widget.set_reasoning_visible(self._reasoning_visible)
        self._append(widget)
        return widget

    def assistant(self, message_id: int) -> AssistantMessageWidget | None:
        for widget in reversed(self._messages):
            if isinstance(widget, AssistantMessageWidget) and widget.message_id == message_id:
                return widget
        return None

    def last_user(self) -> UserMessageWidget | None:
        for widget in reversed(self._messages):
            if isinstance(widget, UserMessageWidget):
                return widget
        return None

    def remove_after_last_user(self, *, including_user: bool = False) -> None:
        """Drop the last answer (regenerate), or the last exchange too (edit)."""
        while self._messages and not isinstance(self._messages[-1], UserMessageWidget):
            self._remove_last()
        if including_user and self._messages:
            self._remove_last()
        self.empty_hint.setVisible(not self._messages)

    def update_controls(self, *, busy: bool) -> None:
        """Edit on the last question and Regenerate on the last answer, when idle."""
        last_user = self.last_user()
        last_answer = self._messages[-1] if self._messages else None
        for widget in self._messages:
            if isinstance(widget, UserMessageWidget):
                widget.edit_button.setVisible(not busy and widget is last_user)
            else:
                widget.regenerate_button.setVisible(not busy and widget is last_answer)

    # -- appearance ------------------------------------------------------------------------

    def set_dark(self, dark: bool) -> None:
        self._dark = dark
        for widget in self._messages:
            if isinstance(widget, AssistantMessageWidget):
                widget.set_dark(dark)

    def set_reasoning_visible(self, visible: bool) -> None:
        self._reasoning_visible = visible
        for widget in self._messages:
            if isinstance(widget, AssistantMessageWidget):
                widget.set_reasoning_visible(visible)

    def scroll_to_bottom(self) -> None:
        self._following = True
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

    def resizeEvent(self, event: QResizeEvent) -> None:
        side = max(SIDE_MARGIN, (self.viewport().width() - READING_WIDTH) // 2)
        margins = self._layout.contentsMargins()
        if margins.left() != side:
            self._layout.setContentsMargins(side, margins.top(), side, margins.bottom())
        super().resizeEvent(event)

    # -- internals ---------------------------------------------------------------------------

    def _append(self, widget: UserMessageWidget | AssistantMessageWidget) -> None:
        self.empty_hint.hide()
        self._layout.insertWidget(self._layout.count() - 1, widget)  # before the stretch
        self._messages.append(widget)
        self._following = True

    def _remove_last(self) -> None:
        widget = self._messages.pop()
        self._layout.removeWidget(widget)
        widget.hide()
        widget.deleteLater()

    @Slot(int)
    def _track_position(self, value: int) -> None:
        self._following = value >= self.verticalScrollBar().maximum() - FOLLOW_SLACK_PX

    @Slot(int, int)
    def _keep_following(self, _minimum: int, maximum: int) -> None:
        if self._following:
            self.verticalScrollBar().setValue(maximum)
