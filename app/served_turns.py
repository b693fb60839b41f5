"""The app's server answers through the engine thread (issue 13): one model, one thread owning MLX.

`EngineRunner` is the server's ModelRunner (server/runner.py) for the running app. Its `submit`
is called on uvicorn's thread and hands the job to the EngineWorker by a queued signal, so the
worker runs it between the window's turns, as one slot call: a window turn sent meanwhile waits
in the thread's event queue, and a turn and a request never run at once. Beyond `max_queue`
waiting requests the server answers 503, as `oss-desk-serve` does. `ServedTurns` is the worker's
side: it answers with the model the window loaded, through server.runner.JobAnswerer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, Signal

import engine

if TYPE_CHECKING:  # server.runner imports the engine's MLX code: not before the window shows
    from server.runner import Job, JobAnswerer, Ticket

log = logging.getLogger(__name__)

DEFAULT_MAX_QUEUE = 8


@dataclass(frozen=True)
class ServedJob:
    """One request on its way to the engine thread; `done` is called there once it ended."""

    job: Job
    ticket: Ticket
    done: Callable[[Ticket], None]


class ServedTurns:
    """The EngineWorker's part (runs on the engine thread only). `session_options` go to every
    ChatSession a request makes (tests pass a scripted `sampler`)."""

    def __init__(self) -> None:
        self.session_options: dict[str, Any] = {}
        self._answerer: JobAnswerer | None = None
        self._model: Any = None

    def run(self, model: Any, tokenizer: Any, item: ServedJob) -> None:
        from server.runner import Failed

        try:
            self._run(model, tokenizer, item)
        except Exception as e:  # the thread boundary: report to the client, keep the window going
            log.exception("a served request failed")
            item.ticket.emit(Failed(500, f"The model failed while answering: {e}"))
        finally:
            item.done(item.ticket)

    def forget(self) -> None:
        """Drops the last request's session (and so its model and KV cache): a model is being
        replaced, or the engine thread ends."""
        self._answerer = None
        self._model = None

    def _run(self, model: Any, tokenizer: Any, item: ServedJob) -> None:
        from server.runner import Failed, JobAnswerer

        if not isinstance(model, engine.LoadedModel):
            item.ticket.emit(
                Failed(
                    503,
                    "No model is loaded in OSS Desk. Load a model in the app, then retry.",
                    code="model_not_loaded",
                )
            )
            return
        if model is not self._model or self._answerer is None:
            # A model loaded since: the previous request's KV cache belongs to the old one.
            self._answerer = JobAnswerer(self.session_options)
            self._model = model
        self._answerer.answer(model, tokenizer, item.job, item.ticket)


class EngineRunner(QObject):
    """The ModelRunner the app serves with. Lives on the UI thread; `submit` may be called from
    any thread (uvicorn's), and only emits a queued signal and counts under a lock."""

    _job_submitted = Signal(object)  # ServedJob

    def __init__(
        self,
        worker: QObject,
        model_id: str = "",
        *,
        max_queue: int = DEFAULT_MAX_QUEUE,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        if max_queue < 0:
            raise ValueError("max_queue must be >= 0")
        self._model_id = model_id
        self._max_queue = max_queue
        self._lock = threading.Lock()
        self._outstanding: set[Ticket] = set()  # running or waiting
        self._job_submitted.connect(
            worker.run_served_job,  # type: ignore[attr-defined]
            Qt.ConnectionType.QueuedConnection,
        )

    @property
    def model_id(self) -> str:
        return self._model_id

    @model_id.setter
    def model_id(self, value: str) -> None:
        self._model_id = value

    @property
    def outstanding(self) -> int:
        with self._lock:
            return len(self._outstanding)

    def submit(self, job: Job, ticket: Ticket) -> None:
        from server.runner import QueueFullError  # imported by the server already

        with self._lock:
            if len(self._outstanding) > self._max_queue:  # one runs, max_queue wait
                raise QueueFullError(f"{len(self._outstanding) - 1} requests are already waiting")
            self._outstanding.add(ticket)
        self._job_submitted.emit(ServedJob(job, ticket, self._done))

    def cancel_all(self) -> None:
        """Stops the running request and every waiting one (the server is stopping)."""
        with self._lock:
            tickets = list(self._outstanding)
        for ticket in tickets:
            ticket.cancel.set()

    def _done(self, ticket: Ticket) -> None:
        with self._lock:
            self._outstanding.discard(ticket)
