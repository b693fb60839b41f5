"""The python tool's interpreter process: enters the sandbox, then runs cells until the app
hangs up.

    python -I engine/tools/python/child.py CONFIG_JSON     (from engine.tools.python.session)
    OSS Desk --python-tool CONFIG_JSON                     (the bundled app: packaging/entry.py)

Requests come as frames on fd 0 and replies go as frames on fd 1 (protocol.py); the first reply
says whether the sandbox is ready and where its folders are. Nothing from `engine` is imported at
module level: engine/__init__.py imports MLX (seconds, and address space the memory limit counts),
so the packages on the way here are entered bare.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any

EXIT_MEMORY = 3  # macOS: the memory watchdog ended the process
_WATCH_S = 0.05
_ROOT = Path(__file__).resolve().parents[3]


def enter_bare_packages(root: Path = _ROOT) -> None:
    """Makes `engine.tools.python.*` importable without running the packages' __init__ files."""
    for name in ("engine", "engine.tools", "engine.tools.python"):
        package = types.ModuleType(name)
        package.__path__ = [str(root.joinpath(*name.split(".")))]
        sys.modules.setdefault(name, package)


def main(argv: list[str]) -> int:
    enter_bare_packages()
    from engine.tools.python.limits import PythonLimits
    from engine.tools.python.protocol import write_frame

    config: dict[str, Any] = json.loads(argv[0])
    os.set_inheritable(int(config["lifeline"]), False)  # the cell's subprocesses need not hold it
    limits = PythonLimits.from_dict(config["limits"])
    try:
        if config["sandbox"] == "linux":
            from engine.tools.python.linux import enter

            folder = enter(
                config["work"],
                config["documents"],
                config["hidden"],
                config["readable"],
                config["lifeline"],
            )
        else:  # macOS: sandbox-exec started this process with the profile already applied
            folder = config["work"]
            os.chdir(folder)
        os.environ.update(HOME=folder, TMPDIR=folder, PWD=folder)
        from engine.tools.python.repl import limit_resources

        limit_resources(limits)
    except OSError as e:
        write_frame(1, {"error": str(e)})
        return 1
    # The protocol gets fds of its own; a cell's prints and a subprocess's output go to 1 and 2.
    requests, replies = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    ready = {"ready": True, "folder": folder, "documents": f"{folder}/documents"}
    write_frame(replies, {**ready, "python": sys.version.split()[0]})
    if config.get("probe"):
        return 0
    _watch_lifeline(int(config["lifeline"]))
    if sys.platform == "darwin":
        _watch_memory(limits.memory_bytes)
    from engine.tools.python.repl import Notebook

    Notebook(limits).serve(requests, replies)
    return 0


def _watch_lifeline(fd: int) -> None:
    """The app holds the other end of this pipe: when it is gone, however it ended (a crash, a
    kill), so is the interpreter, even in the middle of a cell."""

    def watch() -> None:
        while os.read(fd, 1):
            pass
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="lifeline").start()


def _watch_memory(limit: int) -> None:
    """macOS ignores RLIMIT_AS: end the interpreter once its peak size passes the limit."""

    def watch() -> None:
        while resource.getrusage(resource.RUSAGE_SELF).ru_maxrss <= limit:  # bytes on macOS
            time.sleep(_WATCH_S)
        os._exit(EXIT_MEMORY)

    threading.Thread(target=watch, daemon=True, name="memory watchdog").start()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
