"""Killing the app (SIGKILL) in the middle of an answer loses nothing that was on screen: the
engine thread commits each batch to SQLite before the window shows it."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.history import HistoryStore

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 90.0

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


def read_line(process: subprocess.Popen[str], timeout_s: float) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            if selector.select(left):
                return process.stdout.readline()
    raise TimeoutError(f"the app printed nothing within {timeout_s} s")


def test_killing_the_app_mid_answer_loses_nothing_shown(model_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    log = (tmp_path / "app.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.app.kill_driver", str(model_dir), str(data)],
        cwd=ROOT,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        line = read_line(process, START_TIMEOUT_S)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        log.close()
    assert process.returncode == -signal.SIGKILL, (tmp_path / "app.log").read_text()
    shown = json.loads(line)
    assert shown["answer"].startswith("word0 word1") and shown["reasoning"]

    with HistoryStore(data / "history.sqlite3") as store:  # reopening marks the dead stream
        assert shown["message_id"] in store.recovered_message_ids
        answer = store.get_message(shown["message_id"])
        _, conversation = store.get_conversation(answer.conversation_id)
    assert answer.status == "interrupted"
    assert answer.content.startswith(shown["answer"])
    assert answer.reasoning.startswith(shown["reasoning"])
    assert conversation[0].content == "Write a lot"
