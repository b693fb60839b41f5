"""Settings › Model › Use a server (issue 14): the server's address, its API token (kept in the
system keychain, never in the settings file), TLS verification with an optional CA file, and a
Probe button that lists the server's models and what it supports.

Changes apply at once, like the rest of Settings: a change to the server (or its token) reloads
"the model", which for a server means probing it. The probe runs on a short-lived thread and
comes back as a value through a queued signal, so the window never waits for the network.
"""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from app import messages
from app.engine_client import EngineClient
from app.remote_backend import (
    read_token,
    remote_fields,
    save_token,
    server_config,
    uses_server,
)
from app.remote_client import RemoteError, ServerProbe, probe
from app.settings import Settings, SettingsStore

KEPT = "Kept in the keychain"


class _Prober(QObject):
    """Runs one probe off the UI thread; `probed` carries a ServerProbe or a RemoteError."""

    probed = Signal(object)

    def start(self, settings: Settings, token: str) -> None:
        config = server_config(settings, token)

        def run() -> None:
            try:
                self.probed.emit(probe(config))
            except RemoteError as e:
                self.probed.emit(e)

        threading.Thread(target=run, name="server-probe", daemon=True).start()


class RemoteSettings(QGroupBox):
    def __init__(
        self,
        store: SettingsStore,
        engine: EngineClient | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__("Answers computed on", parent)
        self._store = store
        self._engine = engine
        self._shown = remote_fields(store.settings)
        self.use_server = QCheckBox("Use a server (OpenAI-compatible, e.g. another Mac's OSS Desk)")
        self.use_server.setAccessibleName("Use a server")
        self.url = QLineEdit()
        self.url.setPlaceholderText("https://studio.local:8000/v1")
        self.url.setAccessibleName("Server address")
        self.token = QLineEdit()
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setAccessibleName("API token")
        self.verify_tls = QCheckBox("Verify the server's certificate")
        self.verify_tls.setAccessibleName("Verify the server's certificate")
        self.ca_file = QLineEdit()
        self.ca_file.setPlaceholderText("System certificates")
        self.ca_file.setAccessibleName("CA file")
        self.choose_ca = QPushButton("Choose…")
        self.choose_ca.setAccessibleName("Choose the CA file")
        self.model = QComboBox()
        self.model.setEditable(True)
        self.model.setAccessibleName("Server model")
        self._model_text = self.model.lineEdit()
        assert self._model_text is not None  # an editable combo box has one
        self._model_text.setPlaceholderText("The server's first model")
        self._model_text.setAccessibleName("Server model")
        self.probe_button = QPushButton("Probe")
        self.probe_button.setAccessibleName("Probe the server")
        self.probe_result = QLabel("Nothing is sent anywhere until you use a server.")
        self.probe_result.setWordWrap(True)
        self.probe_result.setProperty("role", "secondary")
        self.where = QLabel()
        ca_row = QHBoxLayout()
        ca_row.addWidget(self.ca_file, 1)
        ca_row.addWidget(self.choose_ca)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model, 1)
        model_row.addWidget(self.probe_button)
        form = QFormLayout(self)
        form.addRow(self.where)
        form.addRow(self.use_server)
        form.addRow("Address:", self.url)
        form.addRow("API token:", self.token)
        form.addRow("", self.verify_tls)
        form.addRow("CA file:", ca_row)
        form.addRow("Model:", model_row)
        form.addRow("", self.probe_result)
        self._prober = _Prober(self)
        self._prober.probed.connect(self._probed)
        self._show(store.settings)
        store.changed.connect(self._show)
        self.use_server.toggled.connect(lambda on: store.update(remote_enabled=on))
        self.url.editingFinished.connect(self._url_edited)
        self.token.editingFinished.connect(self._token_edited)
        self.verify_tls.toggled.connect(lambda on: store.update(remote_verify_tls=on))
        self.ca_file.editingFinished.connect(
            lambda: store.update(remote_ca_file=self.ca_file.text().strip())
        )
        self.choose_ca.clicked.connect(self._choose_ca)
        self.model.activated.connect(lambda _i: self._model_edited())
        self._model_text.editingFinished.connect(self._model_edited)
        self.probe_button.clicked.connect(self.probe)

    @Slot()
    def probe(self) -> None:
        settings = self._store.settings
        if not settings.remote_url.strip():
            self.probe_result.setText("Enter the server's address first.")
            return
        self.probe_button.setEnabled(False)
        self.probe_result.setText(f"Probing {server_config(settings, '').host}…")
        self._prober.start(settings, self.token.text() or read_token(settings.remote_url.strip()))

    @Slot(object)
    def _probed(self, outcome: ServerProbe | RemoteError) -> None:
        self.probe_button.setEnabled(True)
        if isinstance(outcome, RemoteError):
            self.probe_result.setText(str(outcome))
            return
        chosen = self.model.currentText()
        self.model.clear()
        self.model.addItems(list(outcome.models))
        self.model.setEditText(chosen)
        self.probe_result.setText(outcome.summary())

    @Slot(object)
    def _show(self, settings: Settings) -> None:
        for widget in (self.use_server, self.verify_tls):
            widget.blockSignals(True)
        self.use_server.setChecked(settings.remote_enabled)
        self.verify_tls.setChecked(settings.remote_verify_tls)
        for widget in (self.use_server, self.verify_tls):
            widget.blockSignals(False)
        if not self.url.hasFocus():
            self.url.setText(settings.remote_url)
        if not self.ca_file.hasFocus():
            self.ca_file.setText(settings.remote_ca_file)
        if not self.model.hasFocus():
            self.model.setEditText(settings.remote_model)
        self._show_token_state(settings)
        server = server_config(settings, "").host if uses_server(settings) else ""
        self.where.setText(f"Answers are computed on {server or 'this Mac'}.")
        fields = remote_fields(settings)
        if fields != self._shown:
            was_remote = self._shown[0] and bool(self._shown[1].strip())
            self._shown = fields
            if was_remote or uses_server(settings):  # a local model is not reloaded for nothing
                self._reconnect()

    def _show_token_state(self, settings: Settings) -> None:
        url = settings.remote_url.strip()
        kept = bool(url) and bool(read_token(url))
        self.token.setPlaceholderText(KEPT if kept else "None (the server needs no token)")

    @Slot()
    def _url_edited(self) -> None:
        self._store.update(remote_url=self.url.text().strip())

    @Slot()
    def _model_edited(self) -> None:
        self._store.update(remote_model=self.model.currentText().strip())

    @Slot()
    def _token_edited(self) -> None:
        url = self._store.settings.remote_url.strip()
        token = self.token.text()
        if not url or not token:
            return  # an empty field keeps the token the keychain has
        try:
            save_token(url, token)
        except RemoteError as e:
            messages.error(str(e), details=e.details or None)
            return
        self.token.clear()  # it is in the keychain now; the field never holds it for long
        self._show_token_state(self._store.settings)
        if uses_server(self._store.settings):
            self._reconnect()

    @Slot()
    def _choose_ca(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose the server's CA certificate", "", "Certificates (*.pem *.crt *.cer)"
        )
        if path:
            self._store.update(remote_ca_file=path)

    def _reconnect(self) -> None:
        """Loads "the model" again: the server's, or this Mac's when the server was turned off."""
        engine = self._engine
        if engine is None:
            return
        settings = self._store.settings
        path = engine.model_path or settings.model_dir
        if not uses_server(settings) and not settings.model_dir and not engine.model_path:
            return
        engine.cancel()
        engine.load(path, settings.profile.value)
