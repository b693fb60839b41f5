"""The reader process: reads one document under limits and writes one JSON reply, then exits.

    python -P engine/documents/child.py REQUEST_JSON        (from engine.documents.sandbox)

The reply goes to file descriptor 1 as JSON: {"document": {...}}, {"error": text, "limit": kind}
or {"bug": traceback}. Before reading anything it limits itself: address space (RLIMIT_AS, where
the system enforces it), CPU time and core dumps; a watchdog thread ends it if its peak memory
passes the limit (macOS ignores RLIMIT_AS) or if the app that started it has gone.

Nothing from `engine` is imported at module level: run as a script, it enters engine.documents
without engine/__init__.py, which imports MLX and takes seconds; this way the process is ready in
about 0.2 s.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import sys
import threading
import time
import traceback
import types
from pathlib import Path
from typing import Any

EXIT_MEMORY = 3  # the memory limit was reached
EXIT_ORPHANED = 4  # the app that asked is gone; nobody will read the reply
_WATCH_S = 0.05
_CPU_GRACE_S = 5  # the parent stops the reader on wall time; CPU time only backs it up
_KIB = 1024
_NICENESS = 10


def main(argv: list[str]) -> int:
    request = json.loads(argv[0])
    values: dict[str, Any] = request["limits"]
    memory = int(values["memory_bytes"])
    address_space = bool(request.get("address_space", True))
    _limit_resources(memory, float(values["seconds"]), address_space=address_space)
    # The reply has fd 1 to itself: a library that prints would otherwise corrupt it.
    reply = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    _start_watchdog(memory, int(request.get("parent", os.getppid())))
    # Imported only now, under the limits: a parser's memory counts from the start.
    from engine.documents.extract import extract
    from engine.documents.limits import DocumentLimitError, DocumentLimits
    from engine.errors import UnsupportedDocumentError

    answer: dict[str, Any]
    try:
        document = extract(request["path"], limits=DocumentLimits.from_dict(values))
        answer = {"document": document.to_dict()}
    except MemoryError:
        os._exit(EXIT_MEMORY)  # nothing may allocate now; the exit code says it all
    except DocumentLimitError as e:
        answer = {"error": str(e), "limit": e.limit}
    except UnsupportedDocumentError as e:
        answer = {"error": str(e)}
        if e.__cause__ is not None:  # the parser's words, for the details of a report
            answer["cause"] = f"{type(e.__cause__).__name__}: {e.__cause__}"
    except Exception:  # a defect of ours: the parent reports it as one
        answer = {"bug": traceback.format_exc()}
    answer["peak_rss_bytes"] = peak_rss_of()
    try:
        json.dump(answer, reply, ensure_ascii=False)
        reply.flush()
    except MemoryError:  # a text just under the limits can still be too much to encode
        os._exit(EXIT_MEMORY)
    # Skip the interpreter's teardown of a large heap: the parent waits for the exit.
    os._exit(0)


def _limit_resources(memory: int, seconds: float, *, address_space: bool) -> None:
    os.nice(_NICENESS)  # background work: the app's UI thread comes first for the CPU
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash on a hostile file leaves no dump
    cpu = int(seconds) + _CPU_GRACE_S
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + _CPU_GRACE_S))
    if address_space:
        # macOS refuses or ignores it; the watchdog's peak-size check holds there.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))


def peak_rss_of(pid: int | None = None) -> int | None:
    """The peak resident size of process `pid` (None: this one), where it can be known.

    On Linux ru_maxrss is useless here: exec keeps the high-water mark of the process image it
    replaces, which after posix_spawn is the parent's (the app, with its model: gigabytes). The
    kernel's VmHWM counts only the new image. Other processes' peaks are only known on Linux.
    """
    if sys.platform.startswith("linux"):
        try:
            with open(f"/proc/{pid or 'self'}/status", "rb") as status:
                for line in status:
                    if line.startswith(b"VmHWM:"):
                        return int(line.split()[1]) * _KIB
        except (OSError, ValueError, IndexError):
            return None
        return None
    if pid is not None:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * _KIB  # macOS counts bytes, others KiB


def _start_watchdog(memory: int, parent: int) -> None:
    """`parent` comes with the request: the app may already be gone by the time this runs."""
    # Where the peak might still include the parent's (see peak_rss_of), only growth counts.
    baseline = peak_rss_of() or 0

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(EXIT_ORPHANED)
            peak = peak_rss_of() or 0
            if peak > memory and peak > baseline:
                os._exit(EXIT_MEMORY)
            time.sleep(_WATCH_S)

    threading.Thread(target=watch, name="reader-watchdog", daemon=True).start()


def enter_documents_package(root: Path) -> None:
    """Make `import engine.documents...` work without running engine/__init__.py."""
    if "engine" in sys.modules:
        return
    package = types.ModuleType("engine")
    package.__path__ = [str(root / "engine")]
    sys.modules["engine"] = package


if __name__ == "__main__":
    here = Path(__file__).resolve()
    sys.path.insert(0, str(here.parents[2]))
    enter_documents_package(here.parents[2])
    sys.exit(main(sys.argv[1:]))
