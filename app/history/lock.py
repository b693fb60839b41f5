"""One writing process per history file: an exclusive lock on `<file>.lock` beside it.

flock() locks belong to an open file, and the kernel drops them when the process that holds them
exits, however it exits (SIGKILL, a crash, a power cut), so no stale lock can stay behind. The
file also holds the owner's pid, for the message a second process shows.

Within one process the lock is shared: the UI thread's store and the engine thread's store are
the same writer. Two flock()s on two descriptors of one file would refuse each other even inside
one process, so the file is opened once per process and its users are counted.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

# A bounded wait for another process to let go; flock() has no timeout of its own.
POLL_S = 0.05


class LockHeld(Exception):
    """Another process holds the lock (owner_pid is None when it has not written its pid yet)."""

    def __init__(self, path: Path, owner_pid: int | None) -> None:
        self.path = path
        self.owner_pid = owner_pid
        who = f"process {owner_pid}" if owner_pid else "another process"
        super().__init__(f"{path} is locked by {who}")


@dataclass
class _Held:
    fd: int
    count: int


_held: dict[str, _Held] = {}
# Held during a whole acquisition, waits included: two threads of one process must not both open
# the file, or the second flock() would wait for the first one forever.
_guard = threading.Lock()
_token = secrets.token_hex(8)


def writer_token() -> str:
    """Names this process in the rows it streams; unique per process, never reused."""
    return f"{os.getpid()}-{_token}"


class ProcessLock:
    """This process's share of the lock on one history file; release() once when done."""

    def __init__(self, key: str) -> None:
        self.path = Path(key)
        self._released = False

    def release(self) -> None:
        with _guard:
            if self._released:
                return
            self._released = True
            held = _held.get(str(self.path))
            if held is None:  # inherited by a fork()ed child, which closed its copy
                return
            held.count -= 1
            if held.count == 0:
                del _held[str(self.path)]
                os.close(held.fd)  # closing the last descriptor is what unlocks


def acquire(path: Path | str, *, wait_s: float = 0.0) -> ProcessLock:
    """Lock `path` for this process, waiting up to wait_s for another process to let go.

    LockHeld when another process still holds it after wait_s; OSError when the file cannot be
    created or the file system refuses locks.
    """
    key = os.path.realpath(path)
    with _guard:
        held = _held.get(key)
        if held is None:
            held = _Held(_lock(key, wait_s), 0)
            _held[key] = held
        held.count += 1
    return ProcessLock(key)


def _lock(key: str, wait_s: float) -> int:
    fd = os.open(key, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
            if time.monotonic() >= deadline:
                raise LockHeld(Path(key), _owner(fd))
            time.sleep(POLL_S)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _owner(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _forget_in_child() -> None:
    # A fork()ed child shares the parent's locked file; its copy is closed so that the lock still
    # ends with the parent (a child is never the writer), and it gets a token of its own.
    global _guard, _token
    _guard = threading.Lock()  # another thread of the parent may have held it at fork()
    for held in _held.values():
        os.close(held.fd)
    _held.clear()
    _token = secrets.token_hex(8)


os.register_at_fork(after_in_child=_forget_in_child)
