"""The Settings window (⌘,): separate, non-modal, and every change applies at once (no OK)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.engine_client import EngineClient
from app.remote_settings import RemoteSettings
from app.settings import (
    MAX_PROMPT_CACHE_GB,
    AnswerLength,
    FontSize,
    Profile,
    Settings,
    SettingsStore,
    Theme,
)
from app.tools_settings import ToolsSettings
from engine import ReasoningEffort, prompt_cache_folder_bytes

PROFILE_TITLES = {
    Profile.AUTO: "Automatic (best that fits this Mac)",
    Profile.FULL: "Full precision",
    Profile.GB16: "16 GB Mac",
    Profile.COMPACT: "Compact",
}
THEME_TITLES = {Theme.SYSTEM: "Follow the system", Theme.LIGHT: "Light", Theme.DARK: "Dark"}
FONT_SIZE_TITLES = {FontSize.SMALL: "Small", FontSize.DEFAULT: "Default", FontSize.LARGE: "Large"}
LENGTH_TITLES = {
    AnswerLength.SHORT: "Short",
    AnswerLength.NORMAL: "Normal",
    AnswerLength.LONG: "Long",
}
INSTRUCTIONS_LINES = 5


def _named(widget: QWidget, name: str, description: str = "") -> QWidget:
    widget.setAccessibleName(name)
    if description:
        widget.setAccessibleDescription(description)
        widget.setToolTip(description)
    return widget


def _alone(widget: QWidget) -> QVBoxLayout:
    layout = QVBoxLayout()
    layout.addWidget(widget)
    return layout


def _page(layout: QFormLayout | QVBoxLayout) -> QWidget:
    """A tab's page: its rows at the top, free space below."""
    if isinstance(layout, QVBoxLayout):
        layout.addStretch(1)
    page = QWidget()
    page.setLayout(layout)
    return page


def _megabytes(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB" if n >= 1e6 else "nothing"


class SettingsDialog(QDialog):
    def __init__(
        self,
        store: SettingsStore,
        parent: QWidget | None = None,
        *,
        engine: EngineClient | None = None,
        library: QWidget | None = None,  # Settings › Library folders (app/library_folders.py)
        server: QWidget | None = None,  # Settings › Server (app/server_settings.py)
        tools: QWidget | None = None,  # Settings › Tools; by default one without server status
    ) -> None:
        super().__init__(parent)
        self._engine = engine
        self.setWindowTitle("Settings")
        self.setModal(False)
        self._store = store
        self.effort = QComboBox()
        for effort in ReasoningEffort:
            self.effort.addItem(effort.value.capitalize(), effort.value)
        _named(self.effort, "Default reasoning effort", "The effort new chats start with.")
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.0, 2.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setDecimals(2)
        self.temperature.lineEdit().setAccessibleName("Temperature")
        _named(
            self.temperature,
            "Temperature",
            "1.0 is OpenAI's recommendation; 0 always picks the likeliest token.",
        )
        self.instructions = QPlainTextEdit()
        self.instructions.setTabChangesFocus(True)
        self.instructions.setPlaceholderText(
            'How gpt-oss should answer in every chat, e.g. "I am a biologist; be concise."'
        )
        lines = self.instructions.fontMetrics().lineSpacing() * INSTRUCTIONS_LINES
        self.instructions.setFixedHeight(lines + 2 * self.instructions.frameWidth() + 8)
        _named(
            self.instructions,
            "Custom instructions",
            "Sent to the model with every message; a chat can have its own (Chat › Chat "
            "Instructions).",
        )
        self.answer_length = QComboBox()
        for length, title in LENGTH_TITLES.items():
            self.answer_length.addItem(title, length.value)
        _named(
            self.answer_length,
            "Answer length",
            "Asks for shorter or longer answers and caps their length.",
        )
        self.show_reasoning = QCheckBox("Show the reasoning section")
        _named(self.show_reasoning, "Show the reasoning section")
        self.collapse = QCheckBox("Collapse the reasoning when the answer completes")
        _named(self.collapse, "Collapse the reasoning when the answer completes")
        self.export_reasoning = QCheckBox("Include the reasoning in exports")
        _named(self.export_reasoning, "Include the reasoning in exports")
        self.theme = QComboBox()
        for theme, title in THEME_TITLES.items():
            self.theme.addItem(title, theme.value)
        _named(self.theme, "Appearance")
        self.font_size = QComboBox()
        for size, title in FONT_SIZE_TITLES.items():
            self.font_size.addItem(title, size.value)
        _named(self.font_size, "Text size", "The size of the conversation's text.")
        self.model_dir = QLineEdit()
        self.model_dir.setReadOnly(True)
        _named(self.model_dir, "Model folder")
        self.choose_model = QPushButton("Choose…")
        _named(self.choose_model, "Choose model folder")
        self.profile = QComboBox()
        for profile, title in PROFILE_TITLES.items():
            self.profile.addItem(title, profile.value)
        _named(
            self.profile,
            "Memory profile",
            "How the model is held in memory; changing it reloads the model.",
        )
        self.prompt_cache_gb = QDoubleSpinBox()
        self.prompt_cache_gb.setRange(0.0, MAX_PROMPT_CACHE_GB)
        self.prompt_cache_gb.setDecimals(1)
        self.prompt_cache_gb.setSuffix(" GB")
        self.prompt_cache_gb.lineEdit().setAccessibleName("Cached prompts limit")
        _named(
            self.prompt_cache_gb,
            "Cached prompts limit",
            "Each chat's processed prompt is kept on disk so it reopens instantly; the least "
            "recently used are removed first. 0 keeps none.",
        )
        self.prompt_cache_used = QLabel()
        self.prompt_cache_used.setProperty("role", "secondary")
        self.clear_prompt_cache = QPushButton("Clear Cached Prompts")
        _named(self.clear_prompt_cache, "Clear cached prompts")
        cache_row = QHBoxLayout()
        cache_row.addWidget(self.prompt_cache_gb)
        cache_row.addWidget(self.prompt_cache_used, 1)
        cache_row.addWidget(self.clear_prompt_cache)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model_dir, 1)
        model_row.addWidget(self.choose_model)

        general = QFormLayout()
        general.addRow("Default reasoning effort:", self.effort)
        general.addRow("Temperature:", self.temperature)
        general.addRow("Custom instructions:", self.instructions)
        general.addRow("Answer length:", self.answer_length)
        general.addRow("", self.show_reasoning)
        general.addRow("", self.collapse)
        general.addRow("", self.export_reasoning)
        general.addRow("Appearance:", self.theme)
        general.addRow("Text size:", self.font_size)
        model = QFormLayout()
        model.addRow("Model folder:", model_row)
        model.addRow("Memory profile:", self.profile)
        model.addRow("Cached prompts:", cache_row)
        self.remote = RemoteSettings(store, engine, self)  # Settings › Model › Use a server
        model_page = QVBoxLayout()
        model_page.addLayout(model)
        model_page.addWidget(self.remote)
        # One page per subject, as a Mac's Settings window has: all of them in one column grew
        # taller than a laptop's screen.
        self.pages = QTabWidget()
        self.pages.setDocumentMode(True)
        _named(self.pages, "Settings sections")
        _named(self.pages.tabBar(), "Settings sections")
        self.pages.addTab(_page(general), "General")
        self.pages.addTab(_page(model_page), "Model")
        if library is not None:
            self.pages.addTab(_page(_alone(library)), "Library")
        status = engine.worker.tools.mcp_status if engine is not None else None
        self.tools = tools or ToolsSettings(store, server_status=status)
        self.pages.addTab(_page(_alone(self.tools)), "Tools")
        if server is not None:
            self.pages.addTab(_page(_alone(server)), "Server")
        note = QLabel("Changes apply at once.")
        note.setProperty("role", "secondary")
        layout = QVBoxLayout(self)
        layout.addWidget(self.pages)
        layout.addWidget(note, 0, Qt.AlignmentFlag.AlignRight)

        # Its full height: Qt first shows a window at most 2/3 of the screen tall, and squeezed
        # form rows overlap (the instructions box over Answer length).
        self.resize(self.sizeHint())
        self._show(store.settings)
        store.changed.connect(self._show)
        self.effort.currentIndexChanged.connect(
            lambda: store.update(reasoning_effort=ReasoningEffort(self.effort.currentData()))
        )
        self.temperature.valueChanged.connect(lambda v: store.update(temperature=float(v)))
        self.instructions.textChanged.connect(
            lambda: store.update(custom_instructions=self.instructions.toPlainText())
        )
        self.answer_length.currentIndexChanged.connect(
            lambda: store.update(answer_length=AnswerLength(self.answer_length.currentData()))
        )
        self.show_reasoning.toggled.connect(lambda on: store.update(show_reasoning=on))
        self.collapse.toggled.connect(lambda on: store.update(collapse_reasoning_when_done=on))
        self.export_reasoning.toggled.connect(
            lambda on: store.update(include_reasoning_in_exports=on)
        )
        self.theme.currentIndexChanged.connect(
            lambda: store.update(theme=Theme(self.theme.currentData()))
        )
        self.font_size.currentIndexChanged.connect(
            lambda: store.update(font_size=FontSize(self.font_size.currentData()))
        )
        self.profile.currentIndexChanged.connect(
            lambda: store.update(profile=Profile(self.profile.currentData()))
        )
        self.choose_model.clicked.connect(self._choose_model)
        self.prompt_cache_gb.valueChanged.connect(lambda v: store.update(prompt_cache_gb=float(v)))
        self.clear_prompt_cache.clicked.connect(self._clear_prompt_cache)
        if engine is not None:
            engine.prompt_cache_cleared.connect(self._prompt_cache_cleared)
            engine.model_requested.connect(lambda _path: self._show_model_folder())
        self._show_prompt_cache_use()

    def show_page(self, title: str) -> None:
        """Brings the page named `title` ("General", "Model", "Tools"...) forward."""
        for i in range(self.pages.count()):
            if self.pages.tabText(i) == title:
                self.pages.setCurrentIndex(i)
                return
        raise KeyError(title)

    @Slot(object)
    def _show(self, settings: Settings) -> None:
        controls: list[QWidget] = [
            self.effort,
            self.temperature,
            self.instructions,
            self.answer_length,
            self.show_reasoning,
            self.collapse,
            self.export_reasoning,
            self.theme,
            self.font_size,
            self.profile,
            self.prompt_cache_gb,
        ]
        for control in controls:
            control.blockSignals(True)  # showing a value must not write it back
        try:
            self.effort.setCurrentIndex(self.effort.findData(settings.reasoning_effort.value))
            self.temperature.setValue(settings.temperature)
            if self.instructions.toPlainText() != settings.custom_instructions:
                self.instructions.setPlainText(settings.custom_instructions)  # keeps the cursor
            self.answer_length.setCurrentIndex(
                self.answer_length.findData(settings.answer_length.value)
            )
            self.show_reasoning.setChecked(settings.show_reasoning)
            self.collapse.setChecked(settings.collapse_reasoning_when_done)
            self.export_reasoning.setChecked(settings.include_reasoning_in_exports)
            self.theme.setCurrentIndex(self.theme.findData(settings.theme.value))
            self.font_size.setCurrentIndex(self.font_size.findData(settings.font_size.value))
            self.profile.setCurrentIndex(self.profile.findData(settings.profile.value))
            self._show_model_folder(settings)
            self.prompt_cache_gb.setValue(settings.prompt_cache_gb)
        finally:
            for control in controls:
                control.blockSignals(False)

    def _show_model_folder(self, settings: Settings | None = None) -> None:
        """The folder in use (or loading), which `--model` may have given for this run only;
        else the one chosen in Settings."""
        chosen = (settings or self._store.settings).model_dir
        in_use = self._engine.model_path if self._engine is not None else ""
        self.model_dir.setText(in_use or chosen)

    @Slot()
    def _choose_model(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Choose the model folder", self._store.settings.model_dir
        )
        if folder:
            self._store.update(model_dir=folder)

    def _show_prompt_cache_use(self, note: str = "") -> None:
        folder = self._engine.prompt_cache_dir if self._engine is not None else None
        used = prompt_cache_folder_bytes(folder) if folder is not None else 0
        self.prompt_cache_used.setText(note or f"{_megabytes(used)} in use")
        self.clear_prompt_cache.setEnabled(folder is not None and used > 0)

    @Slot()
    def _clear_prompt_cache(self) -> None:
        if self._engine is not None:
            self.clear_prompt_cache.setEnabled(False)
            self._engine.clear_prompt_cache()

    @Slot(object)
    def _prompt_cache_cleared(self, freed: int) -> None:
        self._show_prompt_cache_use(f"Cleared {_megabytes(freed)}")
