"""Asking the user before a tool call runs: a sheet on the main window with exactly what would run.

The worker's tool loop waits (engine.tools.approval) while this is open; the window answers with
the Decision the user picked. The code or the arguments are shown as the model wrote them (JSON
only re-indented), coloured, selectable and scrollable. "Run once" is the default button, but a
Return that arrives just as the sheet appears (typed for the composer) or auto-repeats does not
press it: the user must have seen the sheet first.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QElapsedTimer, QEvent, QObject, Qt, Signal, Slot
from PySide6.QtGui import QKeyEvent, QShowEvent, QTextCursor, QTextOption
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.code_highlight import code_font, insert_highlighted, is_dark
from app.settings import SettingsStore
from engine import ApprovalRequest, Decision

if TYPE_CHECKING:
    from app.tool_turns import ToolTurns

log = logging.getLogger(__name__)

# A Return pressed this soon after the sheet appears was meant for what had focus before it.
RETURN_GRACE_MS = 600
CODE_LINES_SHOWN = 18  # the code box grows to this many lines, then scrolls
MIN_WIDTH = 560
_RETURN_KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter)


def tool_name(request: ApprovalRequest) -> str:
    """The tool's short name for a button: "Python", "read_file"."""
    return request.title.split(" (", 1)[0].strip() or request.recipient


def shown_arguments(request: ApprovalRequest) -> str:
    """Code as written; JSON arguments indented so nested values can be read (same content)."""
    if request.language != "json":
        return request.arguments
    try:
        return json.dumps(json.loads(request.arguments), indent=2, ensure_ascii=False)
    except ValueError:
        return request.arguments  # the tool will get it as written, so show it as written


class ApprovalDialog(QDialog):
    """Shows one tool call; `decision` is the answer once it closes (Decline if dismissed)."""

    decided = Signal(object)  # Decision

    def __init__(
        self,
        request: ApprovalRequest,
        parent: QWidget | None = None,
        *,
        return_grace_ms: int = RETURN_GRACE_MS,
    ) -> None:
        super().__init__(parent)
        self.request = request
        self._decision: Decision | None = None
        self._grace_ms = return_grace_ms
        self._shown = QElapsedTimer()
        if sys.platform == "darwin":
            self.setWindowFlag(Qt.WindowType.Sheet)  # slides out of the window's title bar
        self.setWindowModality(Qt.WindowModality.WindowModal)
        name = tool_name(request)
        is_code = request.language == "python"
        self.setWindowTitle(f"Allow {name}?")
        self.setAccessibleName(f"Allow {name} to run")
        self.setMinimumWidth(MIN_WIDTH)

        self.heading = QLabel(f"Allow {request.title} to run?")
        heading_font = self.heading.font()
        heading_font.setBold(True)
        heading_font.setPointSizeF(heading_font.pointSizeF() * 1.15)
        self.heading.setFont(heading_font)
        self.heading.setWordWrap(True)
        self.explanation = QLabel(
            "The model wrote this code. It runs in a sandbox without network access; nothing "
            "runs until you choose."
            if is_code
            else "The model wants to call this tool with these arguments; nothing is sent "
            "until you choose."
        )
        self.explanation.setWordWrap(True)
        self.explanation.setProperty("role", "secondary")

        self.code = QPlainTextEdit()
        self.code.setProperty("role", "code")
        self.code.setReadOnly(True)
        self.code.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
            | Qt.TextInteractionFlag.TextSelectableByKeyboard
        )
        self.code.setFont(code_font())
        self.code.setWordWrapMode(
            QTextOption.WrapMode.NoWrap
            if is_code
            else QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere
        )
        self.code.setTabChangesFocus(True)
        self.code.setAccessibleName("Code to run" if is_code else "Arguments")
        self.code.setAccessibleDescription(f"What {name} will be given, exactly.")
        text = shown_arguments(request)
        insert_highlighted(
            QTextCursor(self.code.document()), text, request.language, dark=is_dark(self)
        )
        self.code.moveCursor(QTextCursor.MoveOperation.Start)
        lines = min(CODE_LINES_SHOWN, max(3, text.count("\n") + 1))
        spacing = self.code.fontMetrics().lineSpacing()
        margins = 2 * int(self.code.document().documentMargin()) + 2 * self.code.frameWidth()
        self.code.setMinimumHeight(lines * spacing + margins + 4)

        self.once_button = self._button("Run once", "Run this call now, and ask again next time.")
        self.chat_button = self._button(
            "Allow in this chat", f"Run it, and every later call to {name} in this chat."
        )
        self.always_button = self._button(
            f"Always allow {name}",
            f"Run it, and every later call to {name} in every chat (Settings › Tools lists it).",
        )
        self.decline_button = self._button(
            "Decline", "Do not run it; the model is told that you declined."
        )
        self.once_button.setDefault(True)
        self.once_button.clicked.connect(lambda: self._decide(Decision.ONCE))
        self.chat_button.clicked.connect(lambda: self._decide(Decision.CHAT))
        self.always_button.clicked.connect(lambda: self._decide(Decision.ALWAYS))
        self.decline_button.clicked.connect(lambda: self._decide(Decision.DECLINE))
        buttons = QHBoxLayout()
        buttons.addWidget(self.decline_button)
        buttons.addStretch(1)
        for button in (self.always_button, self.chat_button, self.once_button):
            buttons.addWidget(button)

        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.explanation)
        layout.addWidget(self.code, 1)
        layout.addLayout(buttons)
        for widget in (self.code, self.once_button, self.chat_button, self.always_button):
            widget.installEventFilter(self)
        self.decline_button.installEventFilter(self)
        self.once_button.setFocus()

    def _button(self, text: str, description: str) -> QPushButton:
        button = QPushButton(text)
        button.setAutoDefault(False)  # Return presses the default button, as on a Mac
        button.setAccessibleName(text)
        button.setAccessibleDescription(description)
        button.setToolTip(description)
        return button

    @property
    def decision(self) -> Decision:
        return self._decision or Decision.DECLINE

    def _decide(self, decision: Decision) -> None:
        if self._decision is not None:
            return
        self._decision = decision
        self.decided.emit(decision)
        self.done(
            QDialog.DialogCode.Rejected.value
            if decision is Decision.DECLINE
            else QDialog.DialogCode.Accepted.value
        )

    def reject(self) -> None:
        """Esc, the close button, or the window going away: the call does not run."""
        self._decide(Decision.DECLINE)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._shown.start()

    def _too_soon(self, event: QKeyEvent) -> bool:
        early = not self._shown.isValid() or self._shown.elapsed() < self._grace_ms
        return event.key() in _RETURN_KEYS and (event.isAutoRepeat() or early)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if isinstance(event, QKeyEvent) and event.type() == QEvent.Type.KeyPress:
            return self._too_soon(event)  # eaten: it was typed before the sheet was seen
        return False

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if self._too_soon(event):
            event.accept()
            return
        super().keyPressEvent(event)


def ask(parent: QWidget | None, request: ApprovalRequest) -> Decision:
    """Shows the sheet for `request` on `parent` and waits for the user's Decision."""
    dialog = ApprovalDialog(request, parent)
    try:
        dialog.exec()
        return dialog.decision
    finally:
        dialog.deleteLater()


def ask_later(
    parent: QWidget, request: ApprovalRequest, answer: Callable[[Decision], None]
) -> ApprovalDialog:
    """Shows the sheet for `request` and returns at once; `answer` gets the Decision, once,
    when the user decides (Decline if the sheet goes away unanswered). No nested event loop:
    the window keeps streaming and quitting, and whoever drives the window keeps control."""
    dialog = ApprovalDialog(request, parent)
    answered: list[Decision] = []

    def decided(decision: Decision) -> None:
        if not answered:
            answered.append(decision)
            answer(decision)

    dialog.decided.connect(decided)
    dialog.destroyed.connect(lambda: decided(Decision.DECLINE))
    dialog.finished.connect(dialog.deleteLater)
    dialog.open()
    return dialog


def withdraw(parent: QWidget, request: ApprovalRequest) -> bool:
    """Closes the open question about `request` (Stop was pressed first), as declined; whether
    one was open."""
    for dialog in parent.findChildren(ApprovalDialog):
        if dialog.request == request and dialog.isVisible():
            dialog.reject()
            return True
    return False


# Shows a question and returns at once; the callback gets the user's answer later.
AskLater = Callable[[ApprovalRequest, Callable[[Decision], None]], object]


class ApprovalBridge(QObject):
    """The UI thread's side: asks the user (the approval dialog) and hands the decision back;
    "always" goes to `save_always` (the settings), and a question withdrawn by Stop to
    `withdraw` (which closes the dialog). Make it on the UI thread."""

    def __init__(
        self,
        tools: ToolTurns,
        ask: Callable[[ApprovalRequest], Decision] | None = None,
        save_always: Callable[[str], None] | None = None,
        *,
        withdraw: Callable[[ApprovalRequest], object] | None = None,
        ask_later: AskLater | None = None,
        parent: QObject | None = None,
    ) -> None:
        """`ask` answers at once (a blocking dialog, or a test); `ask_later` shows the question
        and calls back with the answer (the app's sheet: no nested event loop)."""
        super().__init__(parent)
        if (ask is None) == (ask_later is None):
            raise ValueError("give either ask or ask_later")
        self._tools = tools
        self._ask_user = ask
        self._ask_later = ask_later
        self._save_always = save_always
        self._withdraw = withdraw
        queued = Qt.ConnectionType.QueuedConnection
        tools.approval_requested.connect(self._ask, queued)
        tools.always_approved.connect(self._always, queued)
        tools.approval_withdrawn.connect(self._withdrawn, queued)

    @Slot(object)
    def _ask(self, request: ApprovalRequest) -> None:
        def answer(decision: Decision) -> None:
            self._tools.answer_approval(decision, request)

        try:
            if self._ask_later is not None:
                self._ask_later(request, answer)
                return
            assert self._ask_user is not None
            decision = self._ask_user(request)
        except Exception:  # the boundary of this round trip: the call is declined, not lost
            log.exception("asking to approve %s failed", request.recipient)
            decision = Decision.DECLINE
        answer(decision)

    @Slot(str)
    def _always(self, recipient: str) -> None:
        if self._save_always is not None:
            self._save_always(recipient)

    @Slot(object)
    def _withdrawn(self, request: ApprovalRequest) -> None:
        if self._withdraw is not None:
            self._withdraw(request)


def install_approvals(tools: ToolTurns, window: QWidget, settings: SettingsStore) -> ApprovalBridge:
    """The app's wiring: the approval sheet on `window`, "always" saved in the settings."""

    def save_always(recipient: str) -> None:
        known = settings.settings.always_approved_tools
        if recipient not in known:
            settings.update(always_approved_tools=[*known, recipient])

    return ApprovalBridge(
        tools,
        save_always=save_always,
        withdraw=lambda request: withdraw(window, request),
        ask_later=lambda request, answer: ask_later(window, request, answer),
        parent=window,
    )
