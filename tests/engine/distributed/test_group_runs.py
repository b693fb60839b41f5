"""Real distributed runs: mlx.launch starts the ranks, MLX's ring backend joins them over
127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from engine import SamplingSettings, load_model
from engine.distributed.check import REWOUND_TAIL
from engine.distributed.group import EXIT_PEER_SILENT
from engine.distributed.local import free_ports, run_local, spawn_local
from engine.generate import Token
from tests.conftest import CheckpointFactory

# Longer than the tiny model's 8-token sliding window, so both kinds of layers are exercised.
PROMPT = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4]


def _check(folder: Path, out: Path, *extra: str) -> list[str]:
    ids = ",".join(map(str, PROMPT))
    return ["engine.distributed.check", str(folder), str(out), "--prompt-ids", ids, *extra]


def test_two_processes_give_the_logits_and_greedy_tokens_of_one(
    make_checkpoint: CheckpointFactory, tmp_path: Path
) -> None:
    folder = make_checkpoint(seed=11, num_shards=3)
    run = run_local(2, _check(folder, tmp_path, "--tokens", "12"), timeout=60)
    assert run.returncode == 0, run.stderr
    one = load_model(folder, dtype="float32")
    logits = np.load(tmp_path / "logits.npy")
    reference = one.logits(PROMPT)
    assert logits.shape == reference.shape
    np.testing.assert_allclose(logits, reference, rtol=0, atol=1e-5)
    events = one.generate(PROMPT, settings=SamplingSettings(temperature=0), max_tokens=12)
    greedy = [e.id for e in events if isinstance(e, Token)]
    assert json.loads((tmp_path / "tokens.json").read_text()) == greedy
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    # a cache cut back into the prompt and continued: every rank rewound the same way
    events = one.generate(
        [*PROMPT, *REWOUND_TAIL], settings=SamplingSettings(temperature=0), max_tokens=6
    )
    assert json.loads((tmp_path / "rewound.json").read_text()) == [
        e.id for e in events if isinstance(e, Token)
    ]
    # the follower ran every pass: logits; prefill and 11 decode steps; twice prefill and 5 steps
    assert ranks[1]["follower_passes"] == 1 + (1 + 11) + 2 * (1 + 5)
    for rank in ranks:  # the plan (and the memory planner) predicts each rank's weights exactly
        assert rank["weight_bytes"] == rank["planned_weight_bytes"]
    assert ranks[1]["weight_bytes"] < ranks[0]["weight_bytes"]


def _spawn(folder: Path, out: Path, *extra: str) -> list[subprocess.Popen[str]]:
    out.mkdir()
    return spawn_local(2, _check(folder, out, "--tokens", "40", *extra), out)


def _end(ranks: list[subprocess.Popen[str]]) -> None:
    for rank in ranks:  # a frozen rank never ends by itself; SIGKILL ends even a stopped one
        if rank.poll() is None:
            rank.kill()
        rank.wait(10)


def test_a_killed_rank_ends_the_run_with_a_clear_error_on_rank_0(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    ranks = _spawn(tiny_checkpoint, tmp_path / "out", "--fail", "kill")
    try:
        assert ranks[0].wait(30) == 1
    finally:
        _end(ranks)
    out = tmp_path / "out"
    error = json.loads((out / "error.json").read_text())
    assert error["type"] == "RankLostError"
    assert error["message"].startswith("A process of the distributed group stopped")
    assert "start every process again with mlx.launch" in error["message"]
    failed_at = json.loads((out / "failed_at.json").read_text())
    assert error["time"] - failed_at < 5.0
    assert ranks[1].returncode == -signal.SIGKILL
    assert not (out / "tokens.json").exists()


def test_a_frozen_rank_ends_the_run_after_the_step_timeout(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    """SIGSTOP keeps the peer's sockets open, as a Mac that lost its cable would: no error ever
    comes from the ring, and the watchdog must end rank 0."""
    ranks = _spawn(tiny_checkpoint, tmp_path / "out", "--fail", "stop", "--timeout", "2")
    try:
        assert ranks[0].wait(30) == EXIT_PEER_SILENT
        ended = time.time()
    finally:
        _end(ranks)
    out = tmp_path / "out"
    waited = ended - json.loads((out / "failed_at.json").read_text())
    assert 2.0 <= waited < 6.0
    log = (out / "rank0.log").read_text()
    assert "A process of the distributed group has not answered for 2 s" in log
    assert not (out / "tokens.json").exists()


def test_a_rank_that_never_starts_ends_rank_0_after_the_connect_timeout(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    port = free_ports(2, 45000)
    hosts = tmp_path / "hosts.json"
    hosts.write_text(json.dumps([[f"127.0.0.1:{port}"], [f"127.0.0.1:{port + 1}"]]))
    args = [*_check(tiny_checkpoint, tmp_path / "out"), "--connect-timeout", "1"]
    env = os.environ | {"MLX_HOSTFILE": str(hosts), "MLX_RANK": "0"}
    alone = subprocess.run(
        [sys.executable, "-m", *args], env=env, capture_output=True, text=True, timeout=30
    )
    # MLX holds the GIL while it connects: a sentinel process ends rank 0 (SIGKILL) and says why
    assert alone.returncode == -signal.SIGKILL
    assert "has not answered for 1 s while the processes connect to each other" in alone.stderr
