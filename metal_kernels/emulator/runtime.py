"""Launching a compiled kernel library through ctypes, and turning its report into exceptions.

The structures mirror ``msl_runtime.h``; ``msl_abi_version`` guards against a stale cached library.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np

from .errors import (
    EmulatorError,
    KernelCrashError,
    KernelRunError,
    KernelTimeoutError,
    OutOfBoundsError,
    SynchronizationError,
)

ABI_VERSION = 3
SCHEDULES: tuple[str, ...] = ("forward", "reverse", "random")

_OK, _SYNC, _BOUNDS, _CRASH, _TIMEOUT, _INTERRUPTED, _SETUP, _RESOURCE = range(8)
_ACCESS = {0: "access", 1: "read", 2: "write"}


class _Buffer(ctypes.Structure):
    _fields_ = [
        ("host", ctypes.c_void_p),
        ("nbytes", ctypes.c_uint64),
        ("offset", ctypes.c_uint64),
        ("writable", ctypes.c_int32),
        ("reserved", ctypes.c_int32),
    ]


class _Options(ctypes.Structure):
    _fields_ = [
        ("schedule", ctypes.c_int32),
        ("seed", ctypes.c_uint32),
        ("workers", ctypes.c_int32),
        ("strict", ctypes.c_int32),
        ("isolate", ctypes.c_int32),
        ("timeout_s", ctypes.c_int32),
        ("stack_kib", ctypes.c_int32),
        ("reserved", ctypes.c_int32),
    ]


class _Report(ctypes.Structure):
    _fields_ = [
        ("status", ctypes.c_int32),
        ("signal", ctypes.c_int32),
        ("buffer", ctypes.c_int32),
        ("access", ctypes.c_int32),
        ("offset", ctypes.c_int64),
        ("nbytes", ctypes.c_int64),
        ("has_thread", ctypes.c_int32),
        ("thread", ctypes.c_uint32 * 3),
        ("group", ctypes.c_uint32 * 3),
        ("region", ctypes.c_char * 64),
        ("message", ctypes.c_char * 1024),
    ]


@dataclass(frozen=True)
class LaunchBuffer:
    """Host bytes for one kernel buffer; ``array`` keeps them alive during the launch."""

    array: np.ndarray
    address: int  # start of the bytes to copy in (and out)
    nbytes: int
    offset: int  # element 0 relative to ``address`` (non-zero for negative strides)
    writable: bool
    label: str  # "input `x`", "`x_shape`", "output `out`"
    itemsize: int


@dataclass(frozen=True)
class LaunchOptions:
    schedule: str = "forward"
    seed: int = 0
    workers: int = 1
    strict: bool = True
    isolate: bool = True
    timeout_s: int = 300
    stack_kib: int = 256

    @classmethod
    def from_environment(
        cls, schedule: str | None = None, seed: int | None = None
    ) -> LaunchOptions:
        env = os.environ.get
        chosen = schedule or env("OSS_DESK_EMU_SCHEDULE", "forward")
        if chosen not in SCHEDULES:
            raise ValueError(f"unknown schedule {chosen!r}; expected one of {SCHEDULES}")
        return cls(
            schedule=chosen,
            seed=seed if seed is not None else int(env("OSS_DESK_EMU_SEED", "0")),
            workers=int(env("OSS_DESK_EMU_WORKERS", str(os.cpu_count() or 1))),
            strict=env("OSS_DESK_EMU_STRICT", "1") != "0",
            isolate=env("OSS_DESK_EMU_ISOLATE", "1") != "0",
            timeout_s=int(env("OSS_DESK_EMU_TIMEOUT", "300")),
            stack_kib=int(env("OSS_DESK_EMU_STACK_KIB", "256")),
        )


class KernelLibrary:
    """A loaded kernel library (one instantiation of one kernel)."""

    def __init__(self, path: Path) -> None:
        self._lib = ctypes.CDLL(str(path))
        self._lib.msl_abi_version.restype = ctypes.c_int
        if self._lib.msl_abi_version() != ABI_VERSION:
            raise EmulatorError(f"{path} was built for another emulator version; delete it")
        self._lib.msl_launch.restype = ctypes.c_int
        self._lib.msl_launch.argtypes = [
            ctypes.POINTER(_Buffer),
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_uint32),
            ctypes.POINTER(ctypes.c_uint32),
            ctypes.POINTER(_Options),
            ctypes.POINTER(_Report),
        ]

    def launch(
        self,
        kernel: str,
        buffers: Sequence[LaunchBuffer],
        grid: tuple[int, int, int],
        threadgroup: tuple[int, int, int],
        options: LaunchOptions,
    ) -> None:
        """Run the kernel; raises a KernelRunError subclass if the launch failed."""
        c_buffers = (_Buffer * max(len(buffers), 1))(
            *(_Buffer(b.address, b.nbytes, b.offset, int(b.writable), 0) for b in buffers)
        )
        c_options = _Options(
            SCHEDULES.index(options.schedule),
            options.seed & 0xFFFFFFFF,
            options.workers,
            int(options.strict),
            int(options.isolate),
            options.timeout_s,
            options.stack_kib,
            0,
        )
        report = _Report()
        status = self._lib.msl_launch(
            c_buffers,
            len(buffers),
            (ctypes.c_uint32 * 3)(*grid),
            (ctypes.c_uint32 * 3)(*threadgroup),
            ctypes.byref(c_options),
            ctypes.byref(report),
        )
        if status != _OK:
            _raise_for(kernel, report, buffers, options)


def _out_of_bounds(report: _Report, buffers: Sequence[LaunchBuffer]) -> str:
    access = _ACCESS.get(report.access, "access")
    offset, nbytes = report.offset, report.nbytes
    if report.buffer < 0:
        name = report.region.decode(errors="replace")
        where = f"{-offset} bytes before its start" if offset < 0 else f"byte {offset}"
        return f"out-of-bounds {access} of threadgroup array `{name}` ({nbytes} bytes): {where}"
    buf = buffers[report.buffer]
    size = f"it has {nbytes // buf.itemsize} elements"
    if report.signal == 0:  # found after the launch: the canary before the buffer changed
        return f"write before the start of {buf.label} ({size}): a negative index"
    if 0 <= offset < nbytes:
        return f"write to {buf.label} at element {offset // buf.itemsize}; inputs are read-only"
    if offset < 0:
        return f"out-of-bounds {access} of {buf.label}, {-offset} bytes before its start ({size})"
    element = offset // buf.itemsize
    hint = " (a negative 32-bit index that wrapped around?)" if element >= 2**31 else ""
    return f"out-of-bounds {access} of {buf.label} at element {element} ({size}){hint}"


def _raise_for(
    kernel: str, report: _Report, buffers: Sequence[LaunchBuffer], options: LaunchOptions
) -> NoReturn:
    message = report.message.decode(errors="replace")
    thread = group = None
    if report.has_thread:
        thread = (int(report.thread[0]), int(report.thread[1]), int(report.thread[2]))
        group = (int(report.group[0]), int(report.group[1]), int(report.group[2]))
    where = {"thread": thread, "threadgroup": group}
    status = report.status
    if status == _SYNC:
        raise SynchronizationError(kernel, message, **where)
    if status == _BOUNDS:
        raise OutOfBoundsError(kernel, _out_of_bounds(report, buffers), **where)
    if status == _TIMEOUT:
        problem = (
            f"the launch did not finish within {options.timeout_s} s (an endless loop, or a "
            "spin-wait on another thread: GPU threads here run one at a time between barriers; "
            "see OSS_DESK_EMU_TIMEOUT)"
        )
        raise KernelTimeoutError(kernel, problem, **where)
    if status == _INTERRUPTED:
        raise KernelCrashError(kernel, "the launch was interrupted by a signal", **where)
    if status in (_CRASH, _RESOURCE):
        if report.signal and status == _CRASH and "signal" not in message:
            message += f" (signal {report.signal})"
        raise KernelCrashError(kernel, message, **where)
    raise KernelRunError(kernel, f"the launch could not start: {message}", **where)
