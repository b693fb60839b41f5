"""The composition root (convention 17): builds, in order, the settings, the history, the engine
thread and the main window, passing each its dependencies; then shows the window and starts
loading the model. Imported by app/main.py only once this process is the one that shows a window
(a second launch hands its files over without it).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QMessageBox

from app import resources, startup_trace
from app.app_server import AppServer
from app.application import Application
from app.engine_client import EngineClient
from app.engine_requests import Loader, SessionFactory
from app.engine_worker import EngineWorker, chat_sessions, load_engine
from app.history import HistoryError, HistoryStore, move_aside
from app.library_indexer import LibraryIndexer
from app.main_window import MainWindow
from app.remote_backend import remote_loader, remote_sessions, uses_server
from app.settings import SettingsStore
from app.sidebar import BackgroundSearch
from app.tool_approval import install_approvals
from engine import default_prompt_cache_folder

log = logging.getLogger("app")

HISTORY_FILE = "history.sqlite3"
SETTINGS_FILE = "settings.ini"
PROMPT_CACHE_DIR = "prompts"  # each chat's KV cache, under --data-dir (else the user's cache)
INSTRUCTIONS = "prompts/developer.md"
# How long a launch waits for an OSS Desk that is still quitting to let go of the history: longer
# than that one's engine thread may take to stop (engine_client.SHUTDOWN_WAIT_MS, 10 s).
HISTORY_WAIT_S = 15.0
# The window's thread shares the interpreter lock with the engine and indexing threads. Every Qt
# callback into Python (a paint, a layout pass, a slot) waits for the lock; with the default 5 ms
# switch interval, a busy Python thread (indexing a large document) made each wait up to 5 ms and a
# relayout of the attachment tray ~100 ms. At 1 ms the window keeps its pace (measured in
# tests/app/test_attachments_hostile.py: gaps of 90-150 ms became 20-35 ms).
SWITCH_INTERVAL_S = 0.001


def open_history(path: Path | None) -> HistoryStore:
    """The history store; a damaged or too-new file is the one fatal case that asks (modal)."""
    try:
        if path:
            return HistoryStore(path, wait_s=HISTORY_WAIT_S)
        return HistoryStore.default(wait_s=HISTORY_WAIT_S)
    except HistoryError as e:
        if e.kind not in ("corrupt", "newer"):
            raise
        answer = QMessageBox.critical(
            None,
            "OSS Desk",
            f"{e}\n\nStart with an empty history? The old file is kept next to it.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
        )
        if answer != QMessageBox.StandardButton.Yes:
            raise
        moved = move_aside(e.path)
        log.warning("moved the damaged history to %s", moved)
        return HistoryStore(e.path)


def build(
    args: argparse.Namespace,
    *,
    loader: Loader = load_engine,
    session_factory: SessionFactory | None = None,
) -> MainWindow:
    """Settings -> history -> engine thread -> window. Needs the QApplication to exist."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    data_dir = Path(args.data_dir).expanduser() if args.data_dir else None
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        settings = SettingsStore.in_file(data_dir / SETTINGS_FILE)
    else:
        settings = SettingsStore(QSettings())
    store = open_history(data_dir / HISTORY_FILE if data_dir else None)
    try:
        instructions: str | None = resources.read_text(INSTRUCTIONS)
    except FileNotFoundError:
        instructions = None
    if loader is load_engine:
        loader = _loader_honouring_overrides(settings)
    # Settings › Model › Use a server: loading then probes the server (app/remote_backend.py).
    loader = remote_loader(lambda: settings.settings, loader)
    session_factory = remote_sessions(session_factory or chat_sessions(instructions), instructions)
    indexer = LibraryIndexer(Path(store.path).parent / "library.sqlite3")
    worker = EngineWorker(
        history_path=store.path,
        loader=loader,
        session_factory=session_factory,
        instructions=instructions,
        prompt_cache_dir=data_dir / PROMPT_CACHE_DIR if data_dir else default_prompt_cache_folder(),
        prompt_cache_bytes=_gigabytes(settings.settings.prompt_cache_gb),
        library_path=Path(store.path).parent / "library.sqlite3",  # beside the history database
        index_jobs=indexer.jobs,
        tools_choice=lambda: settings.settings,  # Settings › Tools, read when a turn starts
    )
    engine = EngineClient(worker)
    settings.changed.connect(
        lambda new: engine.set_prompt_cache_limit(_gigabytes(new.prompt_cache_gb))
    )
    window = MainWindow(
        settings=settings,
        store=store,
        engine=engine,
        profile_override=args.profile,
        library=indexer,
    )
    indexer.connect_window(window)
    install_approvals(worker.tools, window, settings)  # the approval sheet (app/tool_approval.py)
    window.app_server = AppServer(settings, engine, Path(store.path).parent, parent=window)
    search = BackgroundSearch(store.path)
    window.sidebar.use_background_search(search)
    app = QApplication.instance()

    def release() -> None:
        window.attachments.shutdown()  # kill document readers first: quitting never waits
        if window.app_server is not None:  # before the engine: it cancels what it serves
            window.app_server.stop()
        indexer.shutdown()
        search.close()
        engine.shutdown()
        store.close()

    if app is not None:
        app.aboutToQuit.connect(release)
    if isinstance(app, Application):
        app.deliver_files_to(window.open_files)
    return window


def _gigabytes(gb: float) -> int:
    return int(gb * 1e9)


def _loader_honouring_overrides(settings: SettingsStore) -> Loader:
    """load_engine, loading a model that does not fit when the user chose that folder anyway."""

    def load(path: str, profile: str, progress: Callable[[int, int], None]) -> Any:
        # Runs on the engine thread: reading the frozen Settings the store holds is safe there.
        chosen = settings.settings.oversized_model_dir
        anyway = bool(chosen) and os.path.realpath(chosen) == os.path.realpath(path)
        return load_engine(path, profile, progress, allow_oversized=anyway)

    return load


def start(window: MainWindow, args: argparse.Namespace) -> None:
    window.show()
    window.composer.input.setFocus()
    # Paint the window before the engine thread starts importing MLX and loading the model:
    # those hold the interpreter for seconds, and the window is what says the app started.
    QApplication.processEvents()
    startup_trace.mark("window_shown")
    window.engine.model_loaded.connect(lambda _info: startup_trace.mark("model_ready"))
    if args.files:
        window.open_files([str(Path(f).expanduser().resolve()) for f in args.files])
    model = args.model or window.settings.settings.model_dir
    if model or uses_server(window.settings.settings):
        window.load_model(str(Path(model).expanduser()) if model else "")
    else:
        window.choose_model()
