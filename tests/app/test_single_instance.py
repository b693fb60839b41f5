"""Single instance: a second launch hands its files to the first; a crash's socket is reclaimed;
one data folder is one instance however it is spelled; a relaunch while the first is quitting
opens a window.

The first tests keep both "launches" in this process as separate objects (the socket between
them is real); the last ones launch the real app in separate processes.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QDir
from PySide6.QtNetwork import QLocalSocket
from pytestqt.qtbot import QtBot

from app.handover import folder_app_id
from app.single_instance import SingleInstance

Launch = Callable[..., SingleInstance]


@pytest.fixture
def launch() -> Iterator[Launch]:
    """Makes instances of one app id unique to this test (or of the data folder given, within
    it); keeps them alive until Qt's events are processed and closes them all afterwards."""
    app_id = f"oss-desk-test-{uuid.uuid4().hex[:8]}"
    made: list[SingleInstance] = []

    def make(data_folder: Path | str | None = None) -> SingleInstance:
        made.append(SingleInstance(folder_app_id(app_id, data_folder) if data_folder else app_id))
        return made[-1]

    yield make
    for instance in made:
        instance.close()


def socket_file(instance: SingleInstance) -> Path:
    return Path(QDir.tempPath()) / instance.server_name


def test_a_second_launch_forwards_its_files_and_activates_the_first(
    qtbot: QtBot, launch: Launch, tmp_path: Path
) -> None:
    first = launch()
    assert first.is_primary()
    second = launch()
    assert not second.is_primary()
    doc = tmp_path / "report.pdf"
    with (
        qtbot.waitSignal(first.files_received, timeout=3000) as received,
        qtbot.waitSignal(first.activation_requested, timeout=3000),
    ):
        assert second.send_files([str(doc), "notes.md"])
    assert received.args == [[str(doc), os.path.abspath("notes.md")]]


def test_a_launch_without_files_only_activates(qtbot: QtBot, launch: Launch) -> None:
    first = launch()
    assert first.is_primary()
    with (
        qtbot.assertNotEmitted(first.files_received, wait=100),
        qtbot.waitSignal(first.activation_requested, timeout=3000),
    ):
        assert launch().send_files([])


def test_the_first_instance_has_no_one_to_send_to(launch: Launch) -> None:
    first = launch()
    assert first.is_primary()
    assert not first.send_files(["a.txt"])


def test_a_socket_left_by_a_crash_is_taken_over(qtbot: QtBot, launch: Launch) -> None:
    crashed = launch()
    path = socket_file(crashed)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(path))  # bound, never listening, never removed: what a crash leaves
    assert path.exists()

    first = launch()
    assert first.is_primary()
    with qtbot.waitSignal(first.files_received, timeout=3000) as received:
        assert launch().send_files(["/tmp/x.txt"])
    assert received.args == [["/tmp/x.txt"]]


def test_closing_removes_the_socket_so_the_next_launch_is_first(launch: Launch) -> None:
    first = launch()
    assert first.is_primary() and socket_file(first).exists()
    first.close()
    assert not socket_file(first).exists()
    assert launch().is_primary()


def test_garbage_from_another_program_is_ignored(qtbot: QtBot, launch: Launch) -> None:
    first = launch()
    assert first.is_primary()
    intruder = QLocalSocket()
    intruder.connectToServer(first.server_name)
    assert intruder.waitForConnected(1000)
    intruder.write(b'not json\n{"files": [1, 2]}\n{"files": ["/ok.txt"]}\n')
    intruder.flush()
    with qtbot.waitSignal(first.files_received, timeout=3000) as received:
        intruder.disconnectFromServer()
    assert received.args == [["/ok.txt"]]


# -- one instance per data folder, however it is spelled ---------------------------------------


def test_every_spelling_of_a_folder_gives_one_app_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "Application Support" / "OSS Desk"
    (folder / "sub").mkdir(parents=True)
    (tmp_path / "link").symlink_to(folder, target_is_directory=True)
    monkeypatch.setenv("HOME", str(tmp_path))
    spellings: list[Path | str] = [
        folder,
        f"{folder}/",
        folder / "sub" / "..",
        tmp_path / "link",
        f"{tmp_path / 'link'}//",
        "~/Application Support/OSS Desk",
    ]
    ids = {folder_app_id("oss-desk", spelling) for spelling in spellings}
    assert len(ids) == 1
    assert folder_app_id("oss-desk", tmp_path / "other") not in ids


def test_two_spellings_of_one_folder_are_one_instance(
    qtbot: QtBot, launch: Launch, tmp_path: Path
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "data", target_is_directory=True)
    first = launch(tmp_path / "data")
    second = launch(f"{tmp_path}/alias/")
    assert first.is_primary() and not second.is_primary()
    with qtbot.waitSignal(first.activation_requested, timeout=3000):
        assert second.send_files([])
    assert launch(tmp_path).is_primary()  # another folder is another app


# -- real launches of the app --------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
EVENT_TIMEOUT_S = 90.0  # a launch imports PySide6 and MLX; slow when the machine is shared


class AppProcess:
    """One real OSS Desk process run by tests/app/history/launch_driver.py."""

    def __init__(
        self, role: str, *options: str, home: Path, log: Path, env: dict[str, str]
    ) -> None:
        env = {
            **os.environ,
            **env,
            "QT_QPA_PLATFORM": "offscreen",
            "HOME": str(home),  # the default data folder and settings live here, not the user's
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_CONFIG_HOME": str(home / "config"),
        }
        self._log = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.app.history.launch_driver", role, *options],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        self.log = log
        self.events: list[dict[str, Any]] = []
        self._pending = b""

    def wait_for(self, event: str, timeout_s: float = EVENT_TIMEOUT_S) -> dict[str, Any]:
        """The first `event`; AssertionError with the log if the process ends or times out."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while True:
                for seen in self.events:
                    if seen["event"] == event:
                        return seen
                # Raw reads: a buffered readline() may hold lines the selector no longer sees.
                left = deadline - time.monotonic()
                chunk = os.read(fd, 1 << 16) if selector.select(max(left, 0)) else b""
                if not chunk:
                    raise AssertionError(
                        f"no {event!r} after {self.names()}:\n" + self.log.read_text()
                    )
                self._pending += chunk
                *lines, self._pending = self._pending.split(b"\n")
                self.events += [json.loads(line) for line in lines if line.strip()]

    def names(self) -> list[str]:
        return [e["event"] for e in self.events]

    def finish(self) -> int:
        """Close stdin (a "stay" launch quits), wait for the end; the exit code."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.wait_for("exited")
        code = self.process.wait(timeout=EVENT_TIMEOUT_S)
        self._log.close()
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=EVENT_TIMEOUT_S)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None and not pipe.closed:
                pipe.close()
        self._log.close()


@pytest.fixture
def launches(tmp_path: Path) -> Iterator[Callable[..., AppProcess]]:
    made: list[AppProcess] = []

    def launch(role: str, *options: str, **env: str) -> AppProcess:
        log = tmp_path / f"app{len(made)}.log"
        made.append(AppProcess(role, *options, home=tmp_path, log=log, env=env))
        return made[-1]

    yield launch
    for launch_ in made:
        launch_.kill()


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="symlinks and offscreen launches")
def test_the_default_folder_spelled_out_reaches_the_running_app(
    tmp_path: Path, launches: Callable[..., AppProcess]
) -> None:
    first = launches("stay", "--model", str(tmp_path / "no-model"))
    default = Path(first.wait_for("started")["default_folder"])
    first.wait_for("window")
    (tmp_path / "alias").symlink_to(default.parent, target_is_directory=True)
    doc = tmp_path / "notes.txt"
    doc.write_text("hello")
    spelled = f"{tmp_path}/alias/./{default.name}/"
    second = launches("once", "--data-dir", spelled, "--model", "x", str(doc))
    assert second.finish() == 0
    assert "window" not in second.names()  # it handed over instead of opening the same history
    assert first.wait_for("files")["paths"] == [str(doc)]
    first.wait_for("activated")
    assert first.finish() == 0


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="offscreen launches")
def test_a_relaunch_while_the_first_is_quitting_opens_a_window(
    tmp_path: Path, launches: Callable[..., AppProcess]
) -> None:
    data = tmp_path / "data-dir"
    first = launches("quit-slowly", "--data-dir", str(data), "--model", "x")
    first.wait_for("quitting")  # it stopped listening; its engine thread keeps it alive
    second = launches("once", "--data-dir", f"{data}/", "--model", "x")
    second.wait_for("building")  # the first instance now: it did not hand over to the dying one
    time.sleep(0.5)  # ...and it is waiting for the history
    assert first.process.poll() is None and "window" not in second.names()
    released = time.time()
    assert first.finish() == 0  # lets its engine thread end: it quits, the history is free
    window = second.wait_for("window")
    assert second.finish() == 0
    assert "message" not in second.names(), second.events  # it waited, it was not refused
    assert window["t"] >= released


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="offscreen launches")
def test_a_writer_the_socket_missed_is_refused_with_a_message(
    tmp_path: Path, launches: Callable[..., AppProcess]
) -> None:
    data = tmp_path / "data-dir"
    data.mkdir()
    # Another process with the history open and no socket: an older build, a script, a launch
    # the socket check missed.
    holder = subprocess.Popen(
        [sys.executable, "-m", "tests.app.history.store_holder", str(data / "history.sqlite3")],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline()
        refused = launches(
            "once", "--data-dir", str(data), "--model", "x", OSS_DESK_HISTORY_WAIT_S="0.5"
        )
        message = refused.wait_for("message")
        assert refused.finish() == 1
    finally:
        holder.kill()
        holder.wait(timeout=EVENT_TIMEOUT_S)
        for pipe in (holder.stdin, holder.stdout):
            if pipe is not None:
                pipe.close()
    assert message["text"].startswith(
        f"The conversation history file {data / 'history.sqlite3'} is open in another OSS Desk"
    )
    assert refused.names() == ["started", "building", "message", "exited"]  # no window, no crash
