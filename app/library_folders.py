"""Settings › Library: the folders whose documents the model can search ("search my library").

Adding a folder indexes its documents in the background and watches it, so files saved, added or
deleted later are re-indexed or forgotten (app/library_indexer.py); removing one forgets its
documents, never the files. The list shows what the indexing thread last reported.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.library_indexer import LibraryIndexer

if TYPE_CHECKING:
    from engine import FolderState, JobState

PATH_ROLE = Qt.ItemDataRole.UserRole


def folder_line(folder: FolderState, job: JobState | None) -> str:
    """One row: the folder and what the model can search in it."""
    if job is not None and job.running:
        done = f" {job.files_done}/{job.files_total} files" if job.files_total else ""
        return f"{folder.path} · indexing{done}…"
    count = f"{folder.documents:,} document" + ("" if folder.documents == 1 else "s")
    failed = f", {folder.failed:,} unreadable" if folder.failed else ""
    return f"{folder.path} · {count}{failed}"


class LibraryFoldersPage(QWidget):
    def __init__(self, indexer: LibraryIndexer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._indexer = indexer
        self._jobs: dict[Path, JobState] = {}
        title = QLabel("Library folders")
        title.setProperty("role", "heading")
        note = QLabel(
            "Ask the model to “search my library” in any chat to search the documents in these "
            "folders. They are indexed on this Mac and kept up to date as files change."
        )
        note.setWordWrap(True)
        note.setProperty("role", "secondary")
        self.list = QListWidget()
        self.list.setAccessibleName("Library folders")
        self.list.setMinimumHeight(80)
        self.list.setMaximumHeight(160)  # a few folders; the dialog stays compact
        self.add_button = QPushButton("Add Folder…")
        self.add_button.setAccessibleName("Add a library folder")
        self.remove_button = QPushButton("Remove")
        self.remove_button.setAccessibleName("Remove the selected library folder")
        self.remove_button.setToolTip("Its documents are no longer searched; the files stay.")
        enabled = indexer.jobs is not None
        self.add_button.setEnabled(enabled)
        if not enabled:
            note.setText("Searching documents is off in this window.")
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 8, 0, 0)
        layout.addWidget(title)
        layout.addWidget(note)
        layout.addWidget(self.list)
        layout.addLayout(buttons)
        self.add_button.clicked.connect(self._choose_folder)
        self.remove_button.clicked.connect(self.remove_selected)
        self.list.itemSelectionChanged.connect(self._selection_changed)
        indexer.folders_changed.connect(self._show)
        indexer.job_changed.connect(self._job_changed)
        self._show(indexer.folders)

    def add_folder(self, folder: str | Path) -> None:
        self._indexer.add_folder(folder)

    @Slot()
    def remove_selected(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self._indexer.remove_folder(item.data(PATH_ROLE))

    def rows(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    @Slot()
    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder to the library")
        if folder:
            self.add_folder(folder)

    @Slot(object)
    def _show(self, folders: tuple[FolderState, ...]) -> None:
        current = self.list.currentItem()
        selected = current.data(PATH_ROLE) if current is not None else None
        self.list.clear()
        for folder in folders:
            item = QListWidgetItem(folder_line(folder, self._jobs.get(folder.path)))
            item.setData(PATH_ROLE, str(folder.path))
            self.list.addItem(item)
            if str(folder.path) == selected:
                self.list.setCurrentItem(item)
        self._selection_changed()

    @Slot(object)
    def _job_changed(self, state: JobState) -> None:
        if state.kind == "folder":
            self._jobs[state.path] = state
            self._show(self._indexer.folders)

    @Slot()
    def _selection_changed(self) -> None:
        self.remove_button.setEnabled(self.list.currentItem() is not None)


def folders_page(indexer: LibraryIndexer | None) -> LibraryFoldersPage | None:
    """The Settings section, or None when the window has no library."""
    return None if indexer is None else LibraryFoldersPage(indexer)
