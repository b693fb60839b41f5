"""The UI thread's handle on the engine thread: requests go out as queued signals, results come
back as the worker's signals, and Stop (and Finish Now) set the running request's
threading.Events directly.

Nothing here blocks the UI except `shutdown`, which waits (bounded) for the current token.
QThread.terminate is never used: a thread killed inside MLX could leave the GPU in any state.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from app.engine_requests import ModelInfo, TurnRequest
from app.engine_worker import EngineWorker
from app.turn_stream import TurnResult

log = logging.getLogger(__name__)

SHUTDOWN_WAIT_MS = 10_000


class EngineClient(QObject):
    """Everything the UI connects to is a signal of this object, emitted on the UI thread: the
    worker's signals are relayed here, so a lambda or a plain function connected to them runs
    on the UI thread too (a callable with no QObject would run on the emitting thread)."""

    load_progressed = Signal(int, int)
    model_loaded = Signal(object)  # ModelInfo
    load_failed = Signal(object)  # ErrorInfo
    turn_progressed = Signal(object)  # TurnUpdate
    turn_finished = Signal(object)  # TurnResult
    tokens_counted = Signal(int, int)
    history_failed = Signal(object)  # ErrorInfo
    prompt_cache_cleared = Signal(object)  # bytes freed
    model_requested = Signal(str)  # the folder a load was asked for (the one in use once loaded)
    _load_requested = Signal(str, str)
    _turn_requested = Signal(object)
    _count_requested = Signal(int, str)
    _shutdown_requested = Signal()
    _forget_requested = Signal(int)
    _clear_cache_requested = Signal()
    _cache_limit_requested = Signal(object)

    def __init__(self, worker: EngineWorker, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worker = worker
        self._thread = QThread()
        self._thread.setObjectName("engine")
        worker.moveToThread(self._thread)
        queued = Qt.ConnectionType.QueuedConnection
        self._load_requested.connect(worker.load, queued)
        self._turn_requested.connect(worker.start_turn, queued)
        self._count_requested.connect(worker.count_tokens, queued)
        self._shutdown_requested.connect(worker.shutdown, queued)
        self._forget_requested.connect(worker.forget_conversation, queued)
        self._clear_cache_requested.connect(worker.clear_prompt_cache, queued)
        self._cache_limit_requested.connect(worker.set_prompt_cache_limit, queued)
        for name in (
            "load_progressed",
            "model_loaded",
            "load_failed",
            "turn_progressed",
            "turn_finished",
            "tokens_counted",
            "history_failed",
            "prompt_cache_cleared",
        ):
            getattr(worker, name).connect(getattr(self, name), queued)
        self.turn_finished.connect(self._forget_turn)
        self.model_loaded.connect(self._remember_model)
        self._current: TurnRequest | None = None
        self._turn_ids = 0
        self.model: ModelInfo | None = None
        self.model_path = ""  # the folder last asked to load, also while it loads
        self._thread.start()

    @property
    def library_path(self) -> Path | None:
        """The document library for searched documents, or None: too long documents are refused."""
        return self.worker.library_path

    @property
    def prompt_cache_dir(self) -> Path | None:
        """Where chats' prompt caches are kept (fixed when the worker was made), or None."""
        return self.worker.prompt_cache_dir

    @property
    def current_turn(self) -> TurnRequest | None:
        return self._current

    @property
    def busy(self) -> bool:
        """A turn was sent and its result has not arrived yet."""
        return self._current is not None

    def next_turn_id(self) -> int:
        self._turn_ids += 1
        return self._turn_ids

    def load(self, path: str, profile: str) -> None:
        self.model = None
        self.model_path = path
        self._load_requested.emit(path, profile)
        self.model_requested.emit(path)

    def start_turn(self, request: TurnRequest) -> None:
        if self._current is not None:
            raise RuntimeError("a turn is already running")
        self._current = request
        self._turn_requested.emit(request)

    def count_tokens(self, key: int, text: str) -> None:
        self._count_requested.emit(key, text)

    def forget_conversation(self, conversation_id: int) -> None:
        """The chat was deleted: its saved prompt cache goes too."""
        self._forget_requested.emit(conversation_id)

    def clear_prompt_cache(self) -> None:
        """Delete every saved prompt cache; `prompt_cache_cleared` says how many bytes."""
        self._clear_cache_requested.emit()

    def set_prompt_cache_limit(self, max_bytes: int) -> None:
        self._cache_limit_requested.emit(max_bytes)

    def cancel(self) -> None:
        """Stop the running answer at the next token; what was written is kept."""
        if self._current is not None:
            self._current.cancel.set()

    def finish_now(self) -> None:
        """End the running answer's reasoning at the next token, so the model answers at once."""
        if self._current is not None:
            self._current.finish.set()

    def shutdown(self, timeout_ms: int = SHUTDOWN_WAIT_MS) -> bool:
        """Stop any answer, release the model on its own thread and end that thread."""
        if not self._thread.isRunning():
            return True
        self.worker.quitting.set()
        self.cancel()
        self._shutdown_requested.emit()
        finished = self._thread.wait(timeout_ms)
        if not finished:
            log.warning("the engine thread did not stop within %d ms", timeout_ms)
        return finished

    @Slot(object)
    def _forget_turn(self, result: TurnResult) -> None:
        if self._current is not None and self._current.turn_id == result.turn_id:
            self._current = None

    @Slot(object)
    def _remember_model(self, info: ModelInfo) -> None:
        self.model = info
