"""A time limit for one step of pure-Python parsing, where a process-wide timer is free to use.

pypdf cannot be told to stop, but an exception raised by a SIGALRM handler interrupts it between
two bytecodes. That needs the main thread, and a timer nobody else has set: the reader process
(engine/documents/child.py) has both. Elsewhere (a test runner's own timeout, a worker thread)
the block just runs unbounded, and only the reader process's wall time limit applies.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Expired(BaseException):
    """The time ran out. A BaseException, like KeyboardInterrupt: parsers catch Exception
    around their own steps and would carry on."""


@contextmanager
def time_limit(seconds: float) -> Iterator[bool]:
    """Raise Expired in the block after `seconds`; yields whether the limit is armed."""
    if not _timer_free():
        yield False
        return

    def expire(signum: int, frame: FrameType | None) -> None:
        raise Expired

    previous = signal.signal(signal.SIGALRM, expire)
    # Fire again after a while too, in case something swallowed the first one.
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _timer_free() -> bool:
    return (
        hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, None)
        and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    )
