"""Where the user writes: a native text field (spelling, dictation and emoji come free with it),
the attachment chips, and a toolbar with Attach, the reasoning effort, and Send/Stop, with
Finish Now beside Stop while the model reasons.

Return sends and Shift+Return starts a new line; Up in an empty field edits the last message;
Esc leaves editing. Dropped files become attachments; dropped text is inserted as usual.
"""

from __future__ import annotations

from PySide6.QtCore import QMimeData, QSize, Qt, Signal, Slot
from PySide6.QtGui import (
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QKeyEvent,
    QKeySequence,
    QPainter,
    QPaintEvent,
    QResizeEvent,
)
from PySide6.QtWidgets import (
    QButtonGroup,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app import resources
from app.turn_stream import TurnUpdate

EFFORTS = (("low", "Low"), ("medium", "Medium"), ("high", "High"))
MIN_INPUT_LINES = 2
# The field grows with its text up to this share of the window, then scrolls (as Messages does).
MAX_INPUT_SHARE = 0.4
FINISH_SHORTCUT = "Ctrl+Shift+Return"  # also Chat › Finish Now (app.menus)
PLACEHOLDER = "Message gpt-oss (Return sends, Shift+Return for a new line)"


def local_files(mime: QMimeData) -> list[str]:
    return [url.toLocalFile() for url in mime.urls() if url.isLocalFile()] if mime.hasUrls() else []


class ComposerInput(QPlainTextEdit):
    submitted = Signal()
    edit_last_requested = Signal()
    escape_pressed = Signal()
    files_dropped = Signal(list)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key, mods = event.key(), event.modifiers()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not (
            mods & (Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.AltModifier)
        ):
            self.submitted.emit()
            return
        if key == Qt.Key.Key_Up and not self.toPlainText() and not mods:
            self.edit_last_requested.emit()
            return
        if key == Qt.Key.Key_Escape:
            self.escape_pressed.emit()
        super().keyPressEvent(event)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if local_files(event.mimeData()):
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if local_files(event.mimeData()):
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        files = local_files(event.mimeData())
        if files:
            event.acceptProposedAction()
            self.files_dropped.emit(files)
        else:
            super().dropEvent(event)


class StatusLabel(QLabel):
    """The model's state by Send. It gives way when the window is narrow: the text is cut with
    "…" (the whole of it in the tooltip) instead of widening the composer past the window."""

    def setText(self, text: str) -> None:
        super().setText(text)
        self.setToolTip(text)

    def minimumSizeHint(self) -> QSize:
        return QSize(0, super().minimumSizeHint().height())

    def paintEvent(self, event: QPaintEvent) -> None:
        if self.width() >= self.sizeHint().width():  # it fits: QLabel's own drawing
            super().paintEvent(event)
            return
        rect = self.contentsRect()
        text = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, rect.width())
        painter = QPainter(self)
        painter.setPen(self.palette().color(self.foregroundRole()))
        painter.drawText(rect, int(self.alignment()), text)


class Composer(QFrame):
    send_requested = Signal(str)
    stop_requested = Signal()
    finish_requested = Signal()  # "Finish now": end the reasoning, answer at once
    finish_available = Signal(bool)  # the model is reasoning: Finish Now can act
    attach_requested = Signal()
    effort_chosen = Signal(str)
    edit_last_requested = Signal()
    edit_cancelled = Signal()
    files_dropped = Signal(list)
    setup_requested = Signal()

    def __init__(self, tray: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("composer")
        self.tray = tray
        self._busy = False
        self._editing = False
        self.input = ComposerInput()
        self.input.setObjectName("composerInput")
        self.input.setAccessibleName("Message")
        self.input.setAccessibleDescription(PLACEHOLDER)
        self.input.setPlaceholderText(PLACEHOLDER)
        self.input.setTabChangesFocus(True)
        self._max_input_height = 10_000
        # After the layout has wrapped the new text (textChanged comes before it, one line short).
        self.input.document().documentLayout().documentSizeChanged.connect(
            lambda _size: self.fit_input()
        )
        self.input.submitted.connect(self._submit)
        self.input.edit_last_requested.connect(self.edit_last_requested)
        self.input.escape_pressed.connect(self._escape)
        self.input.files_dropped.connect(self.files_dropped)
        self.edit_banner = QLabel("Editing your last message. Send replaces it; Esc cancels.")
        self.edit_banner.setProperty("role", "secondary")
        self.edit_banner.hide()

        self.attach_button = self._action_button("Attach…", "Attach documents", "attach")
        self.attach_button.clicked.connect(self.attach_requested)
        self.effort_buttons: dict[str, QToolButton] = {}
        self._effort_group = QButtonGroup(self)
        self._effort_group.setExclusive(True)
        effort_label = QLabel("Reasoning:")
        effort_label.setProperty("role", "secondary")
        for value, title in EFFORTS:
            button = self._action_button(title, f"{title} reasoning effort")
            button.setCheckable(True)
            button.setToolTip(
                f"Reasoning effort: {title} (Ctrl+Alt+{len(self.effort_buttons) + 1})"
            )
            button.clicked.connect(lambda _=False, v=value: self.effort_chosen.emit(v))
            self._effort_group.addButton(button)
            self.effort_buttons[value] = button
        self.status_label = StatusLabel()
        self.status_label.setProperty("role", "secondary")
        self.status_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.setup_button = QToolButton()
        self.setup_button.setText("Set Up Model…")
        self.setup_button.setAccessibleName("Set up a model")
        self.setup_button.setToolTip("Download gpt-oss or choose a model folder")
        self.setup_button.setProperty("role", "link")
        self.setup_button.clicked.connect(self.setup_requested)
        self.setup_button.hide()
        self.send_button = QToolButton()
        self.send_button.setProperty("role", "send")
        self.send_button.clicked.connect(self._send_or_stop)
        self.finish_button = QToolButton()
        self.finish_button.setText("Finish Now")
        self.finish_button.setAccessibleName("Finish now")
        keys = QKeySequence(FINISH_SHORTCUT).toString(QKeySequence.SequenceFormat.NativeText)
        self.finish_button.setToolTip(f"Stop reasoning and answer now ({keys})")
        self.finish_button.setProperty("role", "composer-action")
        self.finish_button.clicked.connect(self.finish_now)
        self.finish_button.hide()
        self._reasoning = False
        self._finish_tip = self.finish_button.toolTip()
        self._finish_problem = ""  # why Finish Now cannot work with this model ("" if it can)

        toolbar = QHBoxLayout()
        toolbar.setContentsMargins(0, 0, 0, 0)
        toolbar.addWidget(self.attach_button)
        toolbar.addSpacing(8)
        toolbar.addWidget(effort_label)
        for button in self.effort_buttons.values():
            toolbar.addWidget(button)
        toolbar.addStretch(1)
        toolbar.addWidget(self.status_label)  # shrinks below its text: StatusLabel
        toolbar.addWidget(self.setup_button)
        toolbar.addWidget(self.finish_button)
        toolbar.addWidget(self.send_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.addWidget(tray)
        layout.addWidget(self.edit_banner)
        layout.addWidget(self.input)
        layout.addLayout(toolbar)
        self.set_effort("medium")
        self.set_busy(False)
        self.fit_input()

    @staticmethod
    def _action_button(text: str, accessible: str, icon: str | None = None) -> QToolButton:
        button = QToolButton()
        button.setText(text)
        button.setAccessibleName(accessible)
        button.setProperty("role", "composer-action")
        if icon:
            button.setIcon(resources.icon(icon))
            button.setProperty("icon_name", icon)  # drawn again on an appearance change
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        return button

    # -- state ---------------------------------------------------------------------------

    @property
    def editing(self) -> bool:
        return self._editing

    def text(self) -> str:
        return self.input.toPlainText()

    def set_text(self, text: str) -> None:
        self.input.setPlainText(text)
        self.input.moveCursor(self.input.textCursor().MoveOperation.End)

    def clear(self) -> None:
        self.input.clear()
        self.end_edit()

    def set_effort(self, effort: str) -> None:
        self.effort_buttons[effort].setChecked(True)

    def effort(self) -> str:
        return next(v for v, b in self.effort_buttons.items() if b.isChecked())

    def set_busy(self, busy: bool) -> None:
        """While an answer streams the Send button is Stop."""
        self._busy = busy
        name = "Stop" if busy else "Send"
        self.send_button.setText(name)
        self.send_button.setIcon(resources.icon("stop" if busy else "send"))
        self.send_button.setProperty("icon_name", "stop" if busy else "send")
        self.send_button.setAccessibleName("Stop the answer" if busy else "Send message")
        self.send_button.setToolTip("Stop (Ctrl+. or Esc)" if busy else "Send (Return)")
        self._set_reasoning(False)  # a new answer starts with reading the prompt

    @Slot(object)
    def follow_turn(self, update: TurnUpdate) -> None:
        """Finish Now shows while the model writes its reasoning, until the answer begins (or
        the reasoning is cut)."""
        if not self._busy:
            return
        if update.answer or update.cut is not None:
            self._set_reasoning(False)
        elif update.analysis or update.steps:
            self._set_reasoning(True)

    def _set_reasoning(self, reasoning: bool) -> None:
        if reasoning and not self._reasoning:
            self.finish_button.setEnabled(not self._finish_problem)
        self.finish_button.setVisible(reasoning)
        if reasoning != self._reasoning:
            self._reasoning = reasoning
            self.finish_available.emit(reasoning and not self._finish_problem)

    @Slot(object)
    def set_model(self, info: object) -> None:
        """A server that cannot take reasoning back cannot finish early (ModelInfo's
        `finish_problem`, set by app.remote_backend): Finish Now stays disabled, saying why."""
        self._finish_problem = str(getattr(info, "finish_problem", "") or "")
        self.finish_button.setToolTip(self._finish_problem or self._finish_tip)
        self.finish_button.setEnabled(not self._finish_problem)

    def set_status(self, text: str, *, offer_setup: bool = False) -> None:
        """The model's state by Send; `offer_setup` adds a "Set Up Model…" link beside it."""
        self.status_label.setText(text)
        self.setup_button.setVisible(offer_setup)

    def set_window_height(self, height: int) -> None:
        """The window's height bounds the field's (MAX_INPUT_SHARE of it)."""
        self._max_input_height = max(
            self._input_height(MIN_INPUT_LINES), int(height * MAX_INPUT_SHARE)
        )
        self.fit_input()

    @Slot()
    def fit_input(self) -> None:
        """As tall as its text (wrapped lines count), between MIN_INPUT_LINES and the cap."""
        # A plain-text document's layout measures its height in (wrapped) lines.
        lines = int(self.input.document().documentLayout().documentSize().height())
        wanted = self._input_height(max(MIN_INPUT_LINES, lines))
        height = min(wanted, self._max_input_height)
        if self.input.height() != height or self.input.minimumHeight() != height:
            self.input.setFixedHeight(height)

    def _input_height(self, lines: int) -> int:
        margins = self.input.contentsMargins()
        frame = (
            2 * int(self.input.document().documentMargin())
            + 2 * self.input.frameWidth()
            + margins.top()
            + margins.bottom()
            + 2  # QPlainTextEdit keeps 1 px below the last line before it adds a scroll bar
        )
        return lines * self.input.fontMetrics().lineSpacing() + frame

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.fit_input()  # a new width rewraps the text

    def begin_edit(self, text: str) -> None:
        self._editing = True
        self.set_text(text)
        self.edit_banner.show()
        self.input.setFocus()

    def end_edit(self) -> None:
        self._editing = False
        self.edit_banner.hide()

    # -- slots ---------------------------------------------------------------------------

    @Slot()
    def _submit(self) -> None:
        if not self._busy:
            self.send_requested.emit(self.text())

    @Slot()
    def _send_or_stop(self) -> None:
        if self._busy:
            self.stop_requested.emit()
        else:
            self.send_requested.emit(self.text())

    @Slot()
    def finish_now(self) -> None:
        """The button, or Chat › Finish Now: asks once per reasoning phase."""
        if self._reasoning and self.finish_button.isEnabled():
            self.finish_button.setEnabled(False)  # once: the cut follows within a token
            self.finish_requested.emit()

    @Slot()
    def _escape(self) -> None:
        if self._editing and not self._busy:
            self.clear()
            self.edit_cancelled.emit()
