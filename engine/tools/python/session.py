"""The app's side of one interpreter process: start it in its sandbox, run a cell with a deadline
and a cancel event, kill it.

Why a process of our own and not multiprocessing: its "spawn" start re-imports the app's main
module (PySide6, MLX: seconds) and speaks pickle, which the app should not load from a process
that runs code a model wrote. subprocess closes every other descriptor and forks without running
Python in the child, which is safe in the app's threaded process.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from engine.tools.python import macos
from engine.tools.python.limits import PythonLimits
from engine.tools.python.protocol import FrameBuffer, ProtocolError, encode

CHILD_SCRIPT = Path(__file__).with_name("child.py")
FROZEN_FLAG = "--python-tool"  # a bundled app has no python: its own executable runs the cells
STARTUP_S = 15.0  # a cold start on a busy machine; a warm one takes about 0.1 s
INTERRUPT_GRACE_S = 0.06  # after Stop, how long a cell may take to end before it is killed
_POLL_S = 0.02  # how often a waiting call looks at its cancel event
_READ_CHUNK = 1 << 16

SandboxKind = Literal["linux", "macos"]


class SandboxUnavailableError(Exception):
    """The sandbox could not be set up; the message says why, for the user."""


@dataclass(frozen=True)
class CellReply:
    """What the interpreter answered: both ends of the output, and how a failed cell failed."""

    head: str
    tail: str
    dropped: int
    error: str | None  # None, "exception", "memory", "processes", "cpu", "interrupted"


@dataclass(frozen=True)
class Lost:
    """The call ended without a reply and the interpreter, with its state, is gone."""

    reason: Literal["timeout", "cancelled", "crashed"]
    exit_status: int | None = None


def child_command(config: dict[str, Any]) -> list[str]:
    """This interpreter and the script, or the bundled app itself."""
    request = json.dumps(config)
    if getattr(sys, "frozen", False):
        return [sys.executable, FROZEN_FLAG, request]
    # -I: no user site-packages, no PYTHON* variables, not the script's folder on sys.path.
    return [sys.executable, "-I", str(CHILD_SCRIPT), request]


def python_roots() -> list[str]:
    """Where this Python and the app are installed: both sandboxes keep them readable."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(sys.executable)}
    roots.add(str(Path(__file__).resolve().parents[3]))  # the engine package, for child.py
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        roots.add(str(bundle))
    return sorted({os.path.realpath(root) for root in roots})


def minimal_environment() -> dict[str, str]:
    """The app's environment may hold tokens and keys; the interpreter gets none of it."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    # Thread pools sized for a big machine would each reserve address space the limit counts.
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = "2"
    return env


class Interpreter:
    """One running interpreter process; not thread-safe except `kill`."""

    def __init__(
        self,
        kind: SandboxKind,
        work: Path,
        documents: Path,
        limits: PythonLimits,
        hidden: tuple[str, ...] = (),
        *,
        probe: bool = False,
    ) -> None:
        readable = python_roots()
        # The interpreter ends when this pipe does: the app never writes to it, only holds it.
        lifeline, self._lifeline = os.pipe()
        config = {
            "sandbox": kind,
            "lifeline": lifeline,
            "work": str(work),
            "documents": str(documents),
            "hidden": list(hidden),
            "readable": readable,
            "limits": limits.to_dict(),
            "probe": probe,
        }
        command = child_command(config)
        if kind == "macos":
            command = macos.sandbox_command(command, work, documents, readable)
        self.limits = limits
        self._buffer = FrameBuffer()
        try:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=minimal_environment(),
                close_fds=True,
                start_new_session=True,  # Ctrl+C in the app's terminal is not meant for the cell
                pass_fds=(lifeline,),
            )
        except BaseException:
            os.close(self._lifeline)
            raise
        finally:
            os.close(lifeline)
        self._stdout = self._process.stdout
        hello = self._read(time.monotonic() + STARTUP_S, None)
        if not isinstance(hello, dict) or not hello.get("ready"):
            message = self._startup_failure(hello)
            self.kill()
            raise SandboxUnavailableError(message)
        self.folder = str(hello["folder"])
        self.documents = str(hello["documents"])

    @property
    def pid(self) -> int:
        return self._process.pid

    def alive(self) -> bool:
        return self._process.poll() is None

    def run(self, code: str, seconds: float, cancel: threading.Event) -> CellReply | Lost:
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(encode({"code": code}))
            self._process.stdin.flush()
        except OSError:
            return self._lost("crashed")
        reply = self._read(time.monotonic() + seconds, cancel)
        if isinstance(reply, dict):
            return CellReply(
                head=str(reply.get("head", "")),
                tail=str(reply.get("tail", "")),
                dropped=int(reply.get("dropped", 0)),
                error=reply.get("error"),
            )
        if reply == "cancelled":
            # SIGINT raises KeyboardInterrupt in the cell, which keeps the interpreter's state;
            # a cell stuck in C code does not see it in time and is killed.
            self._signal(signal.SIGINT)
            late = self._read(time.monotonic() + INTERRUPT_GRACE_S, None)
            if isinstance(late, dict):
                return CellReply(
                    str(late.get("head", "")), str(late.get("tail", "")), 0, "interrupted"
                )
            return self._lost("cancelled")
        return self._lost("timeout" if reply == "timeout" else "crashed")

    def kill(self) -> None:
        """Ends the process and everything it started (the sandbox's pid namespace ends with it)."""
        self._signal(signal.SIGKILL)
        self._process.wait()
        if self._lifeline >= 0:
            os.close(self._lifeline)
            self._lifeline = -1
        for stream in (self._process.stdin, self._process.stdout, self._process.stderr):
            if stream is not None:
                stream.close()

    def _signal(self, signum: int) -> None:
        if self._process.returncode is None:  # not reaped yet, so the pid is still ours
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(signum)

    def _lost(self, reason: Literal["timeout", "cancelled", "crashed"]) -> Lost:
        self.kill()
        return Lost(reason, self._process.returncode)

    def _read(
        self, deadline: float, cancel: threading.Event | None
    ) -> dict[str, Any] | Literal["timeout", "cancelled", "closed"]:
        assert self._stdout is not None
        fd = self._stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while True:
                try:
                    frame = self._buffer.next_frame()
                except ProtocolError:
                    return "closed"
                if frame is not None:
                    return frame
                if cancel is not None and cancel.is_set():
                    return "cancelled"
                left = deadline - time.monotonic()
                if left <= 0:
                    return "timeout"
                if selector.select(min(left, _POLL_S)):
                    chunk = os.read(fd, _READ_CHUNK)
                    if not chunk:
                        return "closed"
                    self._buffer.feed(chunk)

    def _startup_failure(self, hello: object) -> str:
        if isinstance(hello, dict) and "error" in hello:
            detail = str(hello["error"])
        elif hello == "timeout":
            detail = f"it did not start within {STARTUP_S:g} s"
        else:
            assert self._process.stderr is not None
            try:
                self._process.wait(STARTUP_S)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
            detail = self._process.stderr.read(4000).decode("utf-8", "replace").strip()
            detail = (
                detail.splitlines()[-1] if detail else f"exit status {self._process.returncode}"
            )
        return (
            f"Python is not available: its sandbox could not be set up on this computer ({detail})."
        )
