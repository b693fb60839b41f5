"""The non-modal message banner: what went wrong (or right), with "Copy details" for a report.

Banners stack above the conversation, newest last, at most MAX_BANNERS; info banners close by
themselves, warnings and errors stay until closed. A message that repeats one already shown, or
that has the same topic, replaces it rather than stacking. Nothing here blocks or steals focus.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from app.messages import UserMessage

# Two: a newer problem does not push the one the user is reading out of sight, and a third
# would take the conversation's room.
MAX_BANNERS = 2
INFO_TIMEOUT_MS = 8000
_PREFIX = {"info": "", "warning": "Warning: ", "error": "Error: "}


class Banner(QFrame):
    closed = Signal()

    def __init__(self, message: UserMessage, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.message = message
        self.setProperty("role", "banner")
        self.setProperty("level", message.level)
        self.label = QLabel(message.text)
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setAccessibleName(_PREFIX[message.level] + message.text)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self.label, 1)
        self.action_button: QToolButton | None = None
        if message.action is not None:
            self.action_button = QToolButton()
            self.action_button.setText(message.action.label)
            self.action_button.setAccessibleName(message.action.label)
            self.action_button.clicked.connect(self.run_action)
            layout.addWidget(self.action_button)
        self.copy_button: QToolButton | None = None
        if message.details:
            self.copy_button = QToolButton()
            self.copy_button.setText("Copy details")
            self.copy_button.setAccessibleName("Copy details")
            self.copy_button.setToolTip("Copy the technical details, e.g. for a bug report")
            self.copy_button.clicked.connect(self.copy_details)
            layout.addWidget(self.copy_button)
        self.close_button = QToolButton()
        self.close_button.setText("✕")
        self.close_button.setAutoRaise(True)
        self.close_button.setAccessibleName("Close message")
        self.close_button.clicked.connect(self.dismiss)
        layout.addWidget(self.close_button)

    @Slot()
    def copy_details(self) -> None:
        QGuiApplication.clipboard().setText(f"{self.message.text}\n\n{self.message.details}")

    @Slot()
    def run_action(self) -> None:
        if self.message.action is not None:
            self.message.action.run()
        self.dismiss()

    @Slot()
    def dismiss(self) -> None:
        self.hide()
        self.closed.emit()
        self.deleteLater()


class BannerArea(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(12, 6, 12, 0)
        self._layout.setSpacing(4)
        self._banners: list[Banner] = []
        self.hide()

    def banners(self) -> list[Banner]:
        return list(self._banners)

    def texts(self) -> list[str]:
        return [b.message.text for b in self._banners]

    @Slot(object)
    def show_message(self, message: UserMessage) -> None:
        for old in list(self._banners):
            # The same words (at another level, e.g. a warning on attach, an error on send) or
            # the same topic: the newer banner takes the older one's place.
            if old.message.text == message.text or (
                message.topic and old.message.topic == message.topic
            ):
                old.dismiss()
        banner = Banner(message, self)
        banner.closed.connect(lambda b=banner: self._forget(b))
        self._banners.append(banner)
        self._layout.addWidget(banner)
        while len(self._banners) > MAX_BANNERS:
            self._banners[0].dismiss()
        if message.level == "info":
            QTimer.singleShot(INFO_TIMEOUT_MS, banner, banner.dismiss)
        self.show()

    @Slot(str)
    def withdraw(self, topic: str) -> None:
        for banner in list(self._banners):
            if banner.message.topic == topic:
                banner.dismiss()

    def clear(self) -> None:
        for banner in list(self._banners):
            banner.dismiss()

    def _forget(self, banner: Banner) -> None:
        if banner in self._banners:
            self._banners.remove(banner)
        self.setVisible(bool(self._banners))
