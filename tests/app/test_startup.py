"""Start-up in fresh processes (issue 15): the window is painted before MLX, mlx-lm or the model
are imported; the engine thread imports them, and never transformers or torch; a second launch
hands its files over without importing any of them. Times are for benchmarks/startup.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from app.startup_trace import TRACE_ENV
from app.startup_trace import read as read_trace

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 60.0


def _launch(trace: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", TRACE_ENV: str(trace)}
    return subprocess.Popen(
        [sys.executable, "-m", "app.main", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_for(trace: Path, event: str, proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = read_trace(trace).get(event)
        if found is not None:
            return found
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            pytest.fail(f"the app exited ({proc.returncode}) before {event}:\n{err[-3000:]}")
        time.sleep(0.05)
    pytest.fail(f"no {event} within {WAIT_S} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_the_window_comes_before_mlx_and_a_second_launch_hands_over(
    tmp_path: Path, model_dir: Path
) -> None:
    trace = tmp_path / "first.jsonl"
    data = tmp_path / "data"
    first = _launch(trace, "--model", str(model_dir), "--data-dir", str(data))
    try:
        ready = _wait_for(trace, "model_ready", first)
        shown = read_trace(trace)["window_shown"]
        assert shown["heavy"] == [], "imported before the window was shown"
        assert shown["t"] <= ready["t"]
        assert "mlx" in ready["heavy"], "the engine thread loaded a model without MLX?"
        assert "transformers" not in ready["heavy"]
        assert "torch" not in ready["heavy"]

        note = tmp_path / "note.txt"
        note.write_text("hand me over", encoding="utf-8")
        second_trace = tmp_path / "second.jsonl"
        second = _launch(second_trace, "--data-dir", str(data), str(note))
        assert second.wait(timeout=WAIT_S) == 0
        handed = read_trace(second_trace)
        assert set(handed) == {"handed_over"}, "the second launch opened a window of its own"
        assert handed["handed_over"]["heavy"] == []
    finally:
        _stop(first)


def test_the_command_line_offers_every_memory_profile() -> None:
    from app.arguments import PROFILES
    from app.settings import Profile

    assert tuple(p.value for p in Profile) == PROFILES
