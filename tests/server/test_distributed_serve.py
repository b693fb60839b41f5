"""`oss-desk-serve --distributed` for real: two processes on the tiny synthetic model, joined by
MLX's ring backend over 127.0.0.1, rank 0 serving HTTP, asked through the openai SDK."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI

from engine import HarmonyTokenizer
from engine.distributed.local import free_ports, launch_command, spawn_local
from server import cli
from server.distributed import EXIT_GROUP_LOST, LOST_CODE, LOST_GRACE_S
from tests.engine.chat.fixtures import text_only_model
from tests.server.conftest import KEY, serve

REQUEST: dict[str, Any] = {"max_output_tokens": 10}
READY_S = 60.0
LOST_MESSAGE = "A process of the distributed group stopped"


def _serve_args(model: Path, port: int, db: Path, *extra: str) -> list[str]:
    return [
        "server",
        "--model",
        str(model),
        "--distributed",
        "--api-key",
        KEY,
        "--port",
        str(port),
        "--db",
        str(db),
        *extra,
    ]


def _client(port: int) -> OpenAI:
    return OpenAI(api_key=KEY, base_url=f"http://127.0.0.1:{port}/v1", max_retries=0, timeout=60)


def _wait_serving(client: OpenAI, alive: Callable[[], bool], log: Path) -> str:
    """The model id, once rank 0 answers; fails early if the group ended."""
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        try:
            return client.models.list().data[0].id
        except openai.APIConnectionError:
            assert alive(), f"the group ended before serving:\n{log.read_text()}"
            time.sleep(0.2)
    raise AssertionError(f"rank 0 never served:\n{log.read_text()}")


def _answers(client: OpenAI, model: str) -> list[tuple[list[dict[str, Any]], Any]]:
    """Two greedy turns of one conversation: each one's output items (without their random ids)
    and token counts (input, output, input already in the KV cache)."""
    found = []
    previous = None
    for text in ("Why is the sky blue?", "And at sunset?"):
        r = client.responses.create(
            model=model, input=text, previous_response_id=previous, temperature=0, **REQUEST
        )
        assert r.usage is not None
        items = [item.model_dump(exclude={"id"}) for item in r.output]
        cached = r.usage.input_tokens_details.cached_tokens
        found.append((items, (r.usage.input_tokens, r.usage.output_tokens, cached, r.status)))
        previous = r.id
    return found


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An answer's text shows every token it is made of (text_only_model)."""
    return text_only_model(tmp_path_factory.mktemp("text-model"), seed=5)


@pytest.fixture(scope="module")
def single_answer(
    model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> list[tuple[list[dict[str, Any]], Any]]:
    """What one process answers greedily on the same checkpoint, through the same server code."""
    db = tmp_path_factory.mktemp("single") / "responses.sqlite3"
    tok = HarmonyTokenizer.from_model_dir(model_dir)
    with contextmanager(serve)(model_dir, tok, db, scripted=False) as one:
        return _answers(one.client(), "tiny-oss")


def test_two_processes_serve_the_greedy_answer_of_one_and_stop_on_sigterm(
    model_dir: Path, single_answer: list[tuple[list[dict[str, Any]], Any]], tmp_path: Path
) -> None:
    port = free_ports(1, 30000 + hash(str(tmp_path)) % 10000)
    ring = free_ports(2, port + 1)
    command = launch_command(2, _serve_args(model_dir, port, tmp_path / "r.sqlite3"), ring)
    command.insert(3, "--verbose")  # mlx.launch then says "Node with rank N completed" (exit 0)
    log = tmp_path / "launch.log"
    with open(log, "w") as out:
        launcher = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        client = _client(port)
        model = _wait_serving(client, lambda: launcher.poll() is None, log)
        answers = _answers(client, model)
        assert answers == single_answer
        for items, usage in answers:
            assert usage[1] == REQUEST["max_output_tokens"]  # a real answer, not an early stop
            shown = items[0]["content"][0]["text"]  # every token is text (see model_dir)
            assert len(shown) >= REQUEST["max_output_tokens"] // 2, shown
        (_, first), (_, follow_up) = answers
        assert first[2] == 0
        # the follow-up prefilled only its new messages: the group kept the first turn's cache
        assert 0 < follow_up[2] < follow_up[0]
        found = re.search(r"Started server process \[(\d+)\]", log.read_text())
        assert found, log.read_text()
        sigterm = time.monotonic()
        os.kill(int(found[1]), signal.SIGTERM)
        assert launcher.wait(15) == 0
        assert time.monotonic() - sigterm < 8
    finally:
        if launcher.poll() is None:  # the launcher and both ranks: one process group
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait()
    text = log.read_text()
    assert "Node with rank 0 completed" in text and "Node with rank 1 completed" in text, text
    assert "exited with code" not in text and "Traceback" not in text, text


def test_a_follower_killed_mid_answer_ends_the_request_and_rank_0_with_its_reason(
    model_dir: Path, tmp_path: Path
) -> None:
    """Without mlx.launch (which would SIGTERM rank 0 at once): rank 0 alone must notice."""
    port = free_ports(1, 30000 + hash(str(tmp_path)) % 10000)
    args = _serve_args(model_dir, port, tmp_path / "r.sqlite3")
    ranks = spawn_local(2, args, tmp_path)
    try:
        client = _client(port)
        model = _wait_serving(client, lambda: ranks[0].poll() is None, tmp_path / "rank0.log")
        stream = client.responses.create(
            model=model, input="Tell me a long story.", max_output_tokens=4000, stream=True
        )
        kinds = []
        for event in stream:
            kinds.append(event.type)
            if event.type == "response.in_progress":  # the turn is running on both ranks
                ranks[1].kill()
                killed = time.monotonic()
            if event.type == "response.failed":
                error = event.response.error
        assert kinds[-1] == "response.failed", kinds
        assert error is not None and error.code == LOST_CODE
        assert error.message.startswith(LOST_MESSAGE), error.message
        assert "start every process again with mlx.launch" in error.message
        assert time.monotonic() - killed < 5
        with pytest.raises(openai.APIStatusError) as later:  # within the grace: the same reason
            client.responses.create(model=model, input="Are you there?")
        assert later.value.status_code == 503
        assert later.value.message and LOST_MESSAGE in later.value.message
        assert ranks[0].wait(LOST_GRACE_S + 10) == EXIT_GROUP_LOST
        assert time.monotonic() - killed < LOST_GRACE_S + 10
    finally:
        for rank in ranks:
            if rank.poll() is None:
                rank.kill()
            rank.wait(10)
    log = (tmp_path / "rank0.log").read_text()
    assert LOST_MESSAGE in log and "Traceback" not in log, log


def test_too_little_memory_on_the_processes_stops_the_group_with_every_reason_on_rank_0(
    model_dir: Path, tmp_path: Path
) -> None:
    port = free_ports(1, 30000 + hash(str(tmp_path)) % 10000)
    args = _serve_args(model_dir, port, tmp_path / "r.sqlite3", "--memory-limit", "0.001")
    ranks = spawn_local(2, args, tmp_path)
    try:
        codes = [rank.wait(READY_S) for rank in ranks]
    finally:
        for rank in ranks:
            if rank.poll() is None:
                rank.kill()
    logs = [(tmp_path / f"rank{r}.log").read_text() for r in (0, 1)]
    assert codes == [1, 1], logs
    share = r"Process {} of 2 \(.+\) cannot hold its share of the model: it needs [\d.]+ MiB"
    for r in (0, 1):  # rank 0 says why for both; each rank prints only its own reason
        assert re.search(share.format(r), logs[0]), logs[0]
    assert re.search(share.format(1), logs[1]) and "Process 0" not in logs[1], logs[1]
    assert "can give 1.0 MiB" in logs[0] and "Use more Macs" in logs[0]


def test_distributed_alone_says_how_to_launch_the_group(model_dir: Path, tmp_path: Path) -> None:
    args = _serve_args(model_dir, 1, tmp_path / "r.sqlite3")
    started = time.monotonic()
    alone = subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, timeout=30, check=False
    )
    assert alone.returncode == 2
    assert alone.stderr.startswith("--distributed needs the processes of a group started by ")
    assert "mlx.launch --hostfile hosts.json --backend ring --" in alone.stderr
    assert "leave out --distributed" in alone.stderr
    assert time.monotonic() - started < 10
    assert not (tmp_path / "r.sqlite3").exists()


def test_a_quantized_profile_is_refused_with_distributed(
    model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--model", str(model_dir), "--distributed", "--profile", "16gb"]) == 2
    assert capsys.readouterr().err.startswith(
        "--profile 16gb cannot be used with --distributed: a split model keeps every weight"
    )


def test_a_memory_limit_refuses_a_model_that_does_not_fit_in_it(model_dir: Path) -> None:
    """Also without --distributed: the single-process check plans against the limit."""
    with pytest.raises(MemoryError, match="Pass --profile to load it anyway"):
        cli._loader(model_dir, "auto", memory_limit=0.001)()
