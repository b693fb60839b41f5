"""Download progress as frozen values, with a speed that neither jumps nor freezes."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Phase = Literal["downloading", "verifying", "retrying", "done"]

# Seconds of history behind the speed: long enough to smooth TCP bursts, short enough that a stall
# shows as a falling speed within seconds (a frozen readout is a known complaint, lms-bt#2370).
SPEED_WINDOW_S = 5.0


@dataclass(frozen=True)
class DownloadProgress:
    """One progress report. Byte counts cover the whole plan, including files present before.

    `eta_s` is None while the speed is unknown or zero. In the "retrying" phase the connection
    was lost and the next attempt waits; in "verifying", `file_done` counts bytes hashed.
    """

    file: str
    file_done: int
    file_total: int
    done_bytes: int
    total_bytes: int
    speed_bytes_per_s: float
    eta_s: float | None
    phase: Phase


class SpeedMeter:
    """Average transfer speed over the last `window_s` seconds of (time, bytes) samples."""

    def __init__(
        self, window_s: float = SPEED_WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._window_s = window_s
        self._clock = clock
        self._received = 0
        self._samples: deque[tuple[float, int]] = deque([(clock(), 0)])

    def add(self, nbytes: int) -> None:
        self._received += nbytes
        self._sample()

    def speed(self) -> float:
        self._sample()
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0

    def _sample(self) -> None:
        now = self._clock()
        self._samples.append((now, self._received))
        # Keep one sample older than the window so the average always spans the full window.
        while len(self._samples) > 2 and self._samples[1][0] <= now - self._window_s:
            self._samples.popleft()


class ProgressReporter:
    """Turns byte events into DownloadProgress reports, at most one per `interval_s` per phase."""

    def __init__(
        self,
        on_progress: Callable[[DownloadProgress], None],
        *,
        total_bytes: int,
        done_bytes: int,
        interval_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._on_progress = on_progress
        self._total = total_bytes
        self._done = done_bytes
        self._interval_s = interval_s
        self._clock = clock
        self._meter = SpeedMeter(clock=clock)
        self._last_emit = float("-inf")
        self._last_key: tuple[str, Phase] | None = None

    @property
    def done_bytes(self) -> int:
        return self._done

    def downloaded(self, file: str, file_done: int, file_total: int, nbytes: int) -> None:
        """`nbytes` new bytes of `file` reached the disk; `file_done` is its size on disk now."""
        self._done += nbytes
        self._meter.add(nbytes)
        self.report("downloading", file, file_done, file_total, force=file_done == file_total)

    def discarded(self, nbytes: int) -> None:
        """Bytes counted as done were deleted (a failed verification or a server restart)."""
        self._done -= nbytes

    def report(
        self,
        phase: Phase,
        file: str = "",
        file_done: int = 0,
        file_total: int = 0,
        *,
        force: bool = False,
    ) -> None:
        now = self._clock()
        key = (file, phase)
        if not force and key == self._last_key and now - self._last_emit < self._interval_s:
            return
        self._last_emit, self._last_key = now, key
        speed = self._meter.speed()
        remaining = max(self._total - self._done, 0)
        if phase == "done" or remaining == 0:
            eta: float | None = 0.0
        else:
            eta = remaining / speed if speed > 0 else None
        self._on_progress(
            DownloadProgress(
                file=file,
                file_done=file_done,
                file_total=file_total,
                done_bytes=self._done,
                total_bytes=self._total,
                speed_bytes_per_s=speed,
                eta_s=eta,
                phase=phase,
            )
        )
