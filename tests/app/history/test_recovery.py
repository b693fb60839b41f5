"""Killing the app mid-answer loses nothing already shown: every committed delta survives."""

from __future__ import annotations

import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app.engine_requests import TurnRequest
from app.history import HistoryError, HistoryStore
from app.messages import ErrorInfo
from app.turn_stream import AnswerStream, TurnUpdate
from engine import ChannelDelta, TurnFinished, TurnStats

ROOT = Path(__file__).resolve().parents[3]

# Stands in for the GUI: streams deltas, reporting each one once append_to_message has returned
# (i.e. once it is on screen), then dies the way argv[3] says, without any cleanup.
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from app.history import HistoryStore

    path, stop_after, how = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    store = HistoryStore(path)
    conv = store.create_conversation()
    store.add_user_message(conv, "Tell me a long story")
    answer = store.begin_assistant_message(conv, "high")
    print(answer, flush=True)
    i = 0
    while True:
        store.append_to_message(answer, content_delta=f"c{i} ", reasoning_delta=f"r{i} ")
        print(i, flush=True)
        i += 1
        if i == stop_after:
            if how == "exit":
                os._exit(3)
            os.kill(os.getpid(), signal.SIGKILL)
    """
)

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")


def _start(db_path: Path, stop_after: int, how: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db_path), str(stop_after), how],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def _deltas(prefix: str, n: int) -> str:
    return "".join(f"{prefix}{i} " for i in range(n))


@pytest.mark.parametrize("how", ["exit", "sigkill"])
def test_answer_killed_by_itself_is_kept_as_interrupted(db_path: Path, how: str) -> None:
    child = _start(db_path, 40, how)
    out, _ = child.communicate(timeout=30)
    assert child.returncode == (3 if how == "exit" else -signal.SIGKILL)
    answer = int(out.split()[0])
    with HistoryStore(db_path) as store:
        assert store.recovered_message_ids == (answer,)
        message = store.get_message(answer)
        assert message.status == "interrupted"
        assert (message.content, message.reasoning) == (_deltas("c", 40), _deltas("r", 40))
        assert store.search("c39")[0].message_id == answer  # indexed once no longer streaming


def test_answer_killed_from_outside_keeps_every_delta_shown(db_path: Path) -> None:
    child = _start(db_path, -1, "never")
    assert child.stdout is not None
    answer = int(child.stdout.readline())
    shown = 0
    while shown < 60:
        shown = int(child.stdout.readline()) + 1
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    child.stdout.close()
    with HistoryStore(db_path) as store:
        message = store.get_message(answer)
    assert message.status == "interrupted"
    # At least what was shown, and whole deltas only: content and reasoning were one transaction.
    written = len(message.content.split())
    assert written >= shown
    assert (message.content, message.reasoning) == (_deltas("c", written), _deltas("r", written))


def test_a_second_store_does_not_interrupt_a_live_stream(
    store: HistoryStore, db_path: Path
) -> None:
    conv = store.create_conversation()
    answer = store.begin_assistant_message(conv, "low")
    with HistoryStore(db_path, recover_interrupted=False) as other:
        assert other.recovered_message_ids == ()
        assert other.get_message(answer).status == "streaming"
    assert store.append_to_message(answer, "still going")


def test_reopening_in_the_writing_process_leaves_its_live_stream_alone(
    store: HistoryStore, db_path: Path
) -> None:
    conv = store.create_conversation()
    answer = store.begin_assistant_message(conv, "low")
    store.append_to_message(answer, "still ")
    with HistoryStore(db_path) as reopened:  # recovery on: e.g. a test or a second window
        assert reopened.recovered_message_ids == ()
        assert reopened.get_message(answer).status == "streaming"
    assert store.append_to_message(answer, "going")
    assert store.get_message(answer).content == "still going"


def test_a_stream_from_before_writers_were_recorded_is_recovered(
    store: HistoryStore, db_path: Path, raw: sqlite3.Connection
) -> None:
    conv = store.create_conversation()
    answer = store.begin_assistant_message(conv, "low")
    raw.execute("UPDATE messages SET writer = NULL WHERE id = ?", (answer,))  # a v1 row
    raw.commit()
    store.close()
    with HistoryStore(db_path) as reopened:
        assert reopened.recovered_message_ids == (answer,)
        assert reopened.get_message(answer).status == "interrupted"


def test_an_answer_taken_over_refuses_more_text_loudly(
    store: HistoryStore, raw: sqlite3.Connection
) -> None:
    conv = store.create_conversation()
    answer = store.begin_assistant_message(conv, "medium")
    store.append_to_message(answer, "844 characters on screen")
    # What a process that got past the lock would do on start-up: the old, blind recovery.
    raw.execute("UPDATE messages SET status = 'interrupted' WHERE status = 'streaming'")
    raw.commit()
    with pytest.raises(HistoryError) as caught:
        store.append_to_message(answer, " and more")
    assert caught.value.kind == "taken"
    assert str(caught.value).startswith(
        f"The answer could not be saved to {store.path} because another OSS Desk took over"
    )
    assert "interrupted" in caught.value.details
    assert store.get_message(answer).content == "844 characters on screen"


def test_the_answer_stream_reports_a_taken_answer_once(
    store: HistoryStore, raw: sqlite3.Connection
) -> None:
    conv = store.create_conversation()
    store.add_user_message(conv, "hi")
    answer = store.begin_assistant_message(conv, "low")
    request = TurnRequest(1, conv, answer, "send", "hi", (), "low")
    shown: list[TurnUpdate] = []
    warnings: list[ErrorInfo] = []
    stream = AnswerStream(request, store, shown.append, warnings.append, interval_s=0)
    stats = TurnStats(**{f.name: 0 for f in dataclasses.fields(TurnStats)})
    stream.consume([ChannelDelta("final", "Hello"), TurnFinished("tool_call", stats)])
    raw.execute("UPDATE messages SET status = 'interrupted' WHERE id = ?", (answer,))
    raw.commit()
    words = [ChannelDelta("final", f" word{i}") for i in range(5)]
    stream.consume([*words, TurnFinished("stop", stats)])
    stream.finish("complete", {}, None)
    assert "".join(u.answer for u in shown) == "Hello word0 word1 word2 word3 word4"
    assert len(warnings) == 1 and "another OSS Desk took over" in warnings[0].text
    kept = store.get_message(answer)  # what the other process found stays as it found it
    assert (kept.status, kept.content) == ("interrupted", "Hello")
