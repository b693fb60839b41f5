"""Launches the real OSS Desk (app.main.main, offscreen) and reports what happens as JSON lines
on stdout, for tests that need several real launches on one data folder.

    python -m tests.app.history.launch_driver ROLE [oss-desk options ...]

ROLE:
  stay          run until stdin closes, then quit
  once          quit as soon as the window is shown
  quit-slowly   quit as soon as the window is shown, while the engine thread is still busy (a
                model load standing in for a long document read) until stdin closes, so
                quitting takes that long and the history stays locked meanwhile

Events: {"event": "started", "default_folder": ...}, "building" (this launch is the first
instance and opens the history), "window", "activated", "files" (with "paths"), "quitting" (it
stopped listening for other launches), "message" (a modal box, with its "text", accepted at once
since nobody can click offscreen), "exited" (with "code").
OSS_DESK_HISTORY_WAIT_S overrides how long a launch waits for the history.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from PySide6.QtCore import QSocketNotifier, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

import app.launch as app_launch
import app.main as app_main
from app.handover import default_data_folder
from engine import ModelLoadError

_keep: list[Any] = []  # timers and notifiers live as long as the app


def say(event: str, **facts: object) -> None:
    print(json.dumps({"event": event, "t": time.time(), **facts}), flush=True)


def _accept_boxes() -> None:
    for widget in QApplication.topLevelWidgets():
        if isinstance(widget, QMessageBox) and widget.isVisible():
            say("message", text=widget.text())
            widget.accept()


def _slow_loader(path: str, profile: str, progress: Any) -> Any:
    sys.stdin.read()  # until the test lets go
    raise ModelLoadError(f"{path}: a stand-in load that only takes time")


def main() -> int:
    role, argv = sys.argv[1], sys.argv[2:]
    if "OSS_DESK_HISTORY_WAIT_S" in os.environ:
        app_launch.HISTORY_WAIT_S = float(os.environ["OSS_DESK_HISTORY_WAIT_S"])
    real_build, real_start = app_launch.build, app_launch.start

    def build(args: Any, **kwargs: Any) -> Any:
        say("building")
        app = QApplication.instance()
        assert app is not None
        boxes = QTimer()
        boxes.timeout.connect(_accept_boxes)
        boxes.start(50)
        _keep.append(boxes)
        # Connected before build() connects its own clean-up, after main() connected the single
        # instance's close(): printed once this launch has stopped listening.
        app.aboutToQuit.connect(lambda: say("quitting"))
        if role == "quit-slowly":
            kwargs["loader"] = _slow_loader
        window = real_build(args, **kwargs)
        bring_to_front, open_files = window.bring_to_front, window.open_files

        def activated() -> None:
            say("activated")
            bring_to_front()

        def files(paths: list[str]) -> None:
            say("files", paths=paths)
            open_files(paths)

        # main() connects the single instance's signals to these after build() returns.
        window.bring_to_front, window.open_files = activated, files  # type: ignore[method-assign]
        return window

    def start(window: Any, args: Any) -> None:
        real_start(window, args)
        say("window", visible=window.isVisible())
        app = QApplication.instance()
        assert app is not None
        if role in ("once", "quit-slowly"):
            QTimer.singleShot(100, app.quit)
        elif role == "stay":
            notifier = QSocketNotifier(sys.stdin.fileno(), QSocketNotifier.Type.Read)
            notifier.activated.connect(lambda: os.read(sys.stdin.fileno(), 1024) or app.quit())
            _keep.append(notifier)

    app_launch.build, app_launch.start = build, start  # main() imports them when it needs them
    say("started", default_folder=str(default_data_folder()))
    code = app_main.main(argv)
    say("exited", code=code)
    return code


if __name__ == "__main__":
    sys.exit(main())
