"""The first-run dialog: download gpt-oss-20b, or choose a model folder the user already has.

Either way it ends by emitting model_chosen(folder) and accepting. The download runs on a
DownloadTask thread (app/download_worker.py) and can be paused and resumed; a folder that is
chosen is checked (config.json and weights) and measured against this Mac's memory before it
can be used (app/memory_check.py); one that does not fit is refused unless the user ticks
"Load anyway", and offered the ways out: a server, or a split across Macs
(app/model_setup_split.py).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from PySide6.QtCore import QEvent, Qt, Signal, Slot
from PySide6.QtGui import QFontDatabase, QFontMetrics
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QPlainTextEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.download_worker import CHUNK_BYTES, DEFAULT_REPO, DiskUsage, default_download_dir
from app.handover import APP_NAME
from app.memory_check import check_model_folder, describe_fit
from app.model_setup_download import HINTS, RETRY_LABELS, TOKEN_URL, DownloadCard
from app.model_setup_split import WaysOut
from app.model_setup_widgets import label, named, set_role
from engine import MachineBudget, RetryPolicy, machine_budget

# Names other modules and tests import from here.
__all__ = ["HINTS", "RETRY_LABELS", "TOKEN_URL", "ModelSetupDialog"]

log = logging.getLogger(__name__)
SPLIT_WIDTH = 720  # wide enough for the split recipe's lines, narrow enough for any screen


class ModelSetupDialog(QDialog):
    """Shown on first run (and from "Choose Model…"); emits model_chosen(folder) on success, or
    server_requested when the user would rather use a server (the dialog then closes)."""

    model_chosen = Signal(str)
    server_requested = Signal()

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
        self._budget = budget
        self._chosen_model: Path | None = None
        self._fits = False
        self.download_card = card = DownloadCard(
            download_dir or default_download_dir(),
            endpoint=endpoint,
            repo_id=repo_id,
            revision=revision,
            token=token,
            disk_usage=disk_usage,
            retry=retry,
            chunk_bytes=chunk_bytes,
        )
        card.downloaded.connect(lambda folder: self._choose(Path(folder)))
        card.running_changed.connect(self._download_running)
        card.text_grew.connect(self._grow_to_fit)
        # The card's controls, reached through the dialog as before the card was its own class.
        self.dest_edit, self.choose_dest_button = card.dest_edit, card.choose_dest_button
        self.space_label, self.progress_bar = card.space_label, card.progress_bar
        self.status_label, self.error_label = card.status_label, card.error_label
        self.token_row, self.token_edit = card.token_row, card.token_edit
        self.pause_button, self.download_button = card.pause_button, card.download_button
        self.start_download, self.pause_download = card.start_download, card.pause_download
        self.download_dest = card.download_dest

        self._layout = layout = QVBoxLayout(self)
        welcome = label(f"Welcome to {APP_NAME}", "title")
        intro = label(
            f"{APP_NAME} runs OpenAI's gpt-oss models entirely on this Mac. Everything stays "
            "here: the app goes online only to download the model."
        )
        # What the split recipe replaces while it shows, so that the window fits 1280x800.
        self._first_run_parts: tuple[QWidget, ...] = (welcome, intro, card)
        for part in self._first_run_parts:
            layout.addWidget(part)
        layout.addWidget(self._build_existing_card())
        layout.addStretch(1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.cancel_button = buttons.button(QDialogButtonBox.StandardButton.Cancel)
        named(self.cancel_button, "Cancel", "Close this window; a download pauses and can resume.")
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        card.show_idle()
        self.setMinimumWidth(560)

    # Building

    def _build_existing_card(self) -> QFrame:
        card = QFrame()
        card.setProperty("role", "card")
        box = QVBoxLayout(card)
        box.addWidget(
            label(
                "<b>Already have the model?</b> Choose its folder: gpt-oss-20b or gpt-oss-120b in "
                "Hugging Face format (config.json and .safetensors files)."
            )
        )
        self.choose_model_button = QPushButton("Choose Model Folder…")
        named(self.choose_model_button, "Choose model folder")
        self.choose_model_button.clicked.connect(self._browse_model)
        row = QHBoxLayout()
        row.addWidget(self.choose_model_button)
        row.addStretch(1)
        box.addLayout(row)
        self.model_status_label = label()
        box.addWidget(self.model_status_label)
        self.ways_out = WaysOut()
        self.ways_out.server_requested.connect(self._use_server)
        self.ways_out.panel_toggled.connect(self._split_panel_toggled)
        box.addWidget(self.ways_out)
        self.split_panel = self.ways_out.panel
        self.details_button = QToolButton()
        self.details_button.setText("Memory Details")
        self.details_button.setCheckable(True)
        self.details_button.setArrowType(Qt.ArrowType.RightArrow)
        self.details_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.details_button.setAutoRaise(True)
        named(self.details_button, "Show memory details")
        self.details_button.toggled.connect(self._show_details)
        box.addWidget(self.details_button)
        self.fit_details = QPlainTextEdit()
        self.fit_details.setReadOnly(True)
        self.fit_details.setProperty("role", "details")
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.fit_details.setFont(mono)
        # The whole table without scrolling: a title, 11 components, the total, the budget.
        self.fit_details.setFixedHeight(QFontMetrics(mono).lineSpacing() * 17)
        named(self.fit_details, "Memory details", "How much memory each part of the model needs.")
        box.addWidget(self.fit_details)
        self.load_anyway_box = QCheckBox("Load anyway")
        named(
            self.load_anyway_box,
            "Load anyway",
            "Use the model although it does not fit: this Mac may slow to a crawl, or macOS may "
            "stop OSS Desk.",
        )
        self.load_anyway_box.setToolTip(self.load_anyway_box.accessibleDescription())
        self.load_anyway_box.toggled.connect(self._update_use_button)
        self.use_button = QPushButton("Use This Model")
        named(self.use_button, "Use this model")
        self.use_button.clicked.connect(self.use_chosen_model)
        row = QHBoxLayout()
        row.addWidget(self.load_anyway_box)
        row.addStretch(1)
        row.addWidget(self.use_button)
        box.addLayout(row)
        self.model_status_label.hide()
        self.ways_out.hide()
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
        fit this Mac's memory only after "Load anyway" is ticked, and then the ways out show)."""
        self.model_status_label.show()
        self._chosen_model, self._fits = None, False
        self.load_anyway_box.setChecked(False)
        self.load_anyway_box.hide()
        self.ways_out.hide()
        try:
            problem = check_model_folder(folder)
            fit = None
            if not problem:
                budget = self._budget or machine_budget()
                fit = describe_fit(folder, budget=budget)
                if not fit.fits:
                    self.ways_out.show_for(folder.expanduser().absolute(), budget)
        except Exception as e:  # a bug: shown in the dialog, never an uncaught slot error
            log.exception("checking the model folder %s crashed", folder)
            problem = (
                f"Checking {folder} failed because of an error in OSS Desk ({e}). "
                "Choose another folder; if this happens again, please report it with the "
                "diagnostics from About OSS Desk."
            )
            fit = None
            self.ways_out.hide()
        if fit is None:
            self.model_status_label.setText(problem or "")
            set_role(self.model_status_label, "error")
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
        set_role(self.model_status_label, "success" if fit.fits else "error")
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
        self.use_button.setEnabled(usable and not self.download_card.is_running)
        self.use_button.setText("Use This Model" if self._fits or not usable else "Use Anyway")
        self.use_button.setAccessibleName(self.use_button.text())

    @Slot(bool)
    def _show_details(self, shown: bool) -> None:
        self.fit_details.setVisible(shown)
        arrow = Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow
        self.details_button.setArrowType(arrow)
        self.details_button.setAccessibleName(f"{'Hide' if shown else 'Show'} memory details")
        if shown:  # one of the two tall panes at a time, so the window fits a laptop's screen
            self.ways_out.split_button.setChecked(False)
        self._grow_to_fit()

    @Slot(bool)
    def _split_panel_toggled(self, shown: bool) -> None:
        if shown:
            self.details_button.setChecked(False)
        # The recipe is for a model already on disk: the download card makes way for it.
        for part in self._first_run_parts:
            part.setVisible(not shown)
        if shown and self.width() < SPLIT_WIDTH:  # the command and hosts.json unwrapped
            self.resize(SPLIT_WIDTH, self.height())
        self._grow_to_fit(shrink=True)

    @Slot()
    def _use_server(self) -> None:
        self.server_requested.emit()
        self.reject()  # a window-modal setup would keep Settings from taking any input

    @Slot()
    def use_chosen_model(self) -> None:
        if self._chosen_model is not None and (self._fits or self.fit_overridden):
            self._choose(self._chosen_model)

    def _choose(self, folder: Path) -> None:
        self.model_chosen.emit(str(folder))
        self.accept()

    # Download

    @Slot(bool)
    def _download_running(self, running: bool) -> None:
        self.choose_model_button.setEnabled(not running)
        self._update_use_button()

    @Slot()
    def _grow_to_fit(self, shrink: bool = False) -> None:
        """Wrapped labels that gained lines would be squeezed: grow the window, and shrink it
        only when asked (a pane that closed), so text that changes does not make it jump."""
        layout = self._layout
        # A label's new text reaches the cards' layouts as posted LayoutRequests; until they are
        # handled the measured height is the old one, and a long error was cut off at the bottom.
        QApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
        layout.activate()
        width = self.width()
        needed = layout.totalHeightForWidth(width) if layout.hasHeightForWidth() else -1
        needed = max(needed, layout.totalMinimumSize().height())
        if needed > self.height() or (shrink and needed < self.height()):
            self.resize(width, needed)
            self._keep_on_screen()

    def _keep_on_screen(self) -> None:
        """A window that grew past the screen's bottom edge moves up (to the top at most)."""
        available = self.screen().availableGeometry()
        frame = self.frameGeometry()
        overflow = frame.bottom() - available.bottom()
        if overflow > 0:
            self.move(frame.left(), max(available.top(), frame.top() - overflow))

    def done(self, result: int) -> None:
        # A running download pauses (partial files stay) and its thread stops before we close.
        self.download_card.shutdown()
        super().done(result)
