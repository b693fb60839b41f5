"""The process group and the messages rank 0 sends the others, with a bound on every wait.

MLX's ring backend raises "connection to a peer was lost" within milliseconds when a peer's
process dies (its sockets are closed), and that becomes a RankLostError here. A peer that stops
without closing its sockets (a frozen process, a Mac that lost power or its cable) would block an
all-sum forever, and MLX has no timeout for it; so every step of rank 0 runs under a watchdog that
ends the process with a message naming the timeout, since a collective stuck inside MLX cannot be
interrupted and the group cannot be rebuilt in the same process.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import mlx.core as mx

from engine.errors import EngineError

log = logging.getLogger(__name__)
DEFAULT_STEP_TIMEOUT = 120.0  # seconds: far above one prefill chunk of gpt-oss-120b on two Macs
DEFAULT_CONNECT_TIMEOUT = 120.0  # seconds for every process of the group to start and connect
EXIT_PEER_SILENT = 75  # EX_TEMPFAIL: the run can be restarted as it was
RECIPE = "start every process again with mlx.launch."


class DistributedError(EngineError):
    """The distributed group cannot start or cannot run this model."""


class RankLostError(DistributedError):
    """A process of the group died or dropped its connection mid-run."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"A process of the distributed group stopped ({detail}): {RECIPE} The answer in "
            "progress is lost; the group cannot continue without that process."
        )


def init_group(
    backend: str = "ring", connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
) -> mx.distributed.Group:
    """This process's group, as mlx.launch configured it (MLX_HOSTFILE and MLX_RANK); a group
    of one when the process was started alone (or by mlx.launch with one host). A peer that
    never connects ends the process after `connect_timeout` seconds (the ring waits forever)."""
    hostfile = os.environ.get("MLX_HOSTFILE")
    if backend == "ring" and (not hostfile or os.path.getsize(hostfile) <= 1):
        return mx.distributed.init(strict=False)  # mlx.launch -n 1 writes an empty hostfile
    try:
        with _guarded_by_process(connect_timeout, "the processes connect to each other"):
            return mx.distributed.init(strict=True, backend=backend)
    except RuntimeError as e:
        raise DistributedError(
            f"The distributed group could not start with the {backend} backend: {e}. "
            "Launch every process with mlx.launch (e.g. mlx.launch -n 2 --backend ring ...)."
        ) from e


# MLX holds the GIL while the ring connects, so no thread of ours can run until it returns; this
# process ends ours instead unless stdin closes (connected, or we died) within the timeout.
_SENTINEL = """
import os, select, signal, sys
parent, timeout, message = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
if not select.select([sys.stdin], [], [], timeout)[0]:
    sys.stderr.write(message + "\\n")
    sys.stderr.flush()
    os.kill(parent, signal.SIGKILL)
"""


@contextmanager
def _guarded_by_process(timeout: float, what: str) -> Iterator[None]:
    sentinel = subprocess.Popen(
        [sys.executable, "-c", _SENTINEL, str(os.getpid()), str(timeout), _silence(timeout, what)],
        stdin=subprocess.PIPE,
    )
    try:
        yield
    finally:
        assert sentinel.stdin is not None
        sentinel.stdin.close()
        sentinel.wait()


def _silence(timeout: float, what: str) -> str:
    return (
        f"A process of the distributed group has not answered for {timeout:g} s while {what}: "
        f"check that every Mac of the group is awake and connected, then {RECIPE} The run is "
        "ended."
    )


class Watchdog:
    """Calls `on_expire` (by default: report and exit) when an armed step outlives its timeout."""

    def __init__(self, timeout: float, on_expire: Callable[[str], None] | None = None) -> None:
        self.timeout = timeout
        self._on_expire = on_expire or _exit_silent_peer
        self._deadline: float | None = None
        self._what = ""
        self._wake = threading.Condition()
        threading.Thread(target=self._watch, name="distributed-watchdog", daemon=True).start()

    @contextmanager
    def armed(self, what: str) -> Iterator[None]:
        with self._wake:
            self._deadline, self._what = time.monotonic() + self.timeout, what
            self._wake.notify()
        try:
            yield
        finally:
            with self._wake:
                self._deadline = None

    def _watch(self) -> None:
        with self._wake:
            while True:
                if self._deadline is None:
                    self._wake.wait()
                    continue
                left = self._deadline - time.monotonic()
                if left > 0:
                    self._wake.wait(left)
                    continue
                self._deadline = None
                self._on_expire(_silence(self.timeout, self._what))


def _exit_silent_peer(message: str) -> None:
    log.critical("%s", message)  # without logging configured, Python prints it to stderr
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(EXIT_PEER_SILENT)  # the main thread is blocked inside MLX and cannot be woken


class Link:
    """Rank 0's orders to the other ranks: small int32 arrays all-summed from rank 0 outward."""

    def __init__(self, group: mx.distributed.Group, watchdog: Watchdog | None = None) -> None:
        self.group = group
        self.watchdog = watchdog

    @property
    def rank(self) -> int:
        return self.group.rank()

    def share(self, values: list[int] | mx.array | None, shape: tuple[int, ...]) -> mx.array:
        """Rank 0's `values` on every rank (the others pass None): an all-sum with zeros."""
        if self.rank == 0:
            assert values is not None
            mine = mx.array(values, dtype=mx.int32).reshape(shape)
        else:
            mine = mx.zeros(shape, dtype=mx.int32)
        out = mx.distributed.all_sum(mine, group=self.group)
        mx.eval(out)
        return out

    @contextmanager
    def step(self, what: str) -> Iterator[None]:
        """One exchange: bounded by the watchdog, a lost peer raised as RankLostError."""
        try:
            if self.watchdog is None:
                yield
            else:
                with self.watchdog.armed(what):
                    yield
        except RuntimeError as e:
            if "[ring]" in str(e) or "peer" in str(e):
                raise RankLostError(str(e).removeprefix("[ring] ")) from e
            raise
