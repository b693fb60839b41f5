"""The setup dialog's download card: where to save gpt-oss-20b, progress, pause and resume, and
what went wrong. The download itself runs on a DownloadTask thread (app/download_worker.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

from PySide6.QtCore import QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.download_worker import (
    CHUNK_BYTES,
    DEFAULT_REPO,
    DiskUsage,
    DownloadFailure,
    DownloadStarted,
    DownloadTask,
    describe_progress,
    download_dir_in,
    format_bytes,
    free_space,
    has_files,
    progress_permille,
)
from app.model_setup_widgets import label, named
from engine import DownloadProgress, RetryPolicy

TOKEN_URL = "https://huggingface.co/settings/tokens"
# What the retry button says after each kind of failure; the engine's message says why.
RETRY_LABELS = {
    "unauthorized": "Sign In and Retry",
    "checksum": "Download Again",
    "disk_full": "Try Again",
    "disk": "Try Again",
    "bug": "Try Again",
}
HINTS = {
    "unauthorized": "Paste a Hugging Face access token with read access below.",
    "bug": "If this happens again, please report it with the diagnostics from About OSS Desk.",
}


class DownloadCard(QFrame):
    """Emits downloaded(folder) once the model is downloaded and verified."""

    downloaded = Signal(str)
    running_changed = Signal(bool)
    text_grew = Signal()  # an error's lines were added: the dialog may need to grow

    def __init__(
        self,
        dest: Path,
        parent: QWidget | None = None,
        *,
        endpoint: str | None = None,
        repo_id: str = DEFAULT_REPO,
        revision: str = "main",
        token: str | bool | None = None,
        disk_usage: DiskUsage = shutil.disk_usage,
        retry: RetryPolicy | None = None,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        super().__init__(parent)
        self.setProperty("role", "card")
        self._token = token
        self._disk_usage = disk_usage
        self._last_progress: DownloadProgress | None = None
        self._task = DownloadTask(
            self,
            repo_id=repo_id,
            revision=revision,
            endpoint=endpoint,
            retry=retry,
            disk_usage=disk_usage,
            chunk_bytes=chunk_bytes,
        )
        self._task.download_started.connect(self._on_started)
        self._task.progress_changed.connect(self._on_progress)
        self._task.download_finished.connect(self._on_finished)
        self._task.download_paused.connect(self._on_paused)
        self._task.download_failed.connect(self._on_failed)
        self._build(dest)

    @property
    def is_running(self) -> bool:
        return self._task.is_running

    def shutdown(self) -> None:
        """A running download pauses (partial files stay) and its thread stops."""
        self._task.shutdown()

    def _build(self, dest: Path) -> None:
        box = QVBoxLayout(self)
        box.addWidget(label("<b>Download gpt-oss-20b</b> from Hugging Face (about 14 GB)"))
        row = QHBoxLayout()
        dest_label = QLabel("Save to:")
        self.dest_edit = QLineEdit(str(dest))
        dest_label.setBuddy(self.dest_edit)
        named(self.dest_edit, "Download folder", "The folder the model is downloaded into.")
        self.dest_edit.textChanged.connect(self.show_idle)
        self.choose_dest_button = QPushButton("Choose…")
        named(self.choose_dest_button, "Choose download folder")
        self.choose_dest_button.clicked.connect(self._browse_dest)
        row.addWidget(dest_label)
        row.addWidget(self.dest_edit, 1)
        row.addWidget(self.choose_dest_button)
        box.addLayout(row)
        self.space_label = label(role="secondary")
        box.addWidget(self.space_label)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        named(self.progress_bar, "Download progress")
        box.addWidget(self.progress_bar)
        self.status_label = label(role="secondary")
        box.addWidget(self.status_label)
        self.error_label = label(role="error")
        box.addWidget(self.error_label)
        self.token_row = QWidget()
        token_box = QHBoxLayout(self.token_row)
        token_box.setContentsMargins(0, 0, 0, 0)
        token_label = QLabel("Access token:")
        self.token_edit = QLineEdit()
        self.token_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.token_edit.setPlaceholderText("hf_…")
        token_label.setBuddy(self.token_edit)
        named(self.token_edit, "Hugging Face access token")
        self.token_link = QToolButton()
        self.token_link.setText("Get a Token…")
        named(self.token_link, "Get a token", f"Opens {TOKEN_URL} in your browser.")
        self.token_link.clicked.connect(lambda: QDesktopServices.openUrl(QUrl(TOKEN_URL)))
        for w in (token_label, self.token_edit, self.token_link):
            token_box.addWidget(w)
        box.addWidget(self.token_row)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.pause_button = QPushButton("Pause")
        named(self.pause_button, "Pause download", "Stops the download; it can resume later.")
        self.pause_button.clicked.connect(self.pause_download)
        self.download_button = QPushButton("Download")
        named(self.download_button, "Download the model")
        self.download_button.setDefault(True)
        self.download_button.clicked.connect(self.start_download)
        buttons.addWidget(self.pause_button)
        buttons.addWidget(self.download_button)
        box.addLayout(buttons)

    def download_dest(self) -> Path:
        return Path(self.dest_edit.text().strip()).expanduser()

    @Slot()
    def _browse_dest(self) -> None:
        start = self.download_dest()
        chosen = QFileDialog.getExistingDirectory(
            self, "Choose Where to Save the Model", str(start.parent)
        )
        if chosen:
            self.dest_edit.setText(str(download_dir_in(Path(chosen))))

    @Slot()
    def start_download(self) -> None:
        if self._task.is_running:
            return
        dest = self.download_dest()
        if not dest.is_absolute():
            self._show_error(DownloadFailure("disk", "Choose a full folder path to download to."))
            return
        token = self.token_edit.text().strip() or self._token
        self.error_label.hide()
        self.token_row.setVisible(bool(self.token_edit.text()))
        self._set_status("Asking Hugging Face for the model's files…")
        self._set_running(True)
        self._task.start(dest, token)

    @Slot()
    def pause_download(self) -> None:
        if self._task.is_running:
            self.pause_button.setEnabled(False)
            self.pause_button.setText("Pausing…")
            self._task.cancel()

    @Slot(object)
    def _on_started(self, started: DownloadStarted) -> None:
        self.space_label.setText(started.disk_message)
        self.progress_bar.show()
        done = started.total_bytes - started.remaining_bytes
        self.progress_bar.setValue(1000 * done // started.total_bytes if started.total_bytes else 0)

    @Slot(object)
    def _on_progress(self, progress: DownloadProgress) -> None:
        self._last_progress = progress
        self.progress_bar.setValue(progress_permille(progress))
        self._set_status(describe_progress(progress))

    @Slot(str)
    def _on_finished(self, folder: str) -> None:
        self._set_running(False)
        self._set_status("Downloaded and verified.")
        self.downloaded.emit(folder)

    @Slot()
    def _on_paused(self) -> None:
        self._set_running(False)
        p = self._last_progress
        where = f" at {format_bytes(p.done_bytes)} of {format_bytes(p.total_bytes)}" if p else ""
        self._set_status(f"Paused{where}. Resume continues where it stopped.")
        self.download_button.setText("Resume")
        self.download_button.setAccessibleName("Resume download")

    @Slot(object)
    def _on_failed(self, failure: DownloadFailure) -> None:
        self._set_running(False)
        self._show_error(failure)

    def _show_error(self, failure: DownloadFailure) -> None:
        hint = HINTS.get(failure.kind)
        self.error_label.setText(f"{failure.message}\n{hint}" if hint else failure.message)
        self.error_label.show()
        self._set_status("")
        self.token_row.setVisible(failure.kind == "unauthorized" or bool(self.token_edit.text()))
        text = RETRY_LABELS.get(failure.kind, "Retry")
        self.download_button.setText(text)
        self.download_button.setAccessibleName(text)
        if failure.kind == "unauthorized":
            self.token_edit.setFocus()
        self.text_grew.emit()

    def _set_status(self, text: str) -> None:
        self.status_label.setText(text)
        self.status_label.setVisible(bool(text))

    def _set_running(self, running: bool) -> None:
        self.download_button.setVisible(not running)
        self.pause_button.setVisible(running)
        self.pause_button.setEnabled(running)
        self.pause_button.setText("Pause")
        for w in (self.dest_edit, self.choose_dest_button):
            w.setEnabled(not running)
        self.running_changed.emit(running)
        if running:
            self.progress_bar.show()

    @Slot()
    def show_idle(self) -> None:
        """The card before any download in this dialog (or after the folder changed)."""
        if self._task.is_running:
            return
        dest = self.download_dest()
        text = "Resume Download" if has_files(dest) else "Download"
        self.download_button.setText(text)
        self.download_button.setAccessibleName(text)
        self.pause_button.hide()
        self.progress_bar.hide()
        self.error_label.hide()
        self.token_row.setVisible(bool(self.token_edit.text()))
        self._set_status("")
        try:
            free = f"{format_bytes(free_space(dest, self._disk_usage))} free on this disk."
        except OSError:
            free = ""
        self.space_label.setText(free)
