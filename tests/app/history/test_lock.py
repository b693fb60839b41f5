"""One writing process per history file: a second process is refused with a clear message, the
lock ends with its holder however it ends, and a launch can wait for a holder that is quitting."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.history import HistoryError, HistoryStore
from app.history import lock as lock_module

ROOT = Path(__file__).resolve().parents[3]
START_TIMEOUT_S = 30.0

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock and SIGKILL are POSIX")

Holder = Callable[..., tuple[subprocess.Popen[str], dict[str, int]]]


@pytest.fixture
def hold(db_path: Path) -> Iterator[Holder]:
    """hold("--stream", ...) -> (process, what it printed): another process holding the store."""
    started: list[subprocess.Popen[str]] = []

    def start(*options: str) -> tuple[subprocess.Popen[str], dict[str, int]]:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.app.history.store_holder", str(db_path), *options],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, "the holder died before it held the store"
        return process, json.loads(line)

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=START_TIMEOUT_S)
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()


def refused(db_path: Path, wait_s: float = 0.0) -> HistoryError:
    with pytest.raises(HistoryError) as caught:
        HistoryStore(db_path, wait_s=wait_s)
    return caught.value


def test_a_second_process_is_refused_and_told_what_to_do(db_path: Path, hold: Holder) -> None:
    _, holder = hold("--stream")
    started = time.monotonic()
    error = refused(db_path)
    assert time.monotonic() - started < 1.0
    assert error.kind == "in_use"
    assert str(error).startswith(
        f"The conversation history file {db_path} is open in another OSS Desk: quit that one"
    )
    assert f"process {holder['pid']}" in error.details
    # The refused process touched nothing: the holder's answer is still being written.
    with HistoryStore(db_path.with_name("other.sqlite3")):
        pass  # another file in the same folder is free
    raw = lock_free_read(db_path, "SELECT status FROM messages WHERE id = ?", holder["message_id"])
    assert raw == "streaming"


def lock_free_read(db_path: Path, sql: str, *params: object) -> object:
    """Reads behind the lock's back, as only a test should."""
    conn = sqlite3.connect(f"{db_path.absolute().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchone()[0]
    finally:
        conn.close()


def test_the_lock_ends_with_its_holder_even_on_sigkill(db_path: Path, hold: Holder) -> None:
    process, holder = hold("--stream")
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=START_TIMEOUT_S)
    started = time.monotonic()
    with HistoryStore(db_path) as store:
        assert time.monotonic() - started < 1.0
        assert store.recovered_message_ids == (holder["message_id"],)
        assert store.get_message(holder["message_id"]).content == "Once upon a time"


def test_a_launch_waits_for_a_holder_that_is_quitting(db_path: Path, hold: Holder) -> None:
    hold("--exit-after", "1.0")
    started = time.monotonic()
    with HistoryStore(db_path, wait_s=15.0):
        waited = time.monotonic() - started
    assert 0.3 < waited < 10.0


def test_the_wait_is_bounded(db_path: Path, hold: Holder) -> None:
    hold()
    started = time.monotonic()
    assert refused(db_path, wait_s=0.5).kind == "in_use"
    assert 0.5 <= time.monotonic() - started < 3.0


def test_the_stores_of_one_process_share_its_lock(db_path: Path, hold: Holder) -> None:
    first = HistoryStore(db_path)
    second = HistoryStore(db_path, recover_interrupted=False)  # e.g. the engine thread's
    first.close()
    probe = subprocess.run(
        [sys.executable, "-m", "tests.app.history.store_holder", str(db_path)],
        cwd=ROOT,
        input="",
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S,
    )
    assert probe.returncode != 0 and "is open in another OSS Desk" in probe.stderr
    second.close()
    process, _ = hold()  # the last close let go
    assert process.poll() is None


def test_a_forked_child_does_not_keep_the_lock(db_path: Path, hold: Holder) -> None:
    process, holder = hold("--fork-child")
    child = holder["child_pid"]
    try:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=START_TIMEOUT_S)
        os.kill(child, 0)  # the child still lives, and still shares the parent's open files
        with HistoryStore(db_path):
            pass
    finally:
        os.kill(child, signal.SIGKILL)


def test_the_lock_file_sits_beside_the_history_and_names_its_owner(
    store: HistoryStore, db_path: Path
) -> None:
    lock_file = Path(f"{db_path}.lock")
    assert lock_file.read_text().strip() == str(os.getpid())
    assert lock_module.writer_token().startswith(f"{os.getpid()}-")


def test_another_spelling_of_the_same_file_is_the_same_lock(
    store: HistoryStore, db_path: Path, tmp_path: Path
) -> None:
    link = tmp_path / "link"
    link.symlink_to(tmp_path, target_is_directory=True)
    with HistoryStore(link / ".." / tmp_path.name / db_path.name):  # shared within this process
        pass
    (tmp_path / "alias.sqlite3").symlink_to(db_path)
    for spelling in (link / db_path.name, tmp_path / "alias.sqlite3"):
        probe = subprocess.run(
            [sys.executable, "-m", "tests.app.history.store_holder", str(spelling)],
            cwd=ROOT,
            input="",
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
        )
        assert "is open in another OSS Desk" in probe.stderr, spelling
