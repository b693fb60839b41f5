"""Thread schedules: the order in which the emulator runs a threadgroup's threads.

A thread runs until it reaches a barrier or simd-group function, so the schedule decides which
threads have written shared data before others read it. "forward" runs thread 0 first, "reverse"
the last thread first, and "random" shuffles the order at every round (seeded). A kernel with a
missing barrier reads poisoned threadgroup memory, or gives different results, under one of them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from .runtime import SCHEDULES

__all__ = [
    "SCHEDULES",
    "counter_sink",
    "counting",
    "current_schedule",
    "run_all_schedules",
    "schedule",
]

_current: ContextVar[tuple[str, int | None] | None] = ContextVar("emulator_schedule", default=None)
_counts: ContextVar[list[tuple[str, Any]] | None] = ContextVar("emulator_counts", default=None)


def counter_sink() -> list[tuple[str, Any]] | None:
    """Where launches append (kernel name, LaunchCounters) inside ``counting()``."""
    return _counts.get()


@contextlib.contextmanager
def counting() -> Iterator[list[tuple[str, Any]]]:
    """Collect the performance counters of every emulated launch in this block:

    with counting() as launches:
        kernels(...)
    for name, counters in launches: ...
    """
    launches: list[tuple[str, Any]] = []
    token = _counts.set(launches)
    try:
        yield launches
    finally:
        _counts.reset(token)


def current_schedule() -> tuple[str, int | None] | None:
    """The (schedule, seed) set by the innermost ``schedule()`` block, if any."""
    return _current.get()


@contextlib.contextmanager
def schedule(name: str, seed: int | None = None) -> Iterator[None]:
    """Run emulated launches in this block with schedule ``name``.

    For launchers that call a kernel with MLX's keywords only, e.g.
    ``with schedule("reverse"): y = mxfp4_moe_matmul(...)``.
    """
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; expected one of {SCHEDULES}")
    token = _current.set((name, seed))
    try:
        yield
    finally:
        _current.reset(token)


def run_all_schedules(
    kernel: Callable[..., list[Any]], *, seed: int | None = None, **call_kwargs: Any
) -> dict[str, list[Any]]:
    """Call ``kernel(**call_kwargs)`` once per schedule and return the outputs by schedule name.

    ``kernel`` is an emulated kernel or any function that launches emulated kernels.
    """
    results: dict[str, list[Any]] = {}
    for name in SCHEDULES:
        with schedule(name, seed):
            results[name] = kernel(**call_kwargs)
    return results
