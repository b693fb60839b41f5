"""`oss-desk`: starts the app, or hands its files to the one already running.

    oss-desk [--model DIR] [--data-dir DIR] [--profile auto|full|16gb|compact] [FILE ...]

--model skips the first-run setup (for this run); --data-dir keeps history and settings in DIR
instead of the user's (tests, screenshots); FILEs are attached to the next message.

Start-up order (issue 15): Qt and the single-instance check first, so a second launch hands its
files over at once; then the window (app/launch.py); MLX and the model load later, on the engine
thread.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from app import startup_trace
from app.arguments import parse_args
from app.handover import default_data_folder, folder_app_id, hand_over, server_name

log = logging.getLogger("app")


def _excepthook(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, tb)
        return
    log.critical("unexpected error", exc_info=(kind, error, tb))
    from PySide6.QtWidgets import QMessageBox

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
    app_id = folder_app_id("oss-desk", args.data_dir or default_data_folder())
    if hand_over(server_name(app_id), [str(Path(f).resolve()) for f in args.files]):
        startup_trace.mark("handed_over")  # before Qt is even imported
        return 0
    from app.application import Application
    from app.single_instance import SingleInstance

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = Application([sys.argv[0], *qt_args])
    # One instance per data folder: a --data-dir run (tests, screenshots) is its own app.
    instance = SingleInstance(app_id, app)
    if not instance.is_primary():  # started meanwhile, or listening where we did not look
        instance.send_files([str(Path(f).resolve()) for f in args.files])
        startup_trace.mark("handed_over")
        return 0
    app.aboutToQuit.connect(instance.close)  # first: a launch from now on must not wait on us
    sys.excepthook = _excepthook
    from PySide6.QtWidgets import QMessageBox

    from app.history import HistoryError
    from app.launch import build, start

    try:
        window = build(args)
    except HistoryError as e:  # the one fatal case: without history there is no app
        log.error("%s", e)
        QMessageBox.critical(None, "OSS Desk", str(e))
        return 1
    instance.files_received.connect(window.open_files)
    instance.activation_requested.connect(window.bring_to_front)
    start(window, args)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
