"""gpt-oss's `python` tool: a stateful interpreter per chat, in a sandbox (ToolProvider).

The interpreter starts on the first call and keeps its variables until the chat closes it; a call
that runs too long or is killed restarts it, and the result says the state was lost. Its work
folder (a private temporary folder, `/mnt/data` inside the Linux sandbox, as gpt-oss's python
description promises) keeps files across restarts and is removed by `close()`; attached documents
are copied into its read-only `documents` folder. Results are shaped like the reference tool's:
the output as the interpreter printed it, errors as traceback text, a bracketed note otherwise.
"""

from __future__ import annotations

import functools
import os
import shutil
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from engine.harmony import ToolDescription, ToolNamespace, python_namespace
from engine.tools.base import ToolOutcome, truncate_output
from engine.tools.python import macos
from engine.tools.python.child import EXIT_MEMORY
from engine.tools.python.limits import NOBODY, MiB, PythonLimits
from engine.tools.python.session import (
    CellReply,
    Interpreter,
    Lost,
    SandboxKind,
    SandboxUnavailableError,
)

NO_OUTPUT = (
    "[The code ran and printed nothing. Use print(), or end the code with an expression, "
    "to see a value.]"
)
_STATE_LOST = (
    "The Python session was restarted: variables and imports from earlier calls are gone; "
    "files in the work folder remain."
)


def sandbox_kind() -> SandboxKind | None:
    """The sandbox this computer can offer, by platform; None if there is none."""
    if sys.platform.startswith("linux"):
        return "linux"
    if macos.sandbox_available():
        return "macos"
    return None


@functools.cache
def _probe(kind: SandboxKind | None) -> str | None:
    if kind is None:
        return (
            "Python is not available: this computer offers no sandbox to run it in "
            "(it needs macOS's sandbox-exec or Linux user namespaces)."
        )
    with tempfile.TemporaryDirectory(prefix="oss-desk-python-probe-") as folder:
        work = Path(folder)
        documents = _make_folders(work)
        try:
            Interpreter(kind, work, documents, PythonLimits(), probe=True).kill()
        except (SandboxUnavailableError, OSError) as e:
            return str(e)
    return None


def _make_folders(work: Path) -> Path:
    documents = work / "documents"
    documents.mkdir()
    if os.geteuid() == 0:  # the Linux sandbox runs root's interpreter as nobody (linux.py)
        os.chown(work, NOBODY, NOBODY)
    return documents


class PythonTool:
    """One chat's python tool; `call` runs on the engine thread, `close` from any thread."""

    def __init__(
        self,
        limits: PythonLimits | None = None,
        *,
        hidden: Iterable[str | Path] = (),
        kind: SandboxKind | None = None,
    ) -> None:
        """`hidden`: more folders the sandbox must not see (the app's data folder)."""
        self.limits = limits or PythonLimits()
        self._kind = kind or sandbox_kind()
        self._hidden = tuple(os.path.realpath(path) for path in hidden)
        self.work_folder = Path(tempfile.mkdtemp(prefix="oss-desk-python-"))
        self.documents_folder = _make_folders(self.work_folder)
        self._lock = threading.Lock()
        self._interpreter: Interpreter | None = None
        self._closed = False

    @staticmethod
    def availability() -> str | None:
        """None if the tool can be offered; otherwise why not, as a sentence for the user.
        Runs a sandboxed interpreter once per process (about 0.1 s)."""
        return _probe(sandbox_kind())

    def system_namespaces(self) -> tuple[ToolNamespace, ...]:
        return (python_namespace(),)

    def functions(self) -> tuple[ToolDescription, ...]:
        return ()

    def handles(self, recipient: str) -> bool:
        return recipient == "python" or recipient.startswith("python.")

    def needs_approval(self, recipient: str) -> bool:
        return True

    @property
    def documents_path(self) -> str:
        """Where the code finds the attached documents: /mnt/data/documents in the Linux sandbox,
        the real folder under macOS's profile (which does not move paths)."""
        return f"{self._sandbox_folder()}/documents"

    def attach(self, paths: Iterable[str | Path]) -> list[str]:
        """Copies documents in, read-only (also while the interpreter runs); returns their paths
        as the code sees them. A later document with the same name replaces the earlier one."""
        seen: list[str] = []
        for path in paths:
            source = Path(path)
            target = self.documents_folder / source.name
            target.unlink(missing_ok=True)  # an earlier copy is read-only
            shutil.copyfile(source, target)
            target.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
            seen.append(f"{self.documents_path}/{source.name}")
        return seen

    def call(self, recipient: str, arguments: str, cancel: threading.Event) -> ToolOutcome:
        started = time.monotonic()
        with self._lock:
            if self._closed:
                return _outcome("[ERROR] This chat's Python session has been closed.", started)
            interpreter = self._interpreter
            ended = interpreter is not None and not interpreter.alive()
            if interpreter is not None and ended:
                interpreter.kill()  # reaps it and closes its pipes
            if interpreter is None or ended:
                try:
                    interpreter = self._interpreter = self._start()
                except (SandboxUnavailableError, OSError) as e:
                    return _outcome(f"[ERROR] {e}", started)
        result = interpreter.run(arguments, self.limits.seconds, cancel)
        if isinstance(result, Lost):
            with self._lock:
                if self._interpreter is interpreter:
                    self._interpreter = None
            return _outcome(self._lost_text(result), started)
        outcome = self._reply_outcome(result, started)
        if ended:  # it died between calls (the system ended it): the model must not assume state
            note = "[The Python session had ended and was started again. "
            outcome = replace(outcome, text=f"{note}{_STATE_LOST}]\n{outcome.text}")
        return outcome

    def close(self) -> None:
        with self._lock:
            self._closed = True
            interpreter, self._interpreter = self._interpreter, None
        if interpreter is not None:
            interpreter.kill()
        if self.work_folder.exists():
            _remove(self.work_folder)

    @property
    def pid(self) -> int | None:
        """The interpreter's process, while one runs (for tests and diagnostics)."""
        interpreter = self._interpreter
        return interpreter.pid if interpreter is not None and interpreter.alive() else None

    def _start(self) -> Interpreter:
        if self._kind is None:
            raise SandboxUnavailableError(_probe(None) or "no sandbox")
        return Interpreter(
            self._kind, self.work_folder, self.documents_folder, self.limits, self._hidden
        )

    def _sandbox_folder(self) -> str:
        if self._interpreter is not None:
            return self._interpreter.folder
        if self._kind == "linux":
            from engine.tools.python.linux import sandbox_folder

            return sandbox_folder()
        return str(self.work_folder)

    def _reply_outcome(self, reply: CellReply, started: float) -> ToolOutcome:
        limit = self.limits.output_chars
        # Beyond 2 x the output cap the interpreter kept only both ends, so the cut note counts
        # what reached the app; the model still sees that the middle is missing.
        text, truncated = truncate_output(reply.head + reply.tail, limit)
        truncated = truncated or reply.dropped > 0
        notes = {
            "memory": f"[ERROR] The code ran out of memory: the limit is "
            f"{self.limits.memory_bytes // MiB:,} MB.",
            "processes": f"[ERROR] The code started too many processes or threads: the limit is "
            f"{self.limits.processes}.",
            "cpu": f"[ERROR] The code used more than {self.limits.cpu_seconds} s of CPU time.",
            "interrupted": "[Stopped by the user.]",
        }
        note = notes.get(reply.error or "")
        if note:
            text = f"{text.rstrip()}\n{note}" if text.strip() else note
        elif not text.strip():
            text = NO_OUTPUT
        return ToolOutcome(
            text=text,
            is_error=reply.error is not None,
            duration_s=time.monotonic() - started,
            truncated=truncated,
        )

    def _lost_text(self, lost: Lost) -> str:
        if lost.reason == "timeout":
            return (
                f"[ERROR] The code was still running after {self.limits.seconds:g} s and was "
                f"stopped. {_STATE_LOST}"
            )
        if lost.reason == "cancelled":
            return f"[Stopped by the user.] {_STATE_LOST}"
        if lost.exit_status == EXIT_MEMORY:
            return (
                f"[ERROR] The code ran out of memory: the limit is "
                f"{self.limits.memory_bytes // MiB:,} MB. {_STATE_LOST}"
            )
        return (
            f"[ERROR] The Python process ended unexpectedly (exit status {lost.exit_status}). "
            f"{_STATE_LOST}"
        )


def _outcome(text: str, started: float) -> ToolOutcome:
    return ToolOutcome(text=text, is_error=True, duration_s=time.monotonic() - started)


def _remove(folder: Path) -> None:
    if sys.version_info >= (3, 12):
        shutil.rmtree(folder, onexc=_make_removable)
    else:
        shutil.rmtree(folder, onerror=_make_removable)


def _make_removable(function: object, path: str, _error: object) -> None:
    """rmtree's error hook: code in the sandbox may have made a folder read-only."""
    parent = os.path.dirname(path)
    os.chmod(parent, stat.S_IRWXU)
    if os.path.isdir(path) and not os.path.islink(path):
        os.chmod(path, stat.S_IRWXU)
        shutil.rmtree(path, ignore_errors=True)
    else:
        os.unlink(path)
