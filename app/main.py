"""`oss-desk`: the composition root (convention 17). It builds, in order, the settings, the
history, the engine thread and the main window, and passes each its dependencies.

    oss-desk [--model DIR] [--data-dir DIR] [--profile auto|full|16gb|compact] [FILE ...]

--model skips the first-run setup (for this run); --data-dir keeps history and settings in DIR
instead of the user's (tests, screenshots); FILEs are attached to the next message.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QMessageBox

from app import resources
from app.application import Application
from app.engine_client import EngineClient
from app.engine_worker import EngineWorker, Loader, SessionFactory, load_engine
from app.history import HistoryError, HistoryStore, move_aside
from app.history.store import default_folder
from app.main_window import MainWindow
from app.settings import Profile, SettingsStore
from app.sidebar import BackgroundSearch
from engine import default_prompt_cache_folder

log = logging.getLogger("app")

HISTORY_FILE = "history.sqlite3"
SETTINGS_FILE = "settings.ini"
PROMPT_CACHE_DIR = "prompts"  # each chat's KV cache, under --data-dir (else the user's cache)
INSTRUCTIONS = "prompts/developer.md"
# How long a launch waits for an OSS Desk that is still quitting to let go of the history: longer
# than that one's engine thread may take to stop (engine_client.SHUTDOWN_WAIT_MS, 10 s).
HISTORY_WAIT_S = 15.0


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """Our options, and the rest for Qt (e.g. -platform, -style)."""
    p = argparse.ArgumentParser(prog="oss-desk", description="Chat with gpt-oss on this Mac.")
    p.add_argument("--model", help="model folder (config.json, safetensors, tokenizer)")
    p.add_argument("--data-dir", help="keep history and settings in this folder")
    p.add_argument("--profile", choices=[p.value for p in Profile], help="memory profile")
    p.add_argument("files", nargs="*", help="documents to attach")
    return p.parse_known_args(list(argv))


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
    worker = EngineWorker(
        history_path=store.path,
        loader=loader,
        session_factory=session_factory,
        instructions=instructions,
        prompt_cache_dir=data_dir / PROMPT_CACHE_DIR if data_dir else default_prompt_cache_folder(),
        prompt_cache_bytes=_gigabytes(settings.settings.prompt_cache_gb),
        library_path=Path(store.path).parent / "library.sqlite3",  # beside the history database
    )
    engine = EngineClient(worker)
    settings.changed.connect(
        lambda new: engine.set_prompt_cache_limit(_gigabytes(new.prompt_cache_gb))
    )
    window = MainWindow(
        settings=settings, store=store, engine=engine, profile_override=args.profile
    )
    search = BackgroundSearch(store.path)
    window.sidebar.use_background_search(search)
    app = QApplication.instance()

    def release() -> None:
        window.attachments.shutdown()  # kill document readers first: quitting never waits
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
    if args.files:
        window.open_files([str(Path(f).expanduser().resolve()) for f in args.files])
    model = args.model or window.settings.settings.model_dir
    if model:
        window.load_model(str(Path(model).expanduser()))
    else:
        window.choose_model()


def _excepthook(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, tb)
        return
    log.critical("unexpected error", exc_info=(kind, error, tb))
    box = QMessageBox(
        QMessageBox.Icon.Critical,
        "OSS Desk",
        "Something went wrong inside OSS Desk. Your conversations are saved. "
        "Please report this with the details.",
    )
    box.setDetailedText("".join(traceback.format_exception(kind, error, tb)))
    box.exec()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--self-test" in argv:
        from app.self_test import main as self_test

        return self_test(argv)
    args, qt_args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = Application([sys.argv[0], *qt_args])
    try:
        from app.single_instance import SingleInstance, folder_app_id
    except ImportError:
        instance = None
    else:
        # One instance per data folder: a --data-dir run (tests, screenshots) is its own app.
        instance = SingleInstance(folder_app_id("oss-desk", args.data_dir or default_folder()), app)
        if not instance.is_primary():
            instance.send_files([str(Path(f).resolve()) for f in args.files])
            return 0
        app.aboutToQuit.connect(instance.close)  # first: a launch from now on must not wait on us
    sys.excepthook = _excepthook
    try:
        window = build(args)
    except HistoryError as e:  # the one fatal case: without history there is no app
        log.error("%s", e)
        QMessageBox.critical(None, "OSS Desk", str(e))
        return 1
    if instance is not None:
        instance.files_received.connect(window.open_files)
        instance.activation_requested.connect(window.bring_to_front)
    start(window, args)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
