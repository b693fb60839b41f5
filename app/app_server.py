"""Settings › Server: the running app serves its loaded model over the OpenAI-compatible API.

uvicorn runs on a thread of its own (not the window's, not the engine's) and answers through
app/served_turns.py, so every request runs on the engine thread with the window's model. The
socket is bound here, on the UI thread, before uvicorn starts: a port in use is known at once
and said in the status line, instead of ending uvicorn's thread with SystemExit. The key is kept
in `server-api-key` (mode 0600) in the data folder, in the same format as `oss-desk-serve`'s.
Stopping (switched off, quit) sets uvicorn's exit flags and cancels every request, so the thread
ends within a few of uvicorn's 0.1 s ticks.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal, Slot

from app.engine_client import EngineClient
from app.engine_requests import ModelInfo
from app.served_turns import EngineRunner
from app.settings import Settings, SettingsStore
from server.auth import KeyError_, generated_key, make_key

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger(__name__)

KEY_FILE = "server-api-key"
RESPONSES_FILE = "server/responses.sqlite3"
STOP_WAIT_S = 1.0
LOCAL_HOST = "127.0.0.1"
ANY_HOST = "0.0.0.0"  # only when the user allows other devices; the key still applies


def model_id(info: ModelInfo) -> str:
    """The id clients send as `model`: the folder's name, as `oss-desk-serve` uses."""
    return Path(info.path).name or "gpt-oss"


def lan_address() -> str | None:
    """This machine's address on its network (the route a datagram would take; none is sent)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.254.254.254", 1))
        address = str(probe.getsockname()[0])
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") else address


def write_key(path: Path, key: str) -> None:
    """Replaces the key file atomically; the file is the user's alone (0600) from the start."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".server-api-key-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(key + "\n")
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


class AppServer(QObject):
    """Starts and stops the server as the settings and the loaded model say."""

    status_changed = Signal(str)

    def __init__(
        self,
        settings: SettingsStore,
        engine: EngineClient,
        data_folder: Path,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._settings = settings
        self._engine = engine
        self.key_path = data_folder / KEY_FILE
        self._responses_path = data_folder / RESPONSES_FILE
        self.runner = EngineRunner(engine.worker, parent=self)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._serving: tuple[str, int, str, str] | None = None  # host, port, model id, key
        self.status = ""
        self.port = 0  # the port bound, once serving (the setting's, or the OS's for 0)
        settings.changed.connect(self._apply)
        engine.model_loaded.connect(self._apply)
        self._apply()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def key(self) -> str:
        """The key clients must send; made (0600) the first time it is asked for."""
        return generated_key(self.key_path)[0]

    def regenerate_key(self) -> str:
        """A new key; a running server answers only to the new one from now on."""
        key = make_key()
        write_key(self.key_path, key)
        self._apply()
        return key

    def base_url(self, settings: Settings | None = None) -> str:
        s = settings or self._settings.settings
        host = LOCAL_HOST
        if s.server_allow_network:
            host = lan_address() or LOCAL_HOST
        return f"http://{host}:{self.port or s.server_port}/v1"

    @Slot()
    def stop(self) -> None:
        """Ends uvicorn's thread (within STOP_WAIT_S) and cancels the requests it was serving."""
        server, thread = self._server, self._thread
        self._server = self._thread = self._serving = None
        self.port = 0
        if server is None or thread is None:
            return
        server.should_exit = True
        server.force_exit = True  # do not wait for streams: their turns are cancelled below
        self.runner.cancel_all()
        thread.join(STOP_WAIT_S)
        if thread.is_alive():
            log.warning("the API server did not stop within %.1f s", STOP_WAIT_S)

    @Slot()
    def _apply(self, *_: Any) -> None:
        settings = self._settings.settings
        info = self._engine.model
        if not settings.server_enabled:
            self.stop()
            self._set_status("Off. Turn it on to let apps on this Mac use the model.")
            return
        if info is None:
            self.stop()
            self._set_status("Load a model first: the server answers with the model the app loads.")
            return
        if getattr(info, "host", ""):  # Settings › Model › Use a server: no model on this Mac
            self.stop()
            self._set_status(
                "Not serving: answers come from another server (Settings › Model). Apps on "
                "this Mac can use that server directly."
            )
            return
        try:
            key = self.key()
        except (KeyError_, OSError) as e:
            self.stop()
            self._set_status(str(e) if isinstance(e, KeyError_) else self._key_problem(e))
            return
        host = ANY_HOST if settings.server_allow_network else LOCAL_HOST
        wanted = (host, settings.server_port, model_id(info), key)
        if wanted == self._serving and self.running:
            return
        self.stop()
        try:
            self._start(*wanted)
        except OSError as e:
            self._set_status(self._bind_problem(settings.server_port, e))
            return
        self._set_status(f"Serving {wanted[2]} at {self.base_url(settings)}")

    def _start(self, host: str, port: int, model: str, key: str) -> None:
        import uvicorn

        from server.app import create_app
        from server.store import ResponseStore

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart may reuse it
            sock.bind((host, port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        self.runner.model_id = model
        store = ResponseStore(self._responses_path)
        app = create_app(self.runner, api_key=key, store=store)
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="api-server", daemon=True
        )
        self._server, self._thread = server, thread
        self._serving = (host, port, model, key)
        self.port = int(sock.getsockname()[1])
        thread.start()

    @staticmethod
    def _bind_problem(port: int, error: OSError) -> str:
        if error.errno == errno.EADDRINUSE:
            return f"Port {port} is in use: choose another."
        if error.errno == errno.EACCES:
            return f"Port {port} needs administrator rights: choose one above 1023."
        return f"Port {port} cannot be used ({error.strerror}): choose another."

    def _key_problem(self, error: OSError) -> str:
        return (
            f"The API key cannot be kept in {self.key_path} ({error.strerror}). "
            "Check the data folder's permissions."
        )

    def _set_status(self, text: str) -> None:
        if text != self.status:
            self.status = text
            self.status_changed.emit(text)
