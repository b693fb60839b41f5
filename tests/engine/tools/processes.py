"""Looking at a python tool's processes from the host, to prove they end."""

from __future__ import annotations

import time
from pathlib import Path

from engine.tools.python import PythonTool


def inside_pid(tool: PythonTool) -> int:
    """The host's pid of the interpreter inside the sandbox (pid 1 of its namespace)."""
    outside = tool.pid
    assert outside is not None
    return int(Path(f"/proc/{outside}/task/{outside}/children").read_text().split()[0])


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"
    except OSError:
        return False


def wait_ended(*pids: int, seconds: float = 2.0) -> bool:
    """Whether all of `pids` end within `seconds` (a death signal takes a moment)."""
    deadline = time.monotonic() + seconds
    while any(running(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
