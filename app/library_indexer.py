"""The document library's background indexing, on the UI side (issue 11).

`LibraryIndexer` owns engine.IndexJobs (its own thread and SQLite connection) and turns what that
thread reports into queued signals on the UI thread. It indexes every attached document from the
moment its text is read, shows the progress on the document's chip ("indexing 340/1000 pages")
and cancels when the chip is removed; sending a message clears the chips without cancelling, so
the turn finds its documents indexed or still indexing. While a turn waits for one, the answer's
status shows the progress. Watched folders (Settings › Library) are indexed the same way and
watched with QFileSystemWatcher: a burst of changes is debounced into one rescan, which re-indexes
what changed and forgets what was deleted.
"""

from __future__ import annotations

import contextlib
import logging
import os
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import QFileSystemWatcher, QObject, QTimer, Signal, Slot
from PySide6.QtWidgets import QWidget

import engine
from app import messages
from app.attachments import AttachmentList, AttachmentTray

if TYPE_CHECKING:
    from app.chat_view import ChatView
    from app.composer import Composer
    from app.engine_client import EngineClient
    from engine import FolderState, IndexJobs, JobState

log = logging.getLogger(__name__)

DEBOUNCE_MS = 1000  # editors save in bursts (temp file, rename, touch): one rescan per burst
# Paths watched per folder: macOS spends a file descriptor on each; a rescan finds the rest.
MAX_WATCHED = 256
# A shorter document is indexed in one batch of pages, in milliseconds: its chip would flicker.
PROGRESS_FROM_PAGES = 64


class Window(Protocol):
    """What the indexer uses of the main window (which imports this module)."""

    attachments: AttachmentList
    composer: Composer
    view: ChatView
    engine: EngineClient


def progress_text(state: JobState) -> str:
    """The chip's addition while it indexes."""
    if state.status == "queued" or state.pages_total == 0:
        return "indexing…"
    return f"indexing {state.pages_done}/{state.pages_total} pages"


def waiting_text(states: tuple[JobState, ...]) -> str:
    """The answer's status while its turn waits for documents to be indexed."""
    parts = [f"{s.path.name} ({progress_text(s).removeprefix('indexing ')})" for s in states]
    return f"Indexing {', '.join(parts)}. The answer starts when it is searchable."


class LibraryIndexer(QObject):
    job_changed = Signal(object)  # JobState, on the UI thread
    waiting_changed = Signal(object)  # tuple[JobState, ...]: what the current turn waits for
    folders_changed = Signal(object)  # tuple[FolderState, ...]

    def __init__(
        self,
        library_path: Path | None,
        parent: QObject | None = None,
        *,
        debounce_ms: int = DEBOUNCE_MS,
    ) -> None:
        super().__init__(parent)
        self.jobs: IndexJobs | None = None
        if library_path is not None:
            self.jobs = engine.IndexJobs(
                library_path,
                on_change=self._emit_job,
                on_wait=self._emit_wait,
                on_folders=self._emit_folders,
            )
        self.folders: tuple[FolderState, ...] = ()
        self._attachments: AttachmentList | None = None
        self._tray: AttachmentTray | None = None
        self._indexing: dict[int, Path] = {}  # attachment key -> its document's path
        self._states: dict[Path, JobState] = {}
        self._watcher = QFileSystemWatcher(self)
        self._watcher.directoryChanged.connect(self._changed_on_disk)
        self._watcher.fileChanged.connect(self._changed_on_disk)
        self._dirty: set[Path] = set()
        self.debounce = QTimer(self)
        self.debounce.setSingleShot(True)
        self.debounce.setInterval(debounce_ms)
        self.debounce.timeout.connect(self._rescan_changed)
        self.job_changed.connect(self._job_changed)
        self.folders_changed.connect(self._folders_changed)

    def connect_window(self, window: Window) -> None:
        """Index the window's attachments, show waits in its answers, and catch up with the
        watched folders (what changed while the app was closed)."""
        if isinstance(window, QObject):
            self.setParent(window)
        self.follow(window.attachments, window.composer.tray)
        self.show_waits(window.view, window.engine)
        if self.jobs is not None and self.jobs.library_path.exists():
            self.jobs.refresh()

    # -- attached documents -----------------------------------------------------------------

    def follow(self, attachments: AttachmentList, tray: QWidget) -> None:
        """Index what is attached, and show it on the chips of `tray`."""
        self._attachments = attachments
        self._tray = tray if isinstance(tray, AttachmentTray) else None
        attachments.changed.connect(self._attachments_changed)  # after the tray rebuilt its chips

    def show_waits(self, view: ChatView, engine: EngineClient) -> None:
        """While a turn waits for its documents, its answer's status shows their progress."""

        def show(states: tuple[JobState, ...]) -> None:
            turn = engine.current_turn
            widget = view.assistant(turn.message_id) if turn is not None else None
            if widget is None or turn is None:
                return
            note = turn.documents.note if turn.documents is not None else ""
            widget.set_status(waiting_text(states) if states else note)

        self.waiting_changed.connect(show)

    @Slot()
    def _attachments_changed(self) -> None:
        if self._attachments is None:
            return
        items = {a.key: a for a in self._attachments.items()}
        for key in [k for k in self._indexing if k not in items]:
            del self._indexing[key]  # sent (the turn needs it) or removed (its chip cancelled it)
        for item in items.values():
            if item.doc is not None and item.key not in self._indexing and self.jobs is not None:
                self._indexing[item.key] = item.doc.path.resolve()
                self.jobs.index_document(item.doc)
        self._label_chips()

    def _label_chips(self) -> None:
        if self._tray is None or self._attachments is None:
            return
        items = {a.key: a for a in self._attachments.items()}
        for chip in self._tray.chips():
            item, path = items.get(chip.key), self._indexing.get(chip.key)
            if item is None:
                continue
            if path is not None and not chip.property("indexerConnected"):
                # The path travels with the connection: the list forgets the key first.
                chip.setProperty("indexerConnected", True)
                chip.remove_requested.connect(partial(self._chip_removed, path))
            state = self._states.get(path) if path is not None else None
            text = item.label
            if state is not None and state.running and state.pages_total > PROGRESS_FROM_PAGES:
                text = f"{text} · {progress_text(state)}"
            if chip.label.text() != text:
                chip.label.setText(text)
                chip.label.updateGeometry()

    def _chip_removed(self, path: Path, _key: int) -> None:
        if self.jobs is not None:
            self.jobs.cancel(path)  # drops the pages committed so far

    # -- watched folders --------------------------------------------------------------------

    def add_folder(self, folder: str | Path) -> None:
        if self.jobs is not None:
            self.jobs.add_folder(folder)

    def remove_folder(self, folder: str | Path) -> None:
        if self.jobs is not None:
            self.jobs.remove_folder(folder)

    def rescan_folders(self) -> None:
        for folder in self.folders:
            self._dirty.add(folder.path)
        self.debounce.start()

    @Slot(str)
    def _changed_on_disk(self, changed: str) -> None:
        path = Path(changed)
        for folder in self.folders:
            if path == folder.path or folder.path in path.parents:
                self._dirty.add(folder.path)
        self.debounce.start()  # restarted by each change: one rescan after the burst

    @Slot()
    def _rescan_changed(self) -> None:
        dirty, self._dirty = self._dirty, set()
        if self.jobs is not None:
            for folder in sorted(dirty):
                self.jobs.rescan(folder)

    @Slot(object)
    def _folders_changed(self, folders: tuple[FolderState, ...]) -> None:
        self.folders = folders
        self._watch()

    def _watch(self) -> None:
        wanted: list[str] = []
        for folder in self.folders:
            wanted.extend(_watchable(folder.path))
        stale = set(self._watcher.directories() + self._watcher.files()) - set(wanted)
        if stale:
            self._watcher.removePaths(sorted(stale))
        watched = set(self._watcher.directories() + self._watcher.files())
        new = [p for p in wanted if p not in watched]
        if new:
            self._watcher.addPaths(new)

    # -- from the indexing thread -----------------------------------------------------------

    def _emit_job(self, state: JobState) -> None:
        # RuntimeError: the window is gone while the thread finishes its last batch.
        with contextlib.suppress(RuntimeError):
            self.job_changed.emit(state)

    def _emit_wait(self, states: tuple[JobState, ...]) -> None:
        with contextlib.suppress(RuntimeError):
            self.waiting_changed.emit(states)

    def _emit_folders(self, folders: tuple[FolderState, ...]) -> None:
        with contextlib.suppress(RuntimeError):
            self.folders_changed.emit(folders)

    @Slot(object)
    def _job_changed(self, state: JobState) -> None:
        if state.kind != "document":
            if state.kind == "folder" and state.status == "done":
                self._watch()  # new subfolders are watched too
            return
        self._states[state.path] = state
        ours = state.path in self._indexing.values()
        if state.status == "failed" and ours:
            for problem in state.problems:
                messages.warning(problem)
        self._label_chips()

    def shutdown(self) -> None:
        """Quitting: stop indexing after the current batch (what is committed stays, resumable)."""
        self.debounce.stop()
        if self.jobs is not None:
            self.jobs.close()


def _watchable(folder: Path) -> list[str]:
    """The folder, its subfolders and its files, at most MAX_WATCHED paths, folders first."""
    folders: list[str] = []
    files: list[str] = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        folders.append(root)
        files.extend(os.path.join(root, n) for n in sorted(names) if _document(n))
        if len(folders) >= MAX_WATCHED:
            break
    return (folders + files)[:MAX_WATCHED]


def _document(name: str) -> bool:
    return not name.startswith(".") and Path(name).suffix.lower() in engine.DOCUMENT_SUFFIXES
