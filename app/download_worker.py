"""The model download on its own thread: a worker QObject, the task that owns its QThread, where
downloads go by default, and the words for their progress.

The worker plans (asks the Hub), checks the free disk space, then runs engine.download, which
blocks; progress crosses to the UI thread as queued signals, and every failure arrives as a
DownloadFailure value (convention 10). Pausing sets a threading.Event that the engine checks
between chunks; the partial files stay, and the next start resumes them. QThread.terminate is
never used.
"""

from __future__ import annotations

import logging
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.handover import default_data_folder
from engine import (
    DownloadCancelled,
    DownloadError,
    DownloadProgress,
    RetryPolicy,
    check_disk,
    download,
    plan_download,
)

log = logging.getLogger(__name__)

DEFAULT_REPO = "openai/gpt-oss-20b"
MODEL_FOLDER_NAME = "gpt-oss-20b"
# Bytes read between two looks at the pause flag: 1 MiB is milliseconds on any real connection.
CHUNK_BYTES = 1 << 20


class _Usage(Protocol):
    @property
    def free(self) -> int: ...


class DiskUsage(Protocol):
    """shutil.disk_usage, or a stand-in in tests."""

    def __call__(self, path: Path, /) -> _Usage: ...


@dataclass(frozen=True)
class DownloadFailure:
    """Why a download stopped. `kind` is a DownloadError kind, or "bug" for an unexpected error."""

    kind: str
    message: str
    files: tuple[str, ...] = ()

    @classmethod
    def from_error(cls, error: DownloadError) -> DownloadFailure:
        return cls(error.kind, str(error), error.files)


@dataclass(frozen=True)
class DownloadStarted:
    """The plan is made and the disk has room: what the transfer will do."""

    dest: Path
    total_bytes: int
    remaining_bytes: int
    disk_message: str


@dataclass(frozen=True)
class DownloadRequest:
    dest: Path
    token: str | bool | None = None  # None: the token huggingface_hub has stored, if any


class DownloadWorker(QObject):
    """Runs one download at a time on the thread it was moved to. Its owner pauses it by setting
    `cancel` (any thread) and clears the event before requesting the next run."""

    download_started = Signal(object)  # DownloadStarted
    progress_changed = Signal(object)  # DownloadProgress
    download_finished = Signal(str)  # the model folder, complete and verified
    download_paused = Signal()  # cancelled on request; partial files kept
    download_failed = Signal(object)  # DownloadFailure

    def __init__(
        self,
        cancel: threading.Event,
        *,
        repo_id: str = DEFAULT_REPO,
        revision: str = "main",
        endpoint: str | None = None,
        retry: RetryPolicy | None = None,
        disk_usage: DiskUsage = shutil.disk_usage,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        super().__init__()
        self._cancel = cancel  # set from the UI thread to pause; cleared there before a start
        self._repo_id = repo_id
        self._revision = revision
        self._endpoint = endpoint
        self._retry = retry or RetryPolicy()
        self._disk_usage = disk_usage
        self._chunk_bytes = chunk_bytes

    @Slot(object)
    def run(self, request: DownloadRequest) -> None:
        try:
            self._run(request)
        except DownloadCancelled:
            self.download_paused.emit()
        except DownloadError as e:
            log.warning("download failed (%s): %s", e.kind, e)
            self.download_failed.emit(DownloadFailure.from_error(e))
        except Exception as e:  # a bug: reported, never swallowed
            log.exception("download crashed")
            message = f"The download stopped because of an error in OSS Desk: {e}"
            self.download_failed.emit(DownloadFailure("bug", message))

    def _run(self, request: DownloadRequest) -> None:
        plan = plan_download(
            request.dest,
            self._repo_id,
            self._revision,
            endpoint=self._endpoint,
            token=request.token,
        )
        if self._cancel.is_set():
            raise DownloadCancelled
        disk = check_disk(plan, disk_usage=self._disk_usage)
        if not disk.ok:
            raise DownloadError(disk.message, kind="disk_full")
        started = DownloadStarted(plan.dest, plan.total_bytes, plan.remaining_bytes, disk.message)
        self.download_started.emit(started)
        folder = download(
            plan,
            self.progress_changed.emit,
            self._cancel,
            token=request.token,
            retry=self._retry,
            disk_usage=self._disk_usage,
            chunk_bytes=self._chunk_bytes,
        )
        self.download_finished.emit(str(folder))


class DownloadTask(QObject):
    """Owns a DownloadWorker and its QThread; lives on the UI thread and re-emits the worker's
    signals there. Call shutdown() before the owner goes away."""

    download_started = Signal(object)
    progress_changed = Signal(object)
    download_finished = Signal(str)
    download_paused = Signal()
    download_failed = Signal(object)
    _run_requested = Signal(object)

    def __init__(
        self,
        parent: QObject | None = None,
        *,
        repo_id: str = DEFAULT_REPO,
        revision: str = "main",
        endpoint: str | None = None,
        retry: RetryPolicy | None = None,
        disk_usage: DiskUsage = shutil.disk_usage,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        super().__init__(parent)
        self._cancel = threading.Event()
        self._thread = QThread()
        self._thread.setObjectName("model-download")
        self._worker = DownloadWorker(
            self._cancel,
            repo_id=repo_id,
            revision=revision,
            endpoint=endpoint,
            retry=retry,
            disk_usage=disk_usage,
            chunk_bytes=chunk_bytes,
        )
        self._worker.moveToThread(self._thread)
        self._thread.finished.connect(self._worker.deleteLater)
        self._run_requested.connect(self._worker.run)
        self._worker.download_started.connect(self.download_started)
        self._worker.progress_changed.connect(self.progress_changed)
        for done, mine in (
            (self._worker.download_finished, self.download_finished),
            (self._worker.download_paused, self.download_paused),
            (self._worker.download_failed, self.download_failed),
        ):
            done.connect(self._on_done)
            done.connect(mine)
        self._running = False
        self._shut_down = False

    @property
    def is_running(self) -> bool:
        return self._running

    def start(self, dest: Path, token: str | bool | None = None) -> None:
        if self._running:
            raise RuntimeError("a download is already running")
        if self._shut_down:
            raise RuntimeError("this DownloadTask was shut down")
        if not self._thread.isRunning():
            self._thread.start()
        self._cancel.clear()
        self._running = True
        self._run_requested.emit(DownloadRequest(dest, token))

    def cancel(self) -> None:
        """Pause: download_paused follows once the worker has stopped (within one chunk)."""
        self._cancel.set()

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Pause any download and stop the thread for good; False if it outlived the timeout.

        The wait is short unless the Hub is being asked for the file list, which has no cancel.
        """
        self._cancel.set()
        self._shut_down = True
        if not self._thread.isRunning():
            return True
        self._thread.quit()
        stopped = self._thread.wait(timeout_ms)
        if not stopped:
            log.error("the download thread did not stop within %d ms", timeout_ms)
        return stopped

    @Slot()
    def _on_done(self) -> None:
        self._running = False


def default_download_dir() -> Path:
    """~/Library/Application Support/OSS Desk/models/gpt-oss-20b on a Mac."""
    return default_data_folder() / "models" / MODEL_FOLDER_NAME


def download_dir_in(chosen: Path) -> Path:
    """Where a download into the folder the user picked goes: a subfolder unless it is fresh."""
    if chosen.name == MODEL_FOLDER_NAME or not has_files(chosen):
        return chosen
    return chosen / MODEL_FOLDER_NAME


def has_files(folder: Path) -> bool:
    """Whether `folder` exists and holds anything (a download to resume, or a finished one)."""
    try:
        return any(folder.iterdir())
    except OSError:  # missing or unreadable: nothing to resume there
        return False


def free_space(folder: Path, disk_usage: DiskUsage) -> int:
    """Free bytes on the disk that holds (or will hold) `folder`."""
    where = folder.absolute()
    while not where.exists() and where != where.parent:
        where = where.parent
    return disk_usage(where).free


def format_bytes(n: float) -> str:
    """Decimal units, as Finder shows sizes: 950 KB, 12.3 MB, 13.8 GB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}" if n < 100 * scale else f"{n / scale:.0f} {unit}"
    return f"{n:.0f} bytes"


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "estimating time left"
    if seconds < 60:
        return "less than a minute left"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min left"
    return f"about {minutes // 60} h {minutes % 60:02d} min left"


def describe_progress(p: DownloadProgress) -> str:
    """One status line: what is happening now, how far, how fast, how long still."""
    overall = f"{format_bytes(p.done_bytes)} of {format_bytes(p.total_bytes)}"
    if p.phase == "verifying":
        percent = 100 * p.file_done // p.file_total if p.file_total else 100
        return f"Verifying {p.file} ({percent}%) · {overall}"
    if p.phase == "retrying":
        return f"Connection lost; resuming {p.file} · {overall}"
    if p.phase == "done":
        return f"Downloaded and verified · {format_bytes(p.total_bytes)}"
    speed = f"{format_bytes(p.speed_bytes_per_s)}/s"
    return f"{overall} · {speed} · {format_eta(p.eta_s)}"


def progress_permille(p: DownloadProgress) -> int:
    """0..1000 for a QProgressBar, whose int range cannot hold byte counts of 13 GB."""
    return 1000 * p.done_bytes // p.total_bytes if p.total_bytes else 1000
