"""Indexing in the background: one thread with its own Library connection runs jobs in turn.

Qt-free. The app queues attached documents (already extracted by the reader processes: their text
is reused) and watched folders here; every change of a job's state is reported to `on_change` on
the indexing thread, so a GUI must forward it to its own thread (app/library_indexer.py does, by
a queued signal). Other threads only read the library; one that needs a document still being
indexed calls `wait`, which returns when its jobs end or its cancel event is set.

Cancelling an attached document's job drops the pages it had committed (no half document stays
searchable); closing keeps them, so the next run of the same content resumes after them.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from engine.documents import ExtractedDocument, ReaderPool
from engine.library.errors import LibraryError
from engine.library.folders import scan_folder
from engine.library.indexer import BATCH_PAGES, discard_unfinished, index_files
from engine.library.records import IndexProgress, IndexReport
from engine.library.store import Library, canonical

log = logging.getLogger(__name__)

JobKind = Literal["document", "folder", "forget", "refresh"]
JobStatus = Literal["queued", "indexing", "done", "failed", "cancelled"]
_POLL_S = 0.1  # how often a blocked extraction or waiter looks at its cancel event
IDLE_S = 30.0  # the thread (and its SQLite connection) ends after this long without work
# Indexing runs beside the window's thread, which needs the interpreter lock for every paint and
# layout: resting as long as it works keeps the window's pace (tests/app/test_attachments_hostile.py
# measured gaps of 100-250 ms without it, under 50 ms with it) at half the indexing speed.
REST = 1.0


@dataclass(frozen=True)
class JobState:
    """Where one job stands; `path` is the document's or the folder's canonical path."""

    path: Path
    kind: JobKind
    status: JobStatus = "queued"
    pages_done: int = 0  # of the document being indexed (for a folder: its current file)
    pages_total: int = 0
    files_done: int = 0
    files_total: int = 0
    problems: tuple[str, ...] = ()  # one sentence per file that could not be indexed

    @property
    def running(self) -> bool:
        return self.status in ("queued", "indexing")


@dataclass(frozen=True)
class FolderState:
    path: Path
    documents: int  # indexed, searchable documents from it
    failed: int  # files in it that could not be read


@dataclass
class _Job:
    state: JobState
    document: ExtractedDocument | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    keep_partial: bool = False  # closing: a resumable half document may stay


class _Stopped(Exception):
    """A folder file's reading was cancelled."""


class IndexJobs:
    """The job queue and its thread; `close()` cancels the running job and ends the thread."""

    def __init__(
        self,
        library_path: Path,
        *,
        on_change: Callable[[JobState], None] | None = None,
        on_wait: Callable[[tuple[JobState, ...]], None] | None = None,
        on_folders: Callable[[tuple[FolderState, ...]], None] | None = None,
        readers: ReaderPool | None = None,
        idle_s: float = IDLE_S,
        batch_pages: int = BATCH_PAGES,
    ) -> None:
        self.library_path = Path(library_path)
        self._on_change = on_change or (lambda state: None)
        self._on_wait = on_wait or (lambda states: None)
        self._on_folders = on_folders or (lambda folders: None)
        self._readers = readers
        self._cond = threading.Condition()
        self._queue: deque[_Job] = deque()
        self._current: _Job | None = None
        self._latest: dict[tuple[JobKind, Path], _Job] = {}  # the newest job of each path
        self._closed = False
        self._idle_s = idle_s
        self._batch_pages = batch_pages  # pages per commit: a cancel or close waits for one batch
        self._thread: threading.Thread | None = None  # started by the first job

    # -- asked by any thread --------------------------------------------------------------

    def index_document(self, document: ExtractedDocument) -> JobState:
        """Queue an attached document (its text is reused), unless it is already queued."""
        return self._submit("document", canonical(document.path), document)

    def add_folder(self, folder: str | Path) -> JobState:
        """Watch `folder`: remember it, then index what it holds (and again on `rescan`)."""
        return self._submit("folder", canonical(folder))

    def rescan(self, folder: str | Path) -> JobState:
        return self._submit("folder", canonical(folder))

    def refresh(self) -> JobState:
        """Report the watched folders (`on_folders`) and rescan each: what changed while the app
        was not running is indexed, what was deleted forgotten."""
        return self._submit("refresh", self.library_path)

    def remove_folder(self, folder: str | Path) -> JobState:
        path = canonical(folder)
        self.cancel(path, kind="folder")
        return self._submit("forget", path)

    def cancel(self, path: str | Path, *, kind: JobKind = "document") -> None:
        """Stop `path`'s job, queued or running; a document's committed pages are dropped."""
        key = (kind, canonical(path))
        with self._cond:
            for job in [*self._queue, self._current]:
                if job is not None and (job.state.kind, job.state.path) == key:
                    job.cancel.set()

    def state(self, path: str | Path, kind: JobKind = "document") -> JobState | None:
        with self._cond:
            job = self._latest.get((kind, canonical(path)))
            return None if job is None else job.state

    def wait(self, paths: Collection[Path], cancel: threading.Event) -> dict[Path, JobState]:
        """Block until the documents' jobs have ended (or `cancel` is set); their last states.

        While it waits, `on_wait` hears the states of what is still running (on this thread),
        and once more with () when the wait is over."""
        wanted: list[tuple[JobKind, Path]] = [("document", canonical(p)) for p in paths]
        shown: tuple[JobState, ...] = ()
        try:
            while True:
                with self._cond:
                    jobs = [self._latest.get(key) for key in wanted]
                    states = [j.state for j in jobs if j is not None]
                    running = tuple(s for s in states if s.running)
                    if not running or cancel.is_set():
                        return {s.path: s for s in states}
                    if running == shown:
                        self._cond.wait(_POLL_S)
                        continue
                shown = running
                self._on_wait(running)
        finally:
            if shown:
                self._on_wait(())

    def close(self, timeout_s: float = 5.0) -> None:
        """Cancel everything and end the thread (waiting at most `timeout_s` for a batch)."""
        with self._cond:
            self._closed = True
            for job in [*self._queue, self._current]:
                if job is not None:
                    job.keep_partial = True
                    job.cancel.set()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout_s)

    # -- the indexing thread --------------------------------------------------------------

    def _submit(
        self, kind: JobKind, path: Path, document: ExtractedDocument | None = None
    ) -> JobState:
        state = JobState(path, kind)
        with self._cond:
            if self._closed:
                raise RuntimeError("the library indexer has been closed")
            queued = [j for j in self._queue if (j.state.kind, j.state.path) == (kind, path)]
            if queued and not queued[0].cancel.is_set():
                return queued[0].state  # a second request before the first ran adds nothing
            job = _Job(state, document)
            self._queue.append(job)
            self._latest[(kind, path)] = job
            self._cond.notify_all()
            if self._thread is None:
                # A daemon: quitting never waits for a parser; close() still stops it in time.
                self._thread = threading.Thread(
                    target=self._serve, name="library indexer", daemon=True
                )
                self._thread.start()
        self._on_change(state)
        return state

    def _serve(self) -> None:
        library: Library | None = None
        problem = ""
        try:
            self.library_path.parent.mkdir(parents=True, exist_ok=True)
            library = Library(self.library_path)
            self._publish_folders(library)
        except (OSError, LibraryError) as e:
            problem = str(e)  # every job fails with it; the app goes on without searching
            log.warning("no document library: %s", problem)
        try:
            while (job := self._next()) is not None:
                try:
                    if library is None:
                        self._update(job, status="failed", problems=(problem,))
                    else:
                        self._run(library, job)
                except Exception as e:  # the thread's boundary: report it as the job's failure
                    log.exception("indexing %s failed", job.state.path)
                    self._update(job, status="failed", problems=(f"{job.state.path.name}: {e}",))
                finally:
                    with self._cond:
                        self._current = None
                        self._cond.notify_all()
        finally:
            if library is not None:
                library.close()

    def _next(self) -> _Job | None:
        with self._cond:
            if not self._queue and not self._closed:
                self._cond.wait_for(lambda: self._queue or self._closed, self._idle_s)
            if not self._queue and not self._closed:
                self._thread = None  # idle: the next job starts a new thread
                return None
            if self._closed:
                for job in self._queue:
                    job.state = replace(job.state, status="cancelled")
                self._queue.clear()
                self._cond.notify_all()
                return None
            self._current = self._queue.popleft()
            return self._current

    def _run(self, library: Library, job: _Job) -> None:
        if job.cancel.is_set():
            self._update(job, status="cancelled")
            return
        self._update(job, status="indexing")
        path = job.state.path
        if job.state.kind == "refresh":
            self._publish_folders(library)
            for _, folder in library.folders():
                self._submit("folder", folder)
            self._update(job, status="done")
            return
        if job.state.kind == "forget":
            for folder_id, folder in library.folders():
                if folder == path:
                    library.remove_folder(folder_id)
            self._update(job, status="done")
            self._publish_folders(library)
            return
        if job.state.kind == "document":
            document = job.document
            assert document is not None
            report = index_files(
                library,
                [path],
                progress=lambda p: self._progressed(job, p),
                cancel=job.cancel,
                extractor=lambda _path: document,
                batch_pages=self._batch_pages,
                rest=REST,
            )
        else:
            report = self._index_folder(library, job)
        self._finish(library, job, report)

    def _index_folder(self, library: Library, job: _Job) -> IndexReport:
        folder_id = library.add_folder(job.state.path)
        self._publish_folders(library)  # listed at once, before its files are read
        changes = scan_folder(library, folder_id)
        try:
            return index_files(
                library,
                changes.to_index,
                progress=lambda p: self._progressed(job, p),
                cancel=job.cancel,
                folder_id=folder_id,
                extractor=lambda path: self._read(path, job.cancel),
                batch_pages=self._batch_pages,
                rest=REST,
            )
        except _Stopped:
            return IndexReport(cancelled=True)

    def _finish(self, library: Library, job: _Job, report: IndexReport) -> None:
        problems = tuple(report.failed.values())
        if report.cancelled:
            if job.state.kind == "document" and not job.keep_partial:
                discard_unfinished(library, job.state.path)
            self._update(job, status="cancelled", problems=problems)
        elif job.state.kind == "document" and problems:
            self._update(job, status="failed", problems=problems)
        else:
            self._update(job, status="done", problems=problems)
        if job.state.kind == "folder":
            self._publish_folders(library)

    def _read(self, path: Path, cancel: threading.Event) -> ExtractedDocument:
        """A folder's file, read in a reader process (it is untrusted like any dropped file)."""
        if self._readers is None:
            self._readers = ReaderPool(max_workers=1)
        reading = self._readers.read(path)
        while True:
            try:
                return reading.result(_POLL_S)
            except TimeoutError:
                if cancel.is_set():
                    reading.cancel()
                    raise _Stopped() from None
            except concurrent.futures.CancelledError:
                raise _Stopped() from None

    def _progressed(self, job: _Job, progress: IndexProgress) -> None:
        if progress.stage == "indexing":
            self._update(
                job,
                pages_done=progress.pages_done,
                pages_total=progress.pages_total,
                files_done=progress.documents_done,
                files_total=progress.documents_total,
            )
        elif progress.stage == "checking":
            self._update(
                job,
                pages_done=0,
                pages_total=0,
                files_done=progress.documents_done,
                files_total=progress.documents_total,
            )

    def _update(self, job: _Job, **changes: object) -> None:
        with self._cond:
            job.state = replace(job.state, **changes)  # type: ignore[arg-type]
            self._cond.notify_all()
        self._on_change(job.state)

    def _publish_folders(self, library: Library) -> None:
        folders = []
        for folder_id, folder in library.folders():
            documents = library.documents(folder_id=folder_id)
            ready = sum(1 for d in documents if d.searchable)
            failed = sum(1 for d in documents if d.status == "failed")
            folders.append(FolderState(folder, ready, failed))
        self._on_folders(tuple(folders))
