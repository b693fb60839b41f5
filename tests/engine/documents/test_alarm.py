"""The per-step time limit: armed only where a process-wide timer is free, and always disarmed."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
# Enter engine.documents without engine/__init__.py (MLX: seconds), as the reader process does.
PRELUDE = """
import sys, types
engine = types.ModuleType("engine")
engine.__path__ = ["engine"]
sys.modules["engine"] = engine
"""

BUSY_MAIN_THREAD = """
import signal, time
from engine.documents.alarm import Expired, time_limit
began = time.monotonic()
try:
    with time_limit(0.2) as armed:
        while True:  # pure Python, as a parser is: only a signal can stop it
            pass
except Expired:
    print(armed, round(time.monotonic() - began, 1))
print(signal.getitimer(signal.ITIMER_REAL), signal.getsignal(signal.SIGALRM) is signal.SIG_DFL)
"""

TIMER_TAKEN = """
import signal
from engine.documents.alarm import time_limit
signal.signal(signal.SIGALRM, lambda *args: None)  # someone else's timer, e.g. a test runner's
with time_limit(0.01) as armed:
    print(armed)
"""


def _run(code: str) -> list[str]:
    run = subprocess.run(
        [sys.executable, "-c", PRELUDE + code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    return run.stdout.splitlines()


def test_a_busy_loop_in_the_main_thread_is_stopped_and_the_timer_restored() -> None:
    stopped, after = _run(BUSY_MAIN_THREAD)

    armed, seconds = stopped.split()
    assert armed == "True"
    assert 0.2 <= float(seconds) < 1.0
    assert after == "(0.0, 0.0) True"


def test_a_timer_someone_else_set_is_left_alone() -> None:
    assert _run(TIMER_TAKEN) == ["False"]


def test_outside_the_main_thread_the_block_runs_unbounded() -> None:
    from engine.documents.alarm import time_limit

    seen: list[bool] = []

    def worker() -> None:
        with time_limit(0.01) as armed:
            seen.append(armed)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [False]
