"""The real window on a scripted model, driven as a user would, and captured.

`Stage` builds the app exactly as `oss-desk --data-dir` does (app.launch.build: settings,
history, engine thread, window) with one change: every chat session samples from a scripted
sampler, so the words are chosen in advance while the model, KV cache, harmony parser, browser
tool and streaming all run for real.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlx.core as mx
from PySide6.QtCore import QEventLoop, Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

from app.application import Application
from app.launch import build
from app.main_window import MainWindow
from app.settings import SettingsStore, Theme
from app.turn_stream import TurnResult
from engine import ChatSession, HarmonyTokenizer, Message
from engine.testing.scripted import ScriptedSampler, reply_ids

SIZE = (1280, 800)
SIDEBAR_WIDTH = 300
TIMEOUT_S = 180.0

# What a dark system supplies (macOS's dark appearance, roughly): the app's dark.qss styles its
# own surfaces and takes the rest, palette(base) and friends, from the system palette.
DARK_PALETTE = {
    "Window": "#262626",
    "WindowText": "#E5E5EA",
    "Base": "#1E1E1E",
    "AlternateBase": "#2C2C2E",
    "Text": "#E5E5EA",
    "Button": "#3A3A3C",
    "ButtonText": "#E5E5EA",
    "BrightText": "#FFFFFF",
    "Highlight": "#0A84FF",
    "HighlightedText": "#FFFFFF",
    "PlaceholderText": "#8E8E93",
    "Link": "#4DA3FF",
    "ToolTipBase": "#3A3A3C",
    "ToolTipText": "#E5E5EA",
    "Light": "#4A4A4C",
    "Midlight": "#3A3A3C",
    "Mid": "#2C2C2E",
    "Dark": "#111111",
    "Shadow": "#000000",
}


class RefillingSampler(ScriptedSampler):
    """A scripted sampler that, when its script runs out, asks `refill` for more: a scene can
    choose its next tokens from what the model was just shown (a browser tool's page), as a
    model does. Runs on the engine thread, like the session that calls it."""

    def __init__(self) -> None:
        super().__init__()
        self.refill: Callable[[], None] | None = None

    def __call__(self, logprobs: mx.array) -> mx.array:
        if self.remaining == 0 and self.refill is not None:
            self.refill()
        return super().__call__(logprobs)


class Stage:
    """One window on one data folder, with the model loaded and a script to say its words."""

    def __init__(self, theme: str, data_dir: Path, model_dir: Path, *, scripted: bool = True):
        data_dir.mkdir(parents=True)
        # The app's own Settings, in the --data-dir settings file it reads at start.
        SettingsStore.in_file(data_dir / "settings.ini").update(
            theme=Theme(theme), collapse_reasoning_when_done=False, show_reasoning=True
        )
        existing = QApplication.instance()
        self.app = existing if existing is not None else Application([sys.argv[0]])
        if theme == "dark":
            use_dark_system_palette(self.app)
        self.tokenizer = HarmonyTokenizer.from_model_dir(model_dir)
        self.sampler = RefillingSampler()
        self.sessions: list[ChatSession] = []
        args = argparse.Namespace(model=None, data_dir=str(data_dir), profile="full", files=[])
        self.window: MainWindow = build(args, session_factory=self._session if scripted else None)
        self.window.resize(*SIZE)
        self.window.move(0, 0)
        self.window.splitter.setSizes([SIDEBAR_WIDTH, SIZE[0] - SIDEBAR_WIDTH])  # as if dragged
        self.window.show()
        self.window.load_model(str(model_dir))
        self.wait_until(lambda: self.window.engine.model is not None, "the model to load")

    def _session(self, model: Any, tok: Any, history: Any) -> ChatSession:
        session = ChatSession.from_messages(model, tok, history, sampler=self.sampler)
        self.sessions.append(session)
        return session

    # --- scripting ---------------------------------------------------------------------------

    def script(self, answer: str | None, analysis: str | None = None) -> None:
        """The next reply: reasoning (if any), then the answer (if any)."""
        messages = [Message.assistant(analysis, channel="analysis")] if analysis else []
        messages += [Message.assistant(answer)] if answer is not None else []
        self.sampler.extend(reply_ids(self.tokenizer, messages))

    def script_text(self, harmony: str) -> None:
        """Tokens written as harmony text (tool calls: `<|channel|>... to=browser.search ...`)."""
        self.sampler.extend(self.tokenizer.encode(harmony, allowed_special="all"))

    # --- acting as the user ------------------------------------------------------------------

    def type_and_press_return(self, text: str) -> list[TurnResult]:
        """Sends `text` from the message box; the returned list fills when the turn ends."""
        turns: list[TurnResult] = []
        self.window.controller.turn_completed.connect(turns.append)
        self.window.composer.set_text(text)
        QTest.keyClick(self.window.composer.input, Qt.Key.Key_Return)
        return turns

    def send(self, text: str) -> TurnResult:
        turns = self.type_and_press_return(text)
        self.wait_until(lambda: bool(turns), f"the answer to {text!r}")
        self.window.controller.turn_completed.disconnect(turns.append)
        if turns[0].error is not None or turns[0].status != "complete":
            raise RuntimeError(f"the turn failed: {turns[0]}")
        return turns[0]

    def attach(self, paths: list[Path]) -> None:
        before = len(self.window.attachments.items())
        self.window.open_files([str(p) for p in paths])
        self.wait_until(
            lambda: len(self.window.attachments.ready()) == before + len(paths),
            f"{len(paths)} files to be read",
        )

    def click(self, widget: QWidget) -> None:
        QTest.mouseClick(widget, Qt.MouseButton.LeftButton)

    # --- waiting and capturing -----------------------------------------------------------------

    def wait_until(self, done: Callable[[], bool], what: str, timeout_s: float = TIMEOUT_S) -> None:
        end = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > end:
                raise TimeoutError(f"timed out waiting for {what}")
            self.app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            time.sleep(0.01)

    def settle(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        self.wait_until(lambda: time.monotonic() > end, "a pause")

    def capture(self, out: Path, grab: bool, *, screen: bool = False) -> None:
        capture(self.window, out, grab, screen=screen)

    def close(self) -> None:
        self.window.close()
        self.window.attachments.shutdown()
        self.window.engine.shutdown()
        self.window.store.close()


def use_dark_system_palette(app: Any) -> None:
    """Qt's xcb and offscreen platforms have no dark palette of their own (a Mac has), so the
    Theme setting alone would darken only what dark.qss paints itself; give them one."""
    palette = app.palette()
    if palette.color(QPalette.ColorRole.Window).lightness() < 128:
        return  # the platform is dark already
    for role, color in DARK_PALETTE.items():
        palette.setColor(getattr(QPalette.ColorRole, role), QColor(color))
    disabled = QPalette.ColorGroup.Disabled
    for role in ("WindowText", "Text", "ButtonText"):
        palette.setColor(disabled, getattr(QPalette.ColorRole, role), QColor("#6E6E73"))
    app.setPalette(palette)


def capture(window: QWidget, out: Path, grab: bool, *, screen: bool = False) -> None:
    """A real X screenshot of the window when there is an X server; else QWidget.grab().
    `screen`: the whole screen (the window fills it), so that a sheet over the window, which is
    a window of its own, is in the picture too."""
    x11 = QGuiApplication.platformName() == "xcb" and not grab
    window_id = "root" if screen else f"0x{int(window.winId()):x}"
    if x11 and shutil.which("import"):
        subprocess.run(["import", "-window", window_id, str(out)], check=True)
    elif x11 and shutil.which("xwd") and shutil.which("convert"):
        dump = out.with_suffix(".xwd")
        subprocess.run(["xwd", "-silent", "-id", window_id, "-out", str(dump)], check=True)
        subprocess.run(["convert", str(dump), str(out)], check=True)
        dump.unlink()
    elif not window.grab().save(str(out), "PNG"):
        raise RuntimeError(f"could not save {out}")
    how = "X server" if x11 else "QWidget.grab()"
    print(f"wrote {out.name} ({out.stat().st_size // 1024} KiB, {how})", flush=True)
