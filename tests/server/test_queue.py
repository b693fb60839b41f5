"""One request at a time behind the model: a second client waits, one more gets 503, and a
client that goes away stops its generation."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from engine import HarmonyTokenizer
from tests.server.conftest import MODEL_ID, WAIT_S, Served, serve


@pytest.fixture
def one_waiting(model_dir: Path, tok: HarmonyTokenizer, tmp_path: Path) -> Iterator[Served]:
    """A server that lets one request wait behind the running one."""
    yield from serve(model_dir, tok, tmp_path / "responses.sqlite3", max_queue=1)


def wait_cancelled(served: Served) -> None:
    """Until the server has noticed the client left and cancelled the running turn."""
    ticket = served.runner._current
    assert ticket is not None
    assert ticket.cancel.wait(WAIT_S), "the server never cancelled the turn"


def wait_finished(served: Served, n: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while len(served.finished) < n:
        assert time.monotonic() < deadline, "the turn never finished"
        time.sleep(0.02)


def in_thread(call: Any) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(call()), daemon=True)
    thread.start()
    return thread, out


def test_a_second_client_waits_and_a_third_is_told_the_server_is_busy(one_waiting: Served) -> None:
    served = one_waiting
    served.reply("First.")
    served.reply("Second.")
    gate = served.hold_at(0)
    client = served.client(timeout=WAIT_S)

    def ask(text: str) -> str:
        return client.responses.create(model=MODEL_ID, input=text).output_text

    first, first_out = in_thread(lambda: ask("one"))
    served.wait_held()
    second, second_out = in_thread(lambda: ask("two"))
    deadline = time.monotonic() + WAIT_S
    while served.runner._outstanding < 2:  # the second is queued
        assert time.monotonic() < deadline
        time.sleep(0.01)
    with pytest.raises(openai.APIStatusError) as busy:
        ask("three")
    assert busy.value.status_code == 503
    assert busy.value.code == "queue_full"
    assert "--max-queue" in busy.value.message
    gate.set()
    first.join(WAIT_S)
    second.join(WAIT_S)
    assert first_out == ["First."] and second_out == ["Second."]


def test_a_client_that_leaves_a_stream_cancels_its_generation(served: Served) -> None:
    ids = served.reply("word " * 40)
    gate = served.hold_at(8)  # a few words of the answer are out by then
    body = {"model": MODEL_ID, "input": "Talk", "stream": True}
    with served.http() as http, http.stream("POST", "/v1/responses", json=body) as response:
        assert response.status_code == 200
        lines = response.iter_lines()  # kept open: closing it would close the connection
        while "response.output_text.delta" not in next(lines):
            pass
        served.wait_held()
        assert served.finished == []
    wait_cancelled(served)  # the connection is closed: the server sets the turn's cancel event
    gate.set()
    wait_finished(served, 1)
    assert served.finished[-1].reason == "cancel"
    assert served.sampler is not None
    assert served.sampler.calls < len(ids) // 2
    served.sampler.discard_remaining()


def test_a_client_that_gives_up_waiting_cancels_its_generation(served: Served) -> None:
    ids = served.reply("word " * 40)
    gate = served.hold_at(3)
    body = {"model": MODEL_ID, "messages": [{"role": "user", "content": "Talk"}]}
    with served.http() as http, pytest.raises(httpx2.ReadTimeout):
        http.post("/v1/chat/completions", json=body, timeout=1.0)
    wait_cancelled(served)
    gate.set()
    wait_finished(served, 1)
    assert served.finished[-1].reason == "cancel"
    assert served.sampler is not None
    assert served.sampler.calls < len(ids) // 2
    served.sampler.discard_remaining()
