"""Where the user writes: a native text field (spelling, dictation and emoji come free with it),
the attachment chips, and a toolbar with Attach, the reasoning effort, and Send/Stop.

Return sends and Shift+Return starts a new line; Up in an empty field edits the last message;
Esc leaves editing. Dropped files become attachments; dropped text is inserted as usual.
"""

from __future__ import annotations

from PySide6.QtCore import QMimeData, Qt, Signal, Slot
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent, QKeyEvent
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

EFFORTS = (("low", "Low"), ("medium", "Medium"), ("high", "High"))
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


class Composer(QFrame):
    send_requested = Signal(str)
    stop_requested = Signal()
    attach_requested = Signal()
    effort_chosen = Signal(str)
    edit_last_requested = Signal()
    edit_cancelled = Signal()
    files_dropped = Signal(list)

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
        self.input.setFixedHeight(76)
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
        self.status_label = QLabel()
        self.status_label.setProperty("role", "secondary")
        self.send_button = QToolButton()
        self.send_button.setProperty("role", "send")
        self.send_button.clicked.connect(self._send_or_stop)

        toolbar = QHBoxLayout()
        toolbar.setContentsMargins(0, 0, 0, 0)
        toolbar.addWidget(self.attach_button)
        toolbar.addSpacing(8)
        toolbar.addWidget(effort_label)
        for button in self.effort_buttons.values():
            toolbar.addWidget(button)
        toolbar.addStretch(1)
        toolbar.addWidget(self.status_label)
        toolbar.addWidget(self.send_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.addWidget(tray)
        layout.addWidget(self.edit_banner)
        layout.addWidget(self.input)
        layout.addLayout(toolbar)
        self.set_effort("medium")
        self.set_busy(False)

    @staticmethod
    def _action_button(text: str, accessible: str, icon: str | None = None) -> QToolButton:
        button = QToolButton()
        button.setText(text)
        button.setAccessibleName(accessible)
        button.setProperty("role", "composer-action")
        if icon:
            button.setIcon(resources.icon(icon))
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
        self.send_button.setAccessibleName("Stop the answer" if busy else "Send message")
        self.send_button.setToolTip("Stop (Ctrl+. or Esc)" if busy else "Send (Return)")

    def set_status(self, text: str) -> None:
        self.status_label.setText(text)

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
    def _escape(self) -> None:
        if self._editing and not self._busy:
            self.clear()
            self.edit_cancelled.emit()
