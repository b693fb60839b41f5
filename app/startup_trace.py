"""Start-up milestones, for benchmarks/startup.py and the start-up tests.

With OSS_DESK_STARTUP_TRACE set to a file, each milestone appends one JSON line: the event, the
wall-clock time (so a parent process can subtract its own spawn time) and which of the heavy
modules are imported by then (the window must come before any of them). Without it, nothing.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

TRACE_ENV = "OSS_DESK_STARTUP_TRACE"
HEAVY_MODULES = ("mlx", "mlx_lm", "transformers", "torch")


def mark(event: str) -> None:
    path = os.environ.get(TRACE_ENV)
    if not path:
        return
    line = {
        "event": event,
        "t": time.time(),
        "heavy": [m for m in HEAVY_MODULES if m in sys.modules],
    }
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
    except OSError:
        pass  # a trace must never stop the app


def read(path: Path) -> dict[str, dict[str, Any]]:
    """The milestones written to `path` so far, by event (for the benchmark and the tests)."""
    if not path.exists():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    return {e["event"]: e for e in map(json.loads, lines)}
