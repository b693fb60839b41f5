"""Reading documents in separate processes, so a hostile file costs a bounded time and memory.

`ReaderPool.read(path)` starts a reader process (engine/documents/child.py) for the file and
returns a `Reading` at once; a background thread per reading waits for the reply, stops the process
when the time limit passes, and records its peak memory. Nothing here blocks the caller: results
arrive through `Reading.add_done_callback` (called on that background thread) or `result()`.

Why processes and not threads: a parser cannot be interrupted, and one running a zip bomb takes the
whole address space with it. Why not multiprocessing: its "spawn" start re-imports the app's main
module in each child (PySide6, MLX: seconds), and its replies are pickles, which the app should
not load from a process that has just parsed a hostile file. Here the child runs a small script
and replies with JSON. The parent has Qt and MLX threads, so nothing is ever forked without exec
(posix_spawn starts a fresh interpreter).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import logging
import os
import resource
import selectors
import signal
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.documents.child import EXIT_MEMORY, peak_rss_of
from engine.documents.document import ExtractedDocument
from engine.documents.limits import DocumentLimitError, DocumentLimits, MiB
from engine.errors import UnsupportedDocumentError

log = logging.getLogger(__name__)

CHILD_SCRIPT = Path(__file__).with_name("child.py")
FROZEN_FLAG = "--read-document"  # a bundled app has no python: its own executable reads
_READ_CHUNK = 1 << 16
_REAP_POLL_S = 0.005
_SAMPLE_S = 0.1  # how often a running reader's peak memory is looked at (Linux)


@dataclass(frozen=True)
class ReadStats:
    """What reading one document cost: wall time and the reader process's peak memory."""

    seconds: float
    peak_rss_bytes: int
    exit_status: int  # the exit code, or minus the signal that ended the process


class Reading:
    """One document being read in its own process; cancel() stops it at once."""

    def __init__(self, path: Path, limits: DocumentLimits) -> None:
        self.path = path
        self.limits = limits
        self.stats: ReadStats | None = None
        self._future: concurrent.futures.Future[ExtractedDocument] = concurrent.futures.Future()
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._cancelled = False

    def cancel(self) -> None:
        """Stop reading: the process is killed; callbacks run now, on this thread."""
        with self._lock:
            self._cancelled = True
            self._kill_locked()
        self._future.cancel()

    @property
    def pid(self) -> int | None:
        """The reader process, while it runs."""
        with self._lock:
            return self._pid

    def cancelled(self) -> bool:
        return self._future.cancelled()

    def done(self) -> bool:
        return self._future.done()

    def result(self, timeout: float | None = None) -> ExtractedDocument:
        """The document, or raises UnsupportedDocumentError (DocumentLimitError for a limit),
        concurrent.futures.CancelledError, or TimeoutError if `timeout` passes first."""
        return self._future.result(timeout)

    def add_done_callback(self, callback: Callable[[Reading], None]) -> None:
        self._future.add_done_callback(lambda _future: callback(self))

    def _kill_locked(self) -> None:
        if self._pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)


class ReaderPool:
    """At most `max_workers` reader processes at a time; more readings wait their turn."""

    def __init__(
        self,
        limits: DocumentLimits | None = None,
        *,
        max_workers: int = 2,
        address_space_limit: bool = True,
    ) -> None:
        """`address_space_limit=False` leaves only the watchdog's check of the reader's peak
        size: what macOS, which ignores RLIMIT_AS, always gets; tests use it on Linux."""
        if max_workers < 1:
            raise ValueError("max_workers must be >= 1")
        self.limits = limits or DocumentLimits()
        self._max_workers = max_workers
        self._address_space_limit = address_space_limit
        self._lock = threading.Lock()
        self._waiting: deque[Reading] = deque()
        self._running: set[Reading] = set()
        self._threads: set[threading.Thread] = set()
        self._closed = False
        # Readers must not outlive the app, even if nobody calls shutdown().
        weakref.finalize(self, _cancel_all, self._lock, self._waiting, self._running)

    def read(self, path: str | Path, *, limits: DocumentLimits | None = None) -> Reading:
        reading = Reading(Path(path), limits or self.limits)
        with self._lock:
            if self._closed:
                raise RuntimeError("the reader pool has been shut down")
            self._waiting.append(reading)
        self._start_waiting()
        return reading

    def shutdown(self, timeout: float = 0.0) -> None:
        """Cancel every reading and kill its process; never waits longer than `timeout` for the
        background threads to reap them (quitting must not wait for a parser)."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        _cancel_all(self._lock, self._waiting, self._running)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _start_waiting(self) -> None:
        with self._lock:
            while self._waiting and len(self._running) < self._max_workers:
                reading = self._waiting.popleft()
                if reading.cancelled():
                    continue
                self._running.add(reading)
                thread = threading.Thread(
                    target=self._run,
                    args=(reading, self._address_space_limit),
                    name=f"reader {reading.path.name}",
                )
                thread.daemon = True  # a reader thread never holds up quitting
                self._threads.add(thread)
                thread.start()

    def _run(self, reading: Reading, address_space_limit: bool) -> None:
        try:
            _read_in_child(reading, address_space_limit)
        except Exception as e:  # the thread's boundary: the reading must end, never hang
            log.exception("reading %s failed", reading.path)
            _settle(reading, e)
        finally:
            with self._lock:
                self._running.discard(reading)
                self._threads.discard(threading.current_thread())
            self._start_waiting()


class ReaderCause(Exception):
    """What a parser in the reader process raised, as the reader reported it."""


def _cancel_all(lock: threading.Lock, waiting: deque[Reading], running: set[Reading]) -> None:
    with lock:  # reader threads leave `running` as they finish
        readings = [*waiting, *running]
        waiting.clear()
    for reading in readings:  # outside the lock: cancel() runs callbacks
        reading.cancel()


def child_command(request: str) -> list[str]:
    """The reader's command line: this interpreter and the script, or the bundled app itself."""
    if getattr(sys, "frozen", False):
        return [sys.executable, FROZEN_FLAG, request]
    # -P: not the script's folder on sys.path, where text.py or pdf.py would shadow other modules.
    return [sys.executable, "-P", str(CHILD_SCRIPT), request]


def _read_in_child(reading: Reading, address_space_limit: bool) -> None:
    limits = reading.limits
    request = json.dumps(
        {
            "path": str(reading.path),
            "limits": limits.to_dict(),
            "address_space": address_space_limit,
            "parent": os.getpid(),
        }
    )
    started = time.monotonic()
    deadline = started + limits.seconds
    with reading._lock:
        if reading._cancelled:
            return
        reply_fd, pid = _spawn(child_command(request))
        reading._pid = pid
    peaks = [0]

    def sample() -> None:  # a killed reader sends no reply, so its peak is sampled meanwhile
        peaks.append(peak_rss_of(pid) or 0)

    # Room for the longest allowed text, JSON-escaped, and the rest of the reply.
    reply, timed_out = _collect(reply_fd, deadline, limits.max_chars * 6 + MiB, sample)
    if timed_out:
        sample()
        with reading._lock:
            reading._kill_locked()
    status, usage = _reap(reading, pid, deadline)
    answer = _parse(reply)
    reported = answer.get("peak_rss_bytes") if answer is not None else None
    if isinstance(reported, int):
        peaks.append(reported)
    elif not sys.platform.startswith("linux"):
        peaks.append(usage.ru_maxrss if sys.platform == "darwin" else usage.ru_maxrss * 1024)
    reading.stats = ReadStats(
        seconds=time.monotonic() - started,
        peak_rss_bytes=max(peaks),
        exit_status=os.waitstatus_to_exitcode(status),
    )
    if reading._cancelled:
        return
    _settle(reading, _outcome(reading, answer, reply, timed_out, reading.stats.exit_status))


def _parse(reply: bytes | None) -> dict[str, Any] | None:
    try:
        answer = json.loads(reply) if reply else None
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _spawn(argv: list[str]) -> tuple[int, int]:
    read_end, write_end = os.pipe()
    try:
        pid = os.posix_spawn(
            argv[0],
            argv,
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, write_end, 1),
            ],
        )
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)
    return read_end, pid


def _collect(
    fd: int, deadline: float, max_bytes: int, idle: Callable[[], None]
) -> tuple[bytes | None, bool]:
    """The child's reply (None if it was too long), and whether the deadline passed first;
    `idle` runs whenever nothing arrived for a while."""
    chunks: list[bytes] = []
    size = 0
    with os.fdopen(fd, "rb", buffering=0) as pipe, selectors.DefaultSelector() as selector:
        selector.register(pipe, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None, True
            if not selector.select(min(left, _SAMPLE_S)):
                idle()
                continue
            chunk = pipe.read(_READ_CHUNK)
            if not chunk:
                return (b"".join(chunks) if size <= max_bytes else None), False
            size += len(chunk)
            if size <= max_bytes:
                chunks.append(chunk)


def _reap(reading: Reading, pid: int, deadline: float) -> tuple[int, resource.struct_rusage]:
    """Wait for the process to end (killing it at the deadline), under the reading's lock so that
    cancel() can never signal a process id that has been reaped and reused."""
    while True:
        with reading._lock:
            done, status, usage = os.wait4(pid, os.WNOHANG)
            if done:
                reading._pid = None
                return status, usage
            if time.monotonic() > deadline:
                reading._kill_locked()
        time.sleep(_REAP_POLL_S)  # the reply is in; the process is only finishing its exit


def _outcome(
    reading: Reading,
    answer: dict[str, Any] | None,
    reply: bytes | None,
    timed_out: bool,
    exit_status: int,
) -> ExtractedDocument | BaseException:
    name, limits = reading.path.name, reading.limits
    if timed_out or exit_status == -signal.SIGXCPU:
        return DocumentLimitError(
            f"{name} took longer than {limits.seconds:g} s to read, so reading it was stopped: "
            "attach a smaller part of it, or save it again as plain text or PDF and attach that.",
            limit="time",
        )
    if exit_status == EXIT_MEMORY or (reply == b"" and exit_status == -signal.SIGKILL):
        return DocumentLimitError(
            f"{name} needs more than {limits.memory_bytes // MiB:,} MB of memory to read, so "
            "reading it was stopped: attach a smaller part of it. The file may be damaged or "
            "built to exhaust memory.",
            limit="memory",
        )
    if answer is None or exit_status != 0:
        how = f"signal {-exit_status}" if exit_status < 0 else f"exit code {exit_status}"
        return DocumentLimitError(
            f"{name} could not be read: the document reader stopped unexpectedly ({how}). The "
            "file may be damaged; save it again and attach the new copy.",
            limit="crash",
        )
    if "document" in answer:
        try:
            return ExtractedDocument.from_dict(answer["document"])
        except ValueError as e:
            return RuntimeError(f"the document reader sent a malformed reply: {e}")
    if "error" in answer:
        limit = answer.get("limit")
        if limit in ("time", "memory", "size", "crash"):
            return DocumentLimitError(str(answer["error"]), limit=limit)
        error = UnsupportedDocumentError(str(answer["error"]))
        if "cause" in answer:  # the reader's exception chain, rebuilt as text
            error.__cause__ = ReaderCause(str(answer["cause"]))
        return error
    return RuntimeError(f"the document reader failed:\n{answer.get('bug', answer)}")


def _settle(reading: Reading, outcome: ExtractedDocument | BaseException) -> None:
    try:
        if isinstance(outcome, BaseException):
            reading._future.set_exception(outcome)
        else:
            reading._future.set_result(outcome)
    except concurrent.futures.InvalidStateError:
        pass  # cancelled meanwhile: nobody wants the outcome
