"""The notebook inside the interpreter process: one namespace kept between cells, each cell's
output captured, the last expression's value shown, exceptions as traceback text.

Output is captured at the file-descriptor level (fds 1 and 2 are one pipe drained by a thread),
so a subprocess's or a C library's writes are kept too. Only both
ends of a huge output are kept, so printing in a loop cannot exhaust the process's memory.
Standard library only: the interpreter process imports this without the engine package.
"""

from __future__ import annotations

import ast
import builtins
import codecs
import contextlib
import errno
import io
import linecache
import os
import resource
import secrets
import signal
import sys
import threading
import traceback
from types import FrameType
from typing import Any

from engine.tools.python.limits import PythonLimits
from engine.tools.python.protocol import read_frame, write_frame

_CHUNK = 1 << 16
_DRAIN_WAIT_S = 5.0  # how long a cell's last output may take to come through the pipe


class Capture:
    """The head and the tail of everything written to fds 1 and 2, up to `keep` characters each."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._lock = threading.Lock()
        self._head: list[str] = []
        self._head_size = 0
        self._tail = ""
        self.dropped = 0
        self._marker = ""
        self._pending = ""
        self._seen = threading.Event()

    def expect(self, marker: str) -> threading.Event:
        with self._lock:
            self._marker = marker
            self._seen.clear()
            return self._seen

    def feed(self, text: str) -> None:
        with self._lock:
            text = self._pending + text
            self._pending = ""
            if self._marker:
                at = text.find(self._marker)
                if at >= 0:
                    self._add(text[:at])
                    text = text[at + len(self._marker) :]
                    self._marker = ""
                    self._seen.set()
                else:  # keep what could be the start of a marker split across reads
                    cut = max(len(text) - len(self._marker) + 1, 0)
                    self._pending = text[cut:]
                    text = text[:cut]
            self._add(text)

    def take(self) -> tuple[str, str, int]:
        """(head, tail, characters dropped between them) since the last take."""
        with self._lock:
            head, tail, dropped = "".join(self._head), self._tail, self.dropped
            self._head, self._head_size, self._tail, self.dropped = [], 0, "", 0
            return head, tail, dropped

    def _add(self, text: str) -> None:
        room = self.keep - self._head_size
        if room > 0:
            self._head.append(text[:room])
            self._head_size += min(room, len(text))
            text = text[room:]
        if text:
            tail = self._tail + text
            self.dropped += max(len(tail) - self.keep, 0)
            self._tail = tail[-self.keep :]


def limit_resources(limits: PythonLimits) -> None:
    """Limits for the whole interpreter; CPU time is set again before each cell."""
    if sys.platform.startswith("linux"):  # macOS ignores RLIMIT_AS; child.py watches it there
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-large write fails instead of killing
    signal.signal(signal.SIGXCPU, _cpu_exceeded)


class CPUTimeLimitError(Exception):
    """The cell used more CPU time than a call may."""


def _cpu_exceeded(_signum: int, _frame: FrameType | None) -> None:
    raise CPUTimeLimitError("the CPU time limit of this call was reached")


class Notebook:
    """Runs cells in one namespace; `serve` answers the app's requests until it hangs up."""

    def __init__(self, limits: PythonLimits) -> None:
        self.limits = limits
        self.namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
        self.capture = Capture(limits.output_chars)
        self._cells = 0
        self._in_cell = False
        self._pid = os.getpid()

    def serve(self, requests: int, replies: int) -> None:
        os.register_at_fork(after_in_child=lambda: _close(requests, replies))
        self._capture_fds()
        signal.signal(signal.SIGINT, self._interrupt)
        while (request := read_frame(requests)) is not None:
            write_frame(replies, self.run(str(request.get("code", ""))))

    def run(self, code: str) -> dict[str, Any]:
        """One cell: its output and whether it raised (and which limit, if one was reached)."""
        self._cells += 1
        used = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
        hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
        resource.setrlimit(resource.RLIMIT_CPU, (int(used) + self.limits.cpu_seconds, hard))
        error = self._execute(code, f"<cell {self._cells}>")
        if os.getpid() != self._pid:
            os._exit(0)  # a process the cell forked has come back here: it must not reply
        _kill_strays()
        sys.stdout.flush()
        sys.stderr.flush()
        marker = f"\0cell-end-{secrets.token_hex(8)}\0"
        seen = self.capture.expect(marker)
        try:
            os.write(1, marker.encode())
            seen.wait(_DRAIN_WAIT_S)
        except OSError:  # the cell closed fd 1: what came through so far is all there is
            pass
        head, tail, dropped = self.capture.take()
        return {"head": head, "tail": tail, "dropped": dropped, "error": error}

    def _execute(self, code: str, filename: str) -> str | None:
        """Runs the cell; None, or the kind of failure: exception, memory, processes, cpu."""
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        try:
            tree = ast.parse(code, filename, "exec")
        except (SyntaxError, ValueError) as e:
            sys.stderr.write("".join(traceback.format_exception_only(type(e), e)))
            return "exception"
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body[-1].value)
            tree.body.pop()
        try:
            self._in_cell = True
            exec(compile(tree, filename, "exec"), self.namespace)
            if last is not None:
                value = eval(compile(last, filename, "eval"), self.namespace)
                if value is not None:
                    self.namespace["_"] = value
                    print(repr(value))
        except BaseException as e:  # the cell's failure is its output, as in a notebook
            self._in_cell = False
            if os.getpid() != self._pid:
                os._exit(1)
            traceback.print_exception(
                type(e), e, e.__traceback__.tb_next if e.__traceback__ else None
            )
            return _kind(e)
        finally:
            self._in_cell = False
        return None

    def _interrupt(self, _signum: int, _frame: FrameType | None) -> None:
        if self._in_cell:  # Stop: between cells a late SIGINT is ignored
            raise KeyboardInterrupt

    def _capture_fds(self) -> None:
        read_end, write_end = os.pipe()
        os.dup2(write_end, 1)
        os.dup2(write_end, 2)
        os.close(write_end)
        thread = threading.Thread(target=_drain, args=(read_end, self.capture), daemon=True)
        thread.start()
        # One buffer behind both streams keeps prints and tracebacks in order; block-buffered
        # because a pipe write per print() makes a printing loop 40 times slower.
        shared = io.BufferedWriter(io.FileIO(1, "w", closefd=False), buffer_size=_CHUNK)
        for name in ("stdout", "stderr"):
            stream = io.TextIOWrapper(
                shared, encoding="utf-8", errors="backslashreplace", write_through=True
            )
            setattr(sys, name, stream)
            setattr(sys, f"__{name}__", stream)


def _drain(fd: int, capture: Capture) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    while chunk := os.read(fd, _CHUNK):
        capture.feed(decoder.decode(chunk))


def _kind(e: BaseException) -> str:
    if isinstance(e, MemoryError):
        return "memory"
    if isinstance(e, CPUTimeLimitError):
        return "cpu"
    if isinstance(e, BlockingIOError) and e.errno == errno.EAGAIN:
        return "processes"  # fork() at the process limit
    if isinstance(e, RuntimeError) and "can't start new thread" in str(e):
        return "processes"
    if isinstance(e, KeyboardInterrupt):
        return "interrupted"
    return "exception"


def _kill_strays() -> None:
    if sys.platform.startswith("linux"):
        from engine.tools.python.linux import kill_strays

        kill_strays()


def _close(*fds: int) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
