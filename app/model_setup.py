"""The first-run dialog: download gpt-oss-20b, or choose a model folder the user already has.

Either way it ends by emitting model_chosen(folder) and accepting. The download runs on a
DownloadTask thread (app/download_worker.py) and can be paused and resumed; a folder that is
chosen is checked (config.json and weights) and measured against this Mac's memory before it
can be used (app/memory_check.py); one that does not fit is refused unless the user ticks
"Load anyway".
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from PySide6.QtCore import QEvent, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices, QFontDatabase, QFontMetrics
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
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
    default_download_dir,
    describe_progress,
    download_dir_in,
    format_bytes,
    free_space,
    has_files,
    progress_permille,
)
from app.handover import APP_NAME
from app.memory_check import check_model_folder, describe_fit
from engine import DownloadProgress, MachineBudget, RetryPolicy

log = logging.getLogger(__name__)

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


def _named(widget: QWidget, name: str, description: str = "") -> None:
    widget.setAccessibleName(name)
    if description:
        widget.setAccessibleDescription(description)


def _label(text: str = "", role: str | None = None) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    if role:
        label.setProperty("role", role)
    return label


def _set_role(label: QLabel, role: str) -> None:
    label.setProperty("role", role)
    label.style().unpolish(label)
    label.style().polish(label)


class ModelSetupDialog(QDialog):
    """Shown on first run (and from "Choose Model…"); emits model_chosen(folder) on success."""

    model_chosen = Signal(str)

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        endpoint: str | None = None,
        repo_id: str = DEFAULT_REPO,
        revision: str = "main",
        download_dir: Path | None = None,
        token: str | bool | None = None,
        budget: MachineBudget | None = None,
        disk_usage: DiskUsage = shutil.disk_usage,
        retry: RetryPolicy | None = None,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        """`endpoint`: the Hub (None: HF_ENDPOINT, else huggingface.co). `token`: None uses the
        token huggingface_hub has stored, False none. The rest are for tests and packaging."""
        super().__init__(parent)
        self.setWindowTitle(f"Set Up {APP_NAME}")
        self._token = token
        self._budget = budget
        self._disk_usage = disk_usage
        self._chosen_model: Path | None = None
        self._fits = False
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

        self._layout = layout = QVBoxLayout(self)
        layout.addWidget(_label(f"Welcome to {APP_NAME}", "title"))
        layout.addWidget(
            _label(
                f"{APP_NAME} runs OpenAI's gpt-oss models entirely on this Mac. Everything stays "
                "here: the app goes online only to download the model."
            )
        )
        layout.addWidget(self._build_download_card(download_dir or default_download_dir()))
        layout.addWidget(self._build_existing_card())
        layout.addStretch(1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.cancel_button = buttons.button(QDialogButtonBox.StandardButton.Cancel)
        _named(self.cancel_button, "Cancel", "Close this window; a download pauses and can resume.")
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self._show_idle()
        self.setMinimumWidth(560)

    # Building

    def _build_download_card(self, dest: Path) -> QFrame:
        card = QFrame()
        card.setProperty("role", "card")
        box = QVBoxLayout(card)
        box.addWidget(_label("<b>Download gpt-oss-20b</b> from Hugging Face (about 14 GB)"))
        row = QHBoxLayout()
        dest_label = QLabel("Save to:")
        self.dest_edit = QLineEdit(str(dest))
        dest_label.setBuddy(self.dest_edit)
        _named(self.dest_edit, "Download folder", "The folder the model is downloaded into.")
        self.dest_edit.textChanged.connect(self._show_idle)
        self.choose_dest_button = QPushButton("Choose…")
        _named(self.choose_dest_button, "Choose download folder")
        self.choose_dest_button.clicked.connect(self._browse_dest)
        row.addWidget(dest_label)
        row.addWidget(self.dest_edit, 1)
        row.addWidget(self.choose_dest_button)
        box.addLayout(row)
        self.space_label = _label(role="secondary")
        box.addWidget(self.space_label)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        _named(self.progress_bar, "Download progress")
        box.addWidget(self.progress_bar)
        self.status_label = _label(role="secondary")
        box.addWidget(self.status_label)
        self.error_label = _label(role="error")
        box.addWidget(self.error_label)
        self.token_row = QWidget()
        token_box = QHBoxLayout(self.token_row)
        token_box.setContentsMargins(0, 0, 0, 0)
        token_label = QLabel("Access token:")
        self.token_edit = QLineEdit()
        self.token_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.token_edit.setPlaceholderText("hf_…")
        token_label.setBuddy(self.token_edit)
        _named(self.token_edit, "Hugging Face access token")
        self.token_link = QToolButton()
        self.token_link.setText("Get a Token…")
        _named(self.token_link, "Get a token", f"Opens {TOKEN_URL} in your browser.")
        self.token_link.clicked.connect(lambda: QDesktopServices.openUrl(QUrl(TOKEN_URL)))
        for w in (token_label, self.token_edit, self.token_link):
            token_box.addWidget(w)
        box.addWidget(self.token_row)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.pause_button = QPushButton("Pause")
        _named(self.pause_button, "Pause download", "Stops the download; it can resume later.")
        self.pause_button.clicked.connect(self.pause_download)
        self.download_button = QPushButton("Download")
        _named(self.download_button, "Download the model")
        self.download_button.setDefault(True)
        self.download_button.clicked.connect(self.start_download)
        buttons.addWidget(self.pause_button)
        buttons.addWidget(self.download_button)
        box.addLayout(buttons)
        return card

    def _build_existing_card(self) -> QFrame:
        card = QFrame()
        card.setProperty("role", "card")
        box = QVBoxLayout(card)
        box.addWidget(
            _label(
                "<b>Already have the model?</b> Choose its folder: gpt-oss-20b or gpt-oss-120b in "
                "Hugging Face format (config.json and .safetensors files)."
            )
        )
        self.choose_model_button = QPushButton("Choose Model Folder…")
        _named(self.choose_model_button, "Choose model folder")
        self.choose_model_button.clicked.connect(self._browse_model)
        row = QHBoxLayout()
        row.addWidget(self.choose_model_button)
        row.addStretch(1)
        box.addLayout(row)
        self.model_status_label = _label()
        box.addWidget(self.model_status_label)
        self.details_button = QToolButton()
        self.details_button.setText("Memory Details")
        self.details_button.setCheckable(True)
        self.details_button.setArrowType(Qt.ArrowType.RightArrow)
        self.details_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.details_button.setAutoRaise(True)
        _named(self.details_button, "Show memory details")
        self.details_button.toggled.connect(self._show_details)
        box.addWidget(self.details_button)
        self.fit_details = QPlainTextEdit()
        self.fit_details.setReadOnly(True)
        self.fit_details.setProperty("role", "details")
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.fit_details.setFont(mono)
        # The whole table without scrolling: a title, 11 components, the total, the budget.
        self.fit_details.setFixedHeight(QFontMetrics(mono).lineSpacing() * 17)
        _named(self.fit_details, "Memory details", "How much memory each part of the model needs.")
        box.addWidget(self.fit_details)
        self.load_anyway_box = QCheckBox("Load anyway")
        _named(
            self.load_anyway_box,
            "Load anyway",
            "Use the model although it does not fit: this Mac may slow to a crawl, or macOS may "
            "stop OSS Desk.",
        )
        self.load_anyway_box.setToolTip(self.load_anyway_box.accessibleDescription())
        self.load_anyway_box.toggled.connect(self._update_use_button)
        self.use_button = QPushButton("Use This Model")
        _named(self.use_button, "Use this model")
        self.use_button.clicked.connect(self.use_chosen_model)
        row = QHBoxLayout()
        row.addWidget(self.load_anyway_box)
        row.addStretch(1)
        row.addWidget(self.use_button)
        box.addLayout(row)
        self.model_status_label.hide()
        self.details_button.hide()
        self.fit_details.hide()
        self.load_anyway_box.hide()
        self.use_button.setEnabled(False)
        return card

    # Existing folder

    @Slot()
    def _browse_model(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Choose the Model Folder")
        if chosen:
            self.select_model_folder(Path(chosen))

    def select_model_folder(self, folder: Path) -> bool:
        """Check `folder` and show the verdict; True when it can be used (a model that does not
        fit this Mac's memory only after "Load anyway" is ticked)."""
        self.model_status_label.show()
        self._chosen_model, self._fits = None, False
        self.load_anyway_box.setChecked(False)
        self.load_anyway_box.hide()
        try:
            problem = check_model_folder(folder)
            fit = None if problem else describe_fit(folder, budget=self._budget)
        except Exception as e:  # a bug: shown in the dialog, never an uncaught slot error
            log.exception("checking the model folder %s crashed", folder)
            problem = (
                f"Checking {folder} failed because of an error in OSS Desk ({e}). "
                "Choose another folder; if this happens again, please report it with the "
                "diagnostics from About OSS Desk."
            )
            fit = None
        if fit is None:
            self.model_status_label.setText(problem or "")
            _set_role(self.model_status_label, "error")
            self.details_button.hide()
            self.details_button.setChecked(False)
            self._update_use_button()
            self._grow_to_fit()
            return False
        self._chosen_model = folder.expanduser().absolute()
        self._fits = fit.fits
        # When it does not fit, the planner's verdict (how much it needs) is the reason.
        self.model_status_label.setText(
            fit.headline if fit.fits else f"{fit.headline} {fit.message}"
        )
        _set_role(self.model_status_label, "success" if fit.fits else "error")
        self.fit_details.setPlainText(fit.details)
        self.details_button.show()
        self.load_anyway_box.setVisible(not fit.fits)
        self._update_use_button()
        self._grow_to_fit()
        return fit.fits

    @property
    def fit_overridden(self) -> bool:
        """Whether the chosen model does not fit and the user chose to load it anyway."""
        return (
            self._chosen_model is not None and not self._fits and self.load_anyway_box.isChecked()
        )

    @Slot()
    def _update_use_button(self) -> None:
        usable = self._chosen_model is not None and (self._fits or self.fit_overridden)
        self.use_button.setEnabled(usable and not self._task.is_running)
        self.use_button.setText("Use This Model" if self._fits or not usable else "Use Anyway")
        self.use_button.setAccessibleName(self.use_button.text())

    @Slot(bool)
    def _show_details(self, shown: bool) -> None:
        self.fit_details.setVisible(shown)
        arrow = Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow
        self.details_button.setArrowType(arrow)
        self.details_button.setAccessibleName(f"{'Hide' if shown else 'Show'} memory details")
        self._grow_to_fit()

    @Slot()
    def use_chosen_model(self) -> None:
        if self._chosen_model is not None and (self._fits or self.fit_overridden):
            self._choose(self._chosen_model)

    def _choose(self, folder: Path) -> None:
        self.model_chosen.emit(str(folder))
        self.accept()

    # Download

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
        self._choose(Path(folder))

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
        label = RETRY_LABELS.get(failure.kind, "Retry")
        self.download_button.setText(label)
        self.download_button.setAccessibleName(label)
        if failure.kind == "unauthorized":
            self.token_edit.setFocus()
        self._grow_to_fit()

    def _set_status(self, text: str) -> None:
        self.status_label.setText(text)
        self.status_label.setVisible(bool(text))

    def _set_running(self, running: bool) -> None:
        self.download_button.setVisible(not running)
        self.pause_button.setVisible(running)
        self.pause_button.setEnabled(running)
        self.pause_button.setText("Pause")
        for w in (self.dest_edit, self.choose_dest_button, self.choose_model_button):
            w.setEnabled(not running)
        self._update_use_button()
        if running:
            self.progress_bar.show()

    @Slot()
    def _show_idle(self) -> None:
        """The download section before any download in this dialog (or after the folder changed)."""
        if self._task.is_running:
            return
        dest = self.download_dest()
        label = "Resume Download" if has_files(dest) else "Download"
        self.download_button.setText(label)
        self.download_button.setAccessibleName(label)
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

    def _grow_to_fit(self) -> None:
        """Wrapped labels that gained lines would be squeezed: grow the window, never shrink it."""
        layout = self._layout
        # A label's new text reaches the cards' layouts as posted LayoutRequests; until they are
        # handled the measured height is the old one, and a long error was cut off at the bottom.
        QApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
        layout.activate()
        width = self.width()
        needed = layout.totalHeightForWidth(width) if layout.hasHeightForWidth() else -1
        needed = max(needed, layout.totalMinimumSize().height())
        if needed > self.height():
            self.resize(width, needed)

    def done(self, result: int) -> None:
        # A running download pauses (partial files stay) and its thread stops before we close.
        self._task.shutdown()
        super().done(result)
