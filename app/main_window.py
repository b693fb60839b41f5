"""The main window: sidebar | conversation + composer, the menus, the banner, drops, export,
the Settings and About windows, the appearance, and the window's saved state.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt, Slot
from PySide6.QtGui import (
    QCloseEvent,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QFont,
    QGuiApplication,
    QResizeEvent,
)
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app import messages, resources
from app.announce import announce_turn
from app.app_server import AppServer
from app.application import apply_theme, is_dark
from app.attachments import AttachmentList, AttachmentTray
from app.banner import BannerArea
from app.chat_controller import ChatController
from app.chat_instructions import ChatInstructionsEditor
from app.chat_view import READING_WIDTH, ChatView
from app.composer import Composer, local_files
from app.engine_client import EngineClient
from app.export_files import ExportFormat, documents_folder, export_file_name
from app.handover import APP_NAME
from app.history import HistoryError, HistoryStore, export_json, export_markdown, write_atomically
from app.library_folders import folders_page
from app.library_indexer import LibraryIndexer
from app.menus import ShortcutsDialog, build_dock_menu, build_menus, shortcut_rows
from app.server_settings import ServerSettings
from app.settings import FONT_SCALE, Settings, SettingsStore, with_recent
from app.settings_dialog import SettingsDialog
from app.sidebar import Sidebar
from engine import DOCUMENT_SUFFIXES

log = logging.getLogger(__name__)

DEFAULT_SIZE = (1100, 760)
# Below this the composer's toolbar and a few lines of conversation no longer fit.
MINIMUM_SIZE = (700, 440)


class MainWindow(QMainWindow):
    def __init__(
        self,
        *,
        settings: SettingsStore,
        store: HistoryStore,
        engine: EngineClient,
        profile_override: str | None = None,
        parent: QWidget | None = None,
        library: LibraryIndexer | None = None,
    ) -> None:
        super().__init__(parent)
        self.library = library  # background indexing; its folders are a Settings section
        self.app_server: AppServer | None = None  # Settings › Server; launch.py sets it
        self.setWindowTitle(APP_NAME)
        self.setAcceptDrops(True)
        self.setMinimumSize(*MINIMUM_SIZE)
        self.settings, self.store, self.engine = settings, store, engine
        self._profile_override = profile_override
        self._applied = settings.settings
        self._model_path = ""
        self.attachments = AttachmentList(engine, self)
        self.sidebar = Sidebar()
        self.view = ChatView()
        self.banners = BannerArea()
        self.composer = Composer(AttachmentTray(self.attachments))
        right = QWidget()
        column = QVBoxLayout(right)
        column.setContentsMargins(0, 0, 0, 8)
        column.addWidget(self.banners)
        column.addWidget(self.view, 1)
        # The composer lines up with the conversation's reading column (chat_view.READING_WIDTH).
        self.composer.setMaximumWidth(READING_WIDTH)
        row = QHBoxLayout()
        row.setContentsMargins(8, 0, 8, 0)
        row.addStretch(1)
        row.addWidget(self.composer, 1000)  # all the width up to its maximum, then centred
        row.addStretch(1)
        column.addLayout(row)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.sidebar)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([260, DEFAULT_SIZE[0] - 260])
        self.setCentralWidget(self.splitter)
        self.controller = ChatController(
            store=store,
            engine=engine,
            settings=settings,
            view=self.view,
            composer=self.composer,
            sidebar=self.sidebar,
            attachments=self.attachments,
            parent=self,
        )
        self.menu_actions = build_menus(self)
        self.dock_menu = build_dock_menu(self.menu_actions, self)
        self._base_font = QFont(self.view.font())
        self._connect_actions()
        self.chat_instructions = ChatInstructionsEditor(
            store, settings, self.menu_actions.chat_instructions, self._conversation_id, self
        )
        self.attachments.changed.connect(self._remember_documents)
        self.controller.conversation_changed.connect(self._update_title)
        self.sidebar.conversations_shown.connect(self._update_title)
        self.engine.model_loaded.connect(self._update_title)
        self.engine.model_loaded.connect(self.composer.set_model)
        self.engine.model_loaded.connect(
            lambda m: self.view.set_answered_on(getattr(m, "host", ""))
        )
        self.sidebar.delete_requested.connect(self.confirm_delete)
        self.sidebar.hit_opened.connect(self.view.show_hit)
        self.controller.turn_completed.connect(lambda result: announce_turn(self, result))
        self.controller.setup_requested.connect(self.choose_model)
        self.composer.attach_requested.connect(self.choose_attachments)
        self.controller.busy_changed.connect(self._busy_changed)
        self.controller.effort_changed.connect(self._effort_changed)
        settings.changed.connect(self._settings_changed)
        QGuiApplication.styleHints().colorSchemeChanged.connect(self._scheme_changed)
        messages.bridge().attach(self.banners.show_message)
        messages.bridge().topic_withdrawn.connect(self.banners.withdraw)
        self._settings_dialog: SettingsDialog | None = None
        self._restore_state(settings.settings)
        self._apply_view_settings(settings.settings)
        self._scheme_changed()
        self._busy_changed(False)
        self._effort_changed(self.controller.effort)
        self.controller.refresh_sidebar()

    # -- model ---------------------------------------------------------------------------

    def load_model(self, path: str) -> None:
        self._model_path = path
        profile = self._profile_override or self.settings.settings.profile.value
        self.controller.model_loading()
        self.engine.cancel()
        self.engine.load(path, profile)

    @Slot()
    def choose_model(self) -> None:
        """The first-run setup (download or pick a folder); a plain folder picker without it."""
        try:
            from app.model_setup import ModelSetupDialog
        except ImportError:
            folder = QFileDialog.getExistingDirectory(self, "Choose the gpt-oss model folder")
            if folder:
                self.settings.update(model_dir=folder)
            return
        dialog = ModelSetupDialog(self)
        dialog.model_chosen.connect(
            lambda folder: self.settings.update(
                model_dir=folder, oversized_model_dir=folder if dialog.fit_overridden else ""
            )
        )
        dialog.server_requested.connect(self.show_model_settings)
        dialog.open()

    # -- files ---------------------------------------------------------------------------

    @Slot(list)
    def open_files(self, paths: list[str]) -> None:
        """Documents from a drop, the Dock icon, Open With or a second launch."""
        self.attachments.add_paths(paths)
        self.bring_to_front()

    @Slot()
    def bring_to_front(self) -> None:
        if self.isMinimized():
            self.showNormal()
        self.raise_()
        self.activateWindow()

    @Slot()
    def choose_attachments(self) -> None:
        patterns = " ".join(f"*{s}" for s in sorted(DOCUMENT_SUFFIXES))
        paths, _ = QFileDialog.getOpenFileNames(
            self, "Attach Documents", "", f"Documents ({patterns});;All files (*)"
        )
        if paths:
            self.attachments.add_paths(paths)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if local_files(event.mimeData()):
            event.acceptProposedAction()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if local_files(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        files = local_files(event.mimeData())
        if files:
            event.acceptProposedAction()
            self.attachments.add_paths(files)

    # -- conversations -------------------------------------------------------------------

    @Slot(int)
    def confirm_delete(self, conversation_id: int) -> None:
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        try:
            title = self.store.get_conversation(conversation_id)[0].title
        except (HistoryError, KeyError):
            title = ""
        box.setText(f"Delete “{title}”?" if title else "Delete this chat?")
        box.setInformativeText("Its messages and attachments are removed from this Mac.")
        box.setStandardButtons(QMessageBox.StandardButton.Cancel)
        delete = box.addButton("Delete", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)

        def finished(_result: int) -> None:
            if box.clickedButton() is delete:
                self.controller.delete_conversation(conversation_id)

        box.finished.connect(finished)
        box.open()  # sheet-like and non-blocking

    def export_conversation(self, path: Path, fmt: ExportFormat) -> bool:
        if self.controller.conversation_id is None:
            messages.info("There is no chat to export yet.")
            return False
        include = self.settings.settings.include_reasoning_in_exports
        try:
            summary, stored = self.store.get_conversation(self.controller.conversation_id)
            render = export_json if fmt == "json" else export_markdown
            write_atomically(path, render(summary, stored, include_reasoning=include))
        except (HistoryError, KeyError) as e:
            messages.error(str(e), details=getattr(e, "details", None) or None)
            return False
        messages.info(f"Exported to {path}.")
        return True

    @Slot()
    def choose_export(self) -> None:
        if self.controller.conversation_id is None:
            messages.info("There is no chat to export yet.")
            return
        suggested = documents_folder() / export_file_name(self._chat_title() or "Chat")
        path, chosen = QFileDialog.getSaveFileName(
            self, "Export Chat", str(suggested), "Markdown (*.md);;JSON, lossless (*.json)"
        )
        if path:
            fmt: ExportFormat = (
                "json" if "json" in chosen.lower() or path.endswith(".json") else "markdown"
            )
            self.export_conversation(Path(path), fmt)

    # -- windows -------------------------------------------------------------------------

    @Slot()
    def show_settings(self) -> None:
        if self._settings_dialog is None:
            server = ServerSettings(self.settings, self.app_server) if self.app_server else None
            self._settings_dialog = SettingsDialog(
                self.settings,
                self,
                engine=self.engine,
                library=folders_page(self.library),
                server=server,
            )
        self._settings_dialog.show()
        self._settings_dialog.raise_()
        self._settings_dialog.activateWindow()

    @Slot()
    def show_model_settings(self) -> None:
        """Settings › Model, where a server can run what this Mac cannot (from the setup)."""
        self.show_settings()
        assert self._settings_dialog is not None
        self._settings_dialog.show_page("Model")

    @Slot()
    def show_shortcuts(self) -> None:
        dialog = ShortcutsDialog(shortcut_rows(self.menu_actions), self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    @Slot()
    def show_about(self) -> None:
        from app.about_dialog import AboutDialog

        model = self.engine.model
        rows = model.diagnostics() if model else {"Model": "not loaded"}
        rows["History"] = str(self.store.path)
        dialog = AboutDialog(rows, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.composer.set_window_height(self.height())

    def closeEvent(self, event: QCloseEvent) -> None:
        self.settings.update(
            window_geometry=bytes(self.saveGeometry().toBase64().data()).decode(),
            window_state=bytes(self.saveState().toBase64().data()).decode(),
            splitter_state=bytes(self.splitter.saveState().toBase64().data()).decode(),
        )
        messages.bridge().detach(self.banners.show_message)
        messages.bridge().topic_withdrawn.disconnect(self.banners.withdraw)
        super().closeEvent(event)

    # -- wiring --------------------------------------------------------------------------

    def _connect_actions(self) -> None:
        a = self.menu_actions
        a.new_chat.triggered.connect(self.controller.new_chat)
        a.attach.triggered.connect(self.choose_attachments)
        a.choose_model.triggered.connect(self.choose_model)
        a.export.triggered.connect(self.choose_export)
        a.settings.triggered.connect(self.show_settings)
        a.quit.triggered.connect(QApplication.closeAllWindows)
        a.about.triggered.connect(self.show_about)
        for name in ("undo", "redo", "cut", "copy", "paste"):
            getattr(a, name).triggered.connect(lambda _=False, n=name: self._edit(n))
        a.select_all.triggered.connect(lambda: self._edit("selectAll"))
        a.search.triggered.connect(self._search)
        a.show_reasoning.toggled.connect(lambda on: self.settings.update(show_reasoning=on))
        a.show_sidebar.toggled.connect(lambda on: self.settings.update(show_sidebar=on))
        a.stop.triggered.connect(self.controller.stop)
        a.finish_now.triggered.connect(self.composer.finish_now)
        self.composer.finish_requested.connect(self.engine.finish_now)
        self.composer.finish_available.connect(a.finish_now.setEnabled)
        self.engine.turn_progressed.connect(self.composer.follow_turn)
        a.regenerate.triggered.connect(self.controller.regenerate)
        a.edit_last.triggered.connect(self.controller.edit_last)
        for value, action in a.effort.items():
            action.triggered.connect(lambda _=False, v=value: self.controller.set_effort(v))
        a.minimize.triggered.connect(self.showMinimized)
        a.zoom.triggered.connect(
            lambda: self.showNormal() if self.isMaximized() else self.showMaximized()
        )
        a.shortcuts_help.triggered.connect(self.show_shortcuts)
        a.open_recent.aboutToShow.connect(self._fill_open_recent)
        self._fill_open_recent()  # so a Mac menu bar knows whether the item is enabled

    def _conversation_id(self) -> int | None:
        return self.controller.conversation_id

    def _chat_title(self) -> str:
        chat = self.controller.conversation_id
        if chat is None:
            return ""
        title = self.sidebar.title_of(chat)
        if title is None:  # not listed while the sidebar shows search hits
            try:
                title = self.store.get_conversation(chat)[0].title
            except (HistoryError, KeyError):
                title = ""
        return title

    @Slot()
    def _update_title(self) -> None:
        title = self._chat_title()
        parts = [title] if title else []
        if self.engine.model is not None and self.engine.model.is_demo:
            parts.append(self.engine.model.name)  # never mistaken for gpt-oss
        # Ending with the app's name keeps Qt from appending it a second time on Linux.
        self.setWindowTitle(" — ".join([*parts, APP_NAME]))

    @Slot()
    def _remember_documents(self) -> None:
        """Documents that were read (not the ones that failed) go to File › Open Recent."""
        recent = self.settings.settings.recent_documents
        for item in self.attachments.items():
            if item.state != "reading":
                recent = with_recent(recent, str(item.path))
        self.settings.update(recent_documents=recent)

    @Slot()
    def _fill_open_recent(self) -> None:
        menu = self.menu_actions.open_recent
        menu.clear()
        present = [p for p in self.settings.settings.recent_documents if Path(p).is_file()]
        for path in present:
            action = menu.addAction(Path(path).name)
            action.setToolTip(path)
            action.triggered.connect(lambda _=False, p=path: self.attachments.add_paths([p]))
        if present:
            menu.addSeparator()
            menu.addAction("Clear Menu", lambda: self.settings.update(recent_documents=()))
        menu.setEnabled(bool(present))

    def _edit(self, command: str) -> None:
        widget = QApplication.focusWidget()
        if isinstance(widget, QLabel):
            if command == "copy" and widget.hasSelectedText():
                QGuiApplication.clipboard().setText(widget.selectedText())
            return
        method = getattr(widget, command, None)
        if callable(method):
            method()

    def _search(self) -> None:
        self.settings.update(show_sidebar=True)
        self.sidebar.focus_search()

    @Slot(bool)
    def _busy_changed(self, busy: bool) -> None:
        self.composer.set_busy(busy)
        self.menu_actions.stop.setEnabled(busy)
        self.menu_actions.regenerate.setEnabled(not busy)
        self.menu_actions.edit_last.setEnabled(not busy)

    @Slot(str)
    def _effort_changed(self, effort: str) -> None:
        self.menu_actions.effort[effort].setChecked(True)

    @Slot(object)
    def _settings_changed(self, new: Settings) -> None:
        old, self._applied = self._applied, new
        self._apply_view_settings(new)
        if new.recent_documents != old.recent_documents:
            self._fill_open_recent()  # its enabled state must be right before it is opened
        if new.theme != old.theme:
            self._scheme_changed()
        if new.model_dir != old.model_dir and new.model_dir:
            self.load_model(new.model_dir)
        elif new.profile != old.profile and self._model_path and not self._profile_override:
            self.load_model(self._model_path)

    def _apply_view_settings(self, settings: Settings) -> None:
        # A style sheet, not setFont: under the app's style sheet a parent's font does not
        # reach widgets that were already polished. Default leaves the system size alone.
        scale = FONT_SCALE[settings.font_size]
        size = f"* {{ font-size: {self._base_font.pointSizeF() * scale:.1f}pt; }}"
        self.view.setStyleSheet(size if scale != 1.0 else "")
        self.view.set_reasoning_visible(settings.show_reasoning)
        self.sidebar.setVisible(settings.show_sidebar)
        for action, on in (
            (self.menu_actions.show_reasoning, settings.show_reasoning),
            (self.menu_actions.show_sidebar, settings.show_sidebar),
        ):
            action.blockSignals(True)
            action.setChecked(on)
            action.blockSignals(False)

    @Slot()
    def _scheme_changed(self) -> None:
        app = QApplication.instance()
        theme = self.settings.settings.theme
        dark = apply_theme(app, theme) if isinstance(app, QApplication) else is_dark(theme)
        self.view.set_dark(dark)
        self.recolor_icons()

    def recolor_icons(self) -> None:
        """Line icons take the text colour when drawn: draw them again in the new one (black
        icons on a dark window were hard to see)."""
        for button in self.findChildren(QAbstractButton):
            name = button.property("icon_name")
            if isinstance(name, str) and name:
                button.setIcon(resources.icon(name))

    def _restore_state(self, settings: Settings) -> None:
        if not (
            settings.window_geometry
            and self.restoreGeometry(QByteArray.fromBase64(settings.window_geometry.encode()))
        ):
            self.resize(*DEFAULT_SIZE)
        if settings.window_state:
            self.restoreState(QByteArray.fromBase64(settings.window_state.encode()))
        if settings.splitter_state:
            self.splitter.restoreState(QByteArray.fromBase64(settings.splitter_state.encode()))
