"""The conversation: a scrolling column of message widgets that follows the newest text.

Each message is its own widget, so restoring or streaming one never re-lays out the others'
text. The view sticks to the bottom while an answer grows unless the user scrolled up to read.
A search hit scrolls to its message and highlights the matched words there, until the next
click or key press, or HIGHLIGHT_MS.
"""

from __future__ import annotations

from collections.abc import Sequence

import shiboken6
from PySide6.QtCore import QEvent, QObject, QRegularExpression, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QResizeEvent, QTextCharFormat, QTextCursor, QTextDocument
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from app.history import StoredAttachment, StoredMessage
from app.message_widget import AssistantMessageWidget, UserMessageWidget, describe_attachment

ASK_HINT = "Ask anything. Drop a PDF, Word, Markdown, HTML, CSV or text file here to ask about it."
FOLLOW_SLACK_PX = 24
# Text lines longer than ~760 px are hard to follow back to the next line's start; wider windows
# centre a column of this width, as Messages and ChatGPT do.
READING_WIDTH = 760
SIDE_MARGIN = 20
HIGHLIGHT_MS = 5000
# The colours of Find in Safari and Mail: legible on either appearance.
HIGHLIGHT_BACKGROUND = QColor("#FFE14D")
HIGHLIGHT_TEXT = QColor("#000000")

MessageWidget = UserMessageWidget | AssistantMessageWidget


def attachment_label(attachment: StoredAttachment) -> str:
    return describe_attachment(attachment.name, attachment.pages, attachment.token_count)


def words_pattern(words: Sequence[str]) -> QRegularExpression | None:
    """Any of `words` as a whole word, in any case; None when there are none."""
    alternatives = "|".join(QRegularExpression.escape(w) for w in words if w.strip())
    if not alternatives:
        return None
    options = (
        QRegularExpression.PatternOption.CaseInsensitiveOption
        | QRegularExpression.PatternOption.UseUnicodePropertiesOption
    )
    return QRegularExpression(rf"\b(?:{alternatives})\b", options)


def highlight_format() -> QTextCharFormat:
    found = QTextCharFormat()
    found.setBackground(HIGHLIGHT_BACKGROUND)
    found.setForeground(HIGHLIGHT_TEXT)
    return found


def _matches(document: QTextDocument, pattern: QRegularExpression) -> list[QTextCursor]:
    cursors = []
    cursor = document.find(pattern)
    while not cursor.isNull() and cursor.hasSelection():
        cursors.append(cursor)
        cursor = document.find(pattern, cursor)
    return cursors


def _text_labels(widget: MessageWidget) -> list[QLabel]:
    """The labels that show a message's own words (not its buttons or facts)."""
    if isinstance(widget, UserMessageWidget):
        return [widget.label]
    answer = widget.answer
    return [*answer.prose_labels(), *(block.code_label for block in answer.code_blocks())]


class _LabelHighlight:
    """Matches marked in a label's text; `undo` puts the label's own text back."""

    def __init__(self, label: QLabel, pattern: QRegularExpression) -> None:
        self.label, self.text, self.format = label, label.text(), label.textFormat()
        document = QTextDocument()
        document.setDefaultFont(label.font())  # the marked copy keeps the label's size
        if self.format == Qt.TextFormat.PlainText:
            document.setPlainText(self.text)
        else:
            document.setHtml(self.text)
        cursors = _matches(document, pattern)
        self.found = [cursor.selectedText() for cursor in cursors]
        for cursor in cursors:
            cursor.mergeCharFormat(highlight_format())
        self.marked = document.toHtml() if cursors else ""
        if self.found:
            label.setTextFormat(Qt.TextFormat.RichText)
            label.setText(self.marked)

    def undo(self) -> None:
        # A label given new text since (a streamed answer's tail) or replaced (appearance,
        # citations) keeps what it shows now.
        if self.found and shiboken6.isValid(self.label) and self.label.text() == self.marked:
            self.label.setTextFormat(self.format)
            self.label.setText(self.text)


class ChatView(QScrollArea):
    edit_requested = Signal()
    regenerate_requested = Signal()
    version_requested = Signal(int, int)  # message id, version number

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("chatView")
        self.setAccessibleName("Conversation")
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._container = QWidget()
        self._container.setObjectName("chatContainer")
        # As tall as its messages at its width. Its minimum height (each wrapped label at its
        # narrowest) left a screenful of blank below the last message of a long chat.
        self._container.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Ignored)
        self._layout = QVBoxLayout(self._container)
        self._layout.setContentsMargins(SIDE_MARGIN, 16, SIDE_MARGIN, 16)
        self._layout.setSpacing(14)
        self._layout.addStretch(1)
        self.empty_hint = QLabel()
        self.set_answered_on("")
        self.empty_hint.setProperty("role", "secondary")
        self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_hint.setWordWrap(True)
        self._layout.insertWidget(0, self.empty_hint)
        self.setWidget(self._container)
        self._messages: list[UserMessageWidget | AssistantMessageWidget] = []
        self._by_id: dict[int, MessageWidget] = {}  # messages restored from the history
        self._following = True
        self._highlights: list[_LabelHighlight] = []
        self._highlighted_reasoning: QTextEdit | None = None
        self._reveal: QWidget | None = None  # kept in view while the layout settles
        self._highlight_timer = QTimer(self)
        self._highlight_timer.setSingleShot(True)
        self._highlight_timer.timeout.connect(self.clear_highlight)
        self._dark = False
        self._reasoning_visible = True
        bar = self.verticalScrollBar()
        bar.valueChanged.connect(self._track_position)
        bar.rangeChanged.connect(self._keep_following)

    # -- content -------------------------------------------------------------------------

    def set_answered_on(self, host: str) -> None:
        """Where answers are computed, said where a new chat starts ("" for this Mac): with a
        server in Settings › Model, the messages and their documents go to it."""
        where = (
            f"Answers come from {host}: your messages and documents are sent there."
            if host
            else "Everything stays on this Mac."
        )
        self.empty_hint.setText(f"{ASK_HINT}\n{where}")

    def messages(self) -> list[UserMessageWidget | AssistantMessageWidget]:
        return list(self._messages)

    def clear(self) -> None:
        self.clear_highlight()
        self._by_id = {}
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
                widget: MessageWidget | None = None
                if message.role == "user":
                    widget = self.add_user(
                        message.content, [attachment_label(a) for a in message.attachments]
                    )
                elif message.role == "assistant":
                    widget = self.add_assistant(message.id, message.effort)
                    widget.restore(message)
                if widget is not None:
                    self._by_id[message.id] = widget
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
        widget.version_requested.connect(self.version_requested)
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
                widget.versions.set_allowed(not busy)

    # -- search hits -----------------------------------------------------------------------

    def show_hit(
        self, message_id: int | None, words: Sequence[str], in_reasoning: bool = False
    ) -> list[str]:
        """Scroll to a search hit's message and highlight `words` in it (in its reasoning, with
        `in_reasoning`); returns the highlighted text. The highlight goes on the next click or
        key press, or after HIGHLIGHT_MS."""
        self.clear_highlight()
        widget = self._by_id.get(message_id) if message_id is not None else None
        if widget is None or widget not in self._messages:
            return []
        pattern = words_pattern(words)
        found: list[str] = []
        target: QWidget = widget
        if pattern is not None and in_reasoning and isinstance(widget, AssistantMessageWidget):
            found = self._highlight_reasoning(widget, pattern)
        elif pattern is not None:
            for label in _text_labels(widget):
                highlight = _LabelHighlight(label, pattern)
                if highlight.found:
                    self._highlights.append(highlight)
                    target = target if found else label  # the first match is what to see
                    found += highlight.found
        self._following = False  # stay at the hit while the conversation lays out
        self._reveal = target
        self._reveal_target()
        self._highlight_timer.start(HIGHLIGHT_MS)
        # Installed after this event: the click or Return that opened the hit must not end
        # its highlight as it travels on to the sidebar.
        QTimer.singleShot(0, self._watch_input)
        return found

    def highlighted(self) -> bool:
        return bool(self._highlights or self._highlighted_reasoning)

    @Slot()
    def clear_highlight(self) -> None:
        self._highlight_timer.stop()
        self._reveal = None
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)
        for highlight in self._highlights:
            highlight.undo()
        self._highlights = []
        if self._highlighted_reasoning is not None:
            if shiboken6.isValid(self._highlighted_reasoning):
                self._highlighted_reasoning.setExtraSelections([])
            self._highlighted_reasoning = None

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in (QEvent.Type.MouseButtonPress, QEvent.Type.KeyPress):
            self.clear_highlight()
        return False

    def _highlight_reasoning(
        self, widget: AssistantMessageWidget, pattern: QRegularExpression
    ) -> list[str]:
        """The reasoning is a text browser: extra selections mark it without changing it."""
        body = widget.thinking.body
        selections = []
        for cursor in _matches(body.document(), pattern):
            selection = QTextEdit.ExtraSelection()
            selection.cursor, selection.format = cursor, highlight_format()
            selections.append(selection)
        if not selections:
            return []
        widget.thinking.set_expanded(True)
        body.setExtraSelections(selections)
        first = QTextCursor(selections[0].cursor)
        first.clearSelection()
        body.setTextCursor(first)
        body.ensureCursorVisible()
        self._highlighted_reasoning = body
        return [s.cursor.selectedText() for s in selections]

    @Slot()
    def _watch_input(self) -> None:
        app = QApplication.instance()
        if app is not None and (self._reveal is not None or self.highlighted()):
            app.installEventFilter(self)

    def _reveal_target(self) -> None:
        if self._reveal is not None and shiboken6.isValid(self._reveal):
            # A quarter of the view above it: the match is read with what leads up to it.
            self.ensureWidgetVisible(self._reveal, 0, self.viewport().height() // 4)

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
        if self._reveal is not None:
            self._reveal_target()  # the messages above the hit found their heights
        elif self._following:
            self.verticalScrollBar().setValue(maximum)
