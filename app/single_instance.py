"""One OSS Desk per user: a second launch hands its files to the first, which comes to the front.

    instance = SingleInstance("oss-desk", app)
    if not instance.is_primary():
        instance.send_files(sys.argv[1:])       # and asks the first to activate
        sys.exit(0)
    instance.files_received.connect(window.open_files)
    instance.activation_requested.connect(window.bring_to_front)

The first instance listens on a QLocalServer (a Unix socket only this user can open). A second
one finds it by connecting, sends one JSON line {"files": [...], "activate": true}, and exits.
A socket file left by a crash answers nobody; it is removed and taken over.

The app id names the data folder (`folder_app_id`), so two spellings of one folder find each
other. An instance that is quitting calls close() first, so that a launch meanwhile becomes the
next first instance instead of handing its files to one that is going away.
"""

from __future__ import annotations

import json
import logging

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from app.handover import handover_message, server_name

log = logging.getLogger(__name__)

TIMEOUT_MS = 1000
MAX_MESSAGE_BYTES = 1 << 20  # thousands of paths; anything bigger is not from us


class SingleInstance(QObject):
    files_received = Signal(list)  # absolute paths, as the second launch saw them
    activation_requested = Signal()

    def __init__(self, app_id: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.server_name = server_name(app_id)
        self._primary: bool | None = None
        self._server: QLocalServer | None = None
        self._client: QLocalSocket | None = None

    def is_primary(self) -> bool:
        """True for the first instance (which now listens); decided once, on the first call."""
        if self._primary is None:
            self._primary = self._claim()
        return self._primary

    def send_files(self, paths: list[str]) -> bool:
        """From a second instance: pass `paths` to the first and ask it to activate.

        False when this is the first instance or the message could not be delivered.
        """
        if self.is_primary() or self._client is None:
            return False
        client, self._client = self._client, None
        client.write(handover_message(paths))
        delivered = True
        while client.bytesToWrite() > 0 and delivered:
            delivered = client.waitForBytesWritten(TIMEOUT_MS)
        client.disconnectFromServer()
        if client.state() != QLocalSocket.LocalSocketState.UnconnectedState:
            client.waitForDisconnected(TIMEOUT_MS)
        client.deleteLater()
        if not delivered:
            log.warning("could not hand files to the running instance: %s", client.errorString())
        return delivered

    def close(self) -> None:
        """Stop listening and remove the socket file (also done when this object is destroyed)."""
        if self._server is not None:
            self._server.close()
            self._server = None

    def _claim(self) -> bool:
        if self._connect_to_primary():
            return False
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(self.server_name):
            # Someone may have started listening a moment ago; otherwise the file is stale.
            if self._connect_to_primary():
                return False
            QLocalServer.removeServer(self.server_name)
            if not server.listen(self.server_name):
                log.warning(
                    "cannot listen as %s (%s); files from other launches will not arrive",
                    self.server_name,
                    server.errorString(),
                )
                return True
        server.newConnection.connect(self._accept)
        self._server = server
        return True

    def _connect_to_primary(self) -> bool:
        client = QLocalSocket(self)
        client.connectToServer(self.server_name)
        if client.waitForConnected(TIMEOUT_MS):
            self._client = client
            return True
        client.deleteLater()
        return False

    @Slot()
    def _accept(self) -> None:
        assert self._server is not None
        while self._server.hasPendingConnections():
            _Connection(self._server.nextPendingConnection(), self)


class _Connection(QObject):
    """One incoming connection: collects its bytes and hands each line to the SingleInstance."""

    def __init__(self, socket: QLocalSocket, owner: SingleInstance) -> None:
        super().__init__(owner)
        self._socket = socket
        self._owner = owner
        self._buffer = bytearray()
        socket.setParent(self)
        socket.readyRead.connect(self._read)
        socket.disconnected.connect(self._finish)
        self._read()  # bytes may have arrived before the connections were made

    @Slot()
    def _read(self) -> None:
        self._buffer += self._socket.readAll().data()
        while (end := self._buffer.find(b"\n")) >= 0:
            line, self._buffer = bytes(self._buffer[:end]), self._buffer[end + 1 :]
            self._handle(line)
        if len(self._buffer) > MAX_MESSAGE_BYTES:
            log.warning("dropped an oversized message from another launch")
            self._buffer.clear()
            self._socket.abort()

    @Slot()
    def _finish(self) -> None:
        self._read()
        if self._buffer.strip():
            self._handle(bytes(self._buffer))
        self._buffer.clear()
        self.deleteLater()

    def _handle(self, line: bytes) -> None:
        try:
            message = json.loads(line)
            files = message.get("files", [])
            if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
                raise ValueError("files must be a list of strings")
        except (ValueError, AttributeError) as e:
            log.warning("ignored a malformed message from another launch: %s", e)
            return
        if files:
            self._owner.files_received.emit(files)
        if message.get("activate"):
            self._owner.activation_requested.emit()
