"""Custom instructions, which gpt-oss reads in its developer message: the app's own (Settings),
a chat's own (Chat › Chat Instructions…, empty = the app's), and one sentence for the answer
length. The text is composed per turn on the UI thread and sent with the TurnRequest; the
engine renders it, and the prompt cache keeps whatever prefix still matches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cache

from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QMenu,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from app import messages, resources
from app.history import HistoryError, HistoryStore
from app.settings import ANSWER_TOKENS, AnswerLength, Settings, SettingsStore

log = logging.getLogger(__name__)

BASE_INSTRUCTIONS = "prompts/developer.md"  # the app's built-in part, before the user's
LENGTH_GUIDANCE = {
    AnswerLength.SHORT: "Keep answers short: a few sentences or a short list, without preamble.",
    AnswerLength.NORMAL: "",  # the built-in instructions as they are, so the cache stays valid
    AnswerLength.LONG: "Give thorough, detailed answers, with examples where they help.",
}
CHAT_PLACEHOLDER = "Empty: this chat follows the custom instructions in Settings."


@cache
def base_instructions() -> str | None:
    """The app's built-in developer instructions (read once), or None if they are missing."""
    try:
        return resources.read_text(BASE_INSTRUCTIONS).strip()
    except FileNotFoundError:
        log.warning("the built-in instructions %s are missing", BASE_INSTRUCTIONS)
        return None


def developer_instructions(base: str | None, custom: str, length: AnswerLength) -> str | None:
    """The developer message's instructions: the built-in ones, the user's, the length's."""
    parts = [p.strip() for p in (base or "", custom, LENGTH_GUIDANCE[length]) if p.strip()]
    return "\n\n".join(parts) or None


def custom_instructions(store: HistoryStore, conversation_id: int | None, app_text: str) -> str:
    """The chat's own instructions if it has any, else the app's."""
    if conversation_id is None:
        return app_text
    try:
        own = store.conversation_instructions(conversation_id)
    except (HistoryError, KeyError) as e:  # the app's instructions still make a good answer
        log.warning("cannot read the instructions of chat %d: %s", conversation_id, e)
        return app_text
    return own if own and own.strip() else app_text


def turn_instructions(
    store: HistoryStore, conversation_id: int | None, settings: Settings
) -> str | None:
    """What the next turn of this chat sends as the developer message's instructions."""
    custom = custom_instructions(store, conversation_id, settings.custom_instructions)
    return developer_instructions(base_instructions(), custom, settings.answer_length)


def answer_tokens(settings: Settings) -> int | None:
    """The answer's token cap for the chosen length; None: the engine's own."""
    return ANSWER_TOKENS[settings.answer_length]


class ChatInstructionsDialog(QDialog):
    """Chat › Chat Instructions…: this chat's own instructions, saved with the chat."""

    def __init__(self, text: str, app_text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Chat Instructions")
        self.setWindowModality(Qt.WindowModality.WindowModal)  # a sheet on a Mac
        intro = QLabel(
            "How gpt-oss should answer in this chat (a role, a tone, a format). They replace "
            "the custom instructions in Settings for this chat only."
        )
        intro.setWordWrap(True)
        self.editor = QPlainTextEdit(text)
        self.editor.setAccessibleName("Chat instructions")
        self.editor.setPlaceholderText(
            CHAT_PLACEHOLDER + (f"\n\n{app_text}" if app_text.strip() else "")
        )
        self.editor.setTabChangesFocus(True)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.editor, 1)
        layout.addWidget(buttons)
        self.resize(520, 320)

    def text(self) -> str:
        return self.editor.toPlainText().strip()


class ChatInstructionsEditor(QObject):
    """Opens the dialog for the chat on screen (`current()`) and saves what the user wrote. The
    menu item is enabled only while a saved chat is shown (a new chat has nowhere to keep them
    until its first message); it is checked whenever its menu opens."""

    def __init__(
        self,
        store: HistoryStore,
        settings: SettingsStore,
        action: QAction,
        current: Callable[[], int | None],
        parent: QWidget,
    ) -> None:
        super().__init__(parent)
        self._store, self._settings, self._action = store, settings, action
        self._current = current
        self._window = parent
        self.dialog: ChatInstructionsDialog | None = None
        action.triggered.connect(self.open)
        menu = action.parent()
        if isinstance(menu, QMenu):
            menu.aboutToShow.connect(self.refresh)
        self.refresh()

    @Slot()
    def refresh(self) -> None:
        self._action.setEnabled(self._current() is not None)

    @Slot()
    def open(self) -> None:
        self.refresh()
        chat = self._current()
        if chat is None:
            return
        try:
            text = self._store.conversation_instructions(chat) or ""
        except (HistoryError, KeyError) as e:
            messages.error(f"Open the chat again to edit its instructions: {e}")
            return
        app_text = self._settings.settings.custom_instructions
        dialog = ChatInstructionsDialog(text, app_text, self._window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self._save(chat, dialog.text()))
        self.dialog = dialog
        dialog.open()

    def _save(self, conversation_id: int, text: str) -> None:
        try:
            self._store.set_conversation_instructions(conversation_id, text or None)
        except (HistoryError, KeyError) as e:
            messages.error(f"Save the chat's instructions again: they were not saved. {e}")
