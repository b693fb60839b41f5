"""Single instance: a second launch hands its files to the first; a crash's socket is reclaimed.

Both "launches" live in this process as separate objects: the socket between them is real.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QDir
from PySide6.QtNetwork import QLocalSocket
from pytestqt.qtbot import QtBot

from app.single_instance import SingleInstance

Launch = Callable[[], SingleInstance]


@pytest.fixture
def launch() -> Iterator[Launch]:
    """Makes instances of one app id unique to this test; closes them all afterwards."""
    app_id = f"oss-desk-test-{uuid.uuid4().hex[:8]}"
    made: list[SingleInstance] = []

    def make() -> SingleInstance:
        made.append(SingleInstance(app_id))
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
