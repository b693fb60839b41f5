"""Settings › Server: switch the API server on, its port, its key, network access, base URL and
a status line. The values live in Settings; app/app_server.py starts and stops the server."""

from __future__ import annotations

from PySide6.QtCore import Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from app.app_server import AppServer
from app.settings import Settings, SettingsStore
from server.auth import KeyError_

MIN_PORT = 1024  # lower ports need administrator rights on a Mac


class ServerSettings(QGroupBox):
    def __init__(
        self, store: SettingsStore, server: AppServer, parent: QWidget | None = None
    ) -> None:
        super().__init__("Server", parent)
        self._store, self._server = store, server
        self.enabled = QCheckBox("Serve the model to other apps (OpenAI-compatible API)")
        self.enabled.setAccessibleName("Serve the model to other apps")
        self.port = QSpinBox()
        self.port.setRange(MIN_PORT, 65535)
        self.port.setAccessibleName("Server port")
        self.port.lineEdit().setAccessibleName("Server port")
        self.port.setKeyboardTracking(False)  # restart once, when the number is complete
        self.token = QLineEdit()
        self.token.setReadOnly(True)
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setAccessibleName("API key")
        self.copy_token = QPushButton("Copy")
        self.copy_token.setAccessibleName("Copy the API key")
        self.regenerate = QPushButton("Regenerate")
        self.regenerate.setAccessibleName("Regenerate the API key")
        self.regenerate.setToolTip("Makes a new key; apps using the old one must be given it.")
        self.network = QCheckBox("Allow other devices on my network")
        self.network.setAccessibleName("Allow other devices on my network")
        self.network.setToolTip("They still need the key. Off: only apps on this Mac can connect.")
        self.url = QLineEdit()
        self.url.setReadOnly(True)
        self.url.setAccessibleName("Base URL")
        self.copy_url = QPushButton("Copy")
        self.copy_url.setAccessibleName("Copy the base URL")
        self.status = QLabel()
        self.status.setProperty("role", "secondary")
        self.status.setWordWrap(True)
        self.status.setAccessibleName("Server status")

        token_row = QHBoxLayout()
        token_row.addWidget(self.token, 1)
        token_row.addWidget(self.copy_token)
        token_row.addWidget(self.regenerate)
        url_row = QHBoxLayout()
        url_row.addWidget(self.url, 1)
        url_row.addWidget(self.copy_url)
        form = QFormLayout(self)
        form.addRow("", self.enabled)
        form.addRow("Port:", self.port)
        form.addRow("API key:", token_row)
        form.addRow("", self.network)
        form.addRow("Base URL:", url_row)
        form.addRow("Status:", self.status)

        self._show(store.settings)
        self._show_status(server.status)
        store.changed.connect(self._show)
        server.status_changed.connect(self._show_status)
        self.enabled.toggled.connect(lambda on: store.update(server_enabled=on))
        self.port.valueChanged.connect(lambda port: store.update(server_port=int(port)))
        self.network.toggled.connect(lambda on: store.update(server_allow_network=on))
        self.copy_token.clicked.connect(lambda: self._copy(self.token.text()))
        self.copy_url.clicked.connect(lambda: self._copy(self.url.text()))
        self.regenerate.clicked.connect(self._regenerate)

    @Slot(object)
    def _show(self, settings: Settings) -> None:
        for control in (self.enabled, self.port, self.network):
            control.blockSignals(True)  # showing a value must not write it back
        try:
            self.enabled.setChecked(settings.server_enabled)
            self.port.setValue(max(MIN_PORT, settings.server_port))
            self.network.setChecked(settings.server_allow_network)
        finally:
            for control in (self.enabled, self.port, self.network):
                control.blockSignals(False)
        self._show_key()
        self.url.setText(self._server.base_url(settings))

    @Slot(str)
    def _show_status(self, text: str) -> None:
        self.status.setText(text)
        self.url.setText(self._server.base_url())

    def _show_key(self) -> None:
        try:
            self.token.setText(self._server.key())
            self.token.setCursorPosition(0)
        except (KeyError_, OSError) as e:
            self.token.clear()
            self.status.setText(str(e))

    @Slot()
    def _regenerate(self) -> None:
        try:
            self._server.regenerate_key()
        except OSError as e:
            self.status.setText(
                f"A new key cannot be written to {self._server.key_path} ({e.strerror}). "
                "Check the folder's permissions."
            )
        self._show_key()

    @staticmethod
    def _copy(text: str) -> None:
        clipboard = QGuiApplication.clipboard()
        if clipboard is not None:
            clipboard.setText(text)
