"""Launching a compiled kernel library through ctypes, and turning its report into exceptions.

The structures mirror ``msl_runtime.h``; ``msl_abi_version`` guards against a stale cached library.
"""

from __future__ import annotations

import ctypes
import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np

from .errors import (
    DataRaceError,
    EmulatorError,
    KernelCrashError,
    KernelRunError,
    KernelTimeoutError,
    OutOfBoundsError,
    SynchronizationError,
)

ABI_VERSION = 6
COUNTED_BUFFERS = 16
# index = the runtime's Schedule enum; "depth-first": a released simdgroup runs until it blocks
SCHEDULES: tuple[str, ...] = ("forward", "reverse", "random", "depth-first")

_OK, _SYNC, _BOUNDS, _CRASH, _TIMEOUT, _INTERRUPTED, _SETUP, _RESOURCE, _RACE = range(9)
_PC = re.compile(r"@pc:0x([0-9a-f]+)@")
_ACCESS = {0: "access", 1: "read", 2: "write"}


class _Buffer(ctypes.Structure):
    _fields_ = [
        ("host", ctypes.c_void_p),
        ("nbytes", ctypes.c_uint64),
        ("offset", ctypes.c_uint64),
        ("writable", ctypes.c_int32),
        ("itemsize", ctypes.c_int32),
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
        ("races", ctypes.c_int32),
        ("counters", ctypes.c_int32),
        ("reserved", ctypes.c_int32),
    ]


class _Counters(ctypes.Structure):
    _fields_ = [
        ("read_bytes", ctypes.c_uint64 * COUNTED_BUFFERS),
        ("write_bytes", ctypes.c_uint64 * COUNTED_BUFFERS),
        ("loads", (ctypes.c_uint64 * 5) * COUNTED_BUFFERS),
        ("constant_loads", ctypes.c_uint64),
        ("tg_read_bytes", ctypes.c_uint64),
        ("tg_write_bytes", ctypes.c_uint64),
        ("tg_bytes", ctypes.c_uint64),
        ("load_instrs", ctypes.c_uint64 * COUNTED_BUFFERS),
        ("lines", ctypes.c_uint64 * COUNTED_BUFFERS),
        ("min_lines", ctypes.c_uint64 * COUNTED_BUFFERS),
        ("tg_instrs", ctypes.c_uint64 * 2),
        ("tg_wavefronts", ctypes.c_uint64 * 2),
        ("tg_min_wavefronts", ctypes.c_uint64 * 2),
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
        ("counters", _Counters),
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
    races: bool = True
    counters: bool = False

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
            races=env("OSS_DESK_EMU_RACES", "1") != "0",
        )


class KernelLibrary:
    """A loaded kernel library (one instantiation of one kernel)."""

    def __init__(self, path: Path) -> None:
        self.path = path
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
    ) -> LaunchCounters | None:
        """Run the kernel; raises a KernelRunError subclass if the launch failed. Returns the
        launch's counters when ``options.counters``."""
        c_buffers = (_Buffer * max(len(buffers), 1))(
            *(_Buffer(b.address, b.nbytes, b.offset, int(b.writable), b.itemsize) for b in buffers)
        )
        c_options = _Options(
            SCHEDULES.index(options.schedule),
            options.seed & 0xFFFFFFFF,
            options.workers,
            int(options.strict),
            int(options.isolate),
            options.timeout_s,
            options.stack_kib,
            int(options.races),
            int(options.counters),
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
            _raise_for(kernel, report, buffers, options, self.path)
        if options.counters:
            return _counters(report.counters, buffers)
        return None


@dataclass(frozen=True)
class BufferTraffic:
    read_bytes: int
    write_bytes: int
    loads_by_width: dict[int, int]  # bytes per load -> number of loads (per lane)
    load_instructions: int = 0  # simdgroup load instructions (all lanes' loads at one instance)
    lines: int = 0  # distinct 128-byte cache lines, summed over those instructions
    min_lines: int = 0  # the fewest lines each instruction's bytes fit in, summed

    @property
    def vector16_fraction(self) -> float:
        """Share of the bytes read by 16-byte loads."""
        return 16 * self.loads_by_width.get(16, 0) / self.read_bytes if self.read_bytes else 0.0

    @property
    def lines_per_load(self) -> float:
        """Distinct cache lines per simdgroup load instruction."""
        return self.lines / self.load_instructions if self.load_instructions else 0.0

    @property
    def min_lines_per_load(self) -> float:
        """The same for loads whose bytes were contiguous: what coalescing could reach."""
        return self.min_lines / self.load_instructions if self.load_instructions else 0.0


@dataclass(frozen=True)
class BankTraffic:
    """Threadgroup accesses per simdgroup instruction, with 32 banks of 4 bytes."""

    instructions: int
    wavefronts: int  # per instruction: the most distinct words any one bank serves
    min_wavefronts: int  # per instruction: distinct words / 32, rounded up

    @property
    def conflicts_per_instruction(self) -> float:
        """Extra wavefronts per instruction caused by bank conflicts (0: none)."""
        extra = self.wavefronts - self.min_wavefronts
        return extra / self.instructions if self.instructions else 0.0


@dataclass(frozen=True)
class LaunchCounters:
    """What one launch did to memory, counted by the emulator's access hooks."""

    buffers: dict[str, BufferTraffic]  # by label: "input `w`", "output `y`", ...
    constant_loads: int  # loads of program-scope constant data (lookup tables)
    tg_read_bytes: int
    tg_write_bytes: int
    tg_bytes: int  # threadgroup memory of one threadgroup
    tg_banks: BankTraffic  # scalar and vector threadgroup loads and stores
    matrix_banks: BankTraffic  # simdgroup_load / simdgroup_store on threadgroup memory


def _counters(c: _Counters, buffers: Sequence[LaunchBuffer]) -> LaunchCounters:
    traffic = {}
    for i, b in enumerate(buffers[:COUNTED_BUFFERS]):
        widths = {1 << k: int(c.loads[i][k]) for k in range(5) if c.loads[i][k]}
        traffic[b.label] = BufferTraffic(
            int(c.read_bytes[i]), int(c.write_bytes[i]), widths, int(c.load_instrs[i]),
            int(c.lines[i]), int(c.min_lines[i]),
        )  # fmt: skip
    banks = [
        BankTraffic(int(c.tg_instrs[k]), int(c.tg_wavefronts[k]), int(c.tg_min_wavefronts[k]))
        for k in range(2)
    ]
    return LaunchCounters(
        traffic, int(c.constant_loads), int(c.tg_read_bytes), int(c.tg_write_bytes),
        int(c.tg_bytes), banks[0], banks[1],
    )  # fmt: skip


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


def kernel_line(library: Path, pc: int) -> str:
    """`file:line` in the kernel's source or header for a code offset of its library.

    The innermost inlined frame that is not an emulator header: a shim function (simdgroup_load)
    inlined into the kernel is reported at the kernel's line that called it.
    """
    try:
        out = subprocess.run(
            ["addr2line", "-i", "-e", str(library), hex(pc)],
            capture_output=True, text=True, timeout=30, check=False,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return f"code offset {pc:#x}"
    frames = [line.split(" (discriminator")[0] for line in out.splitlines()]
    for frame in frames:
        file, _, line = frame.rpartition(":")
        if file and not file.startswith("?") and not Path(file).name.startswith("msl_"):
            return "/".join(Path(file).parts[-2:]) + ":" + line  # "<kernel>/source:12"
    return frames[0] if frames else f"code offset {pc:#x}"


def _raise_for(
    kernel: str,
    report: _Report,
    buffers: Sequence[LaunchBuffer],
    options: LaunchOptions,
    library: Path,
) -> NoReturn:
    message = report.message.decode(errors="replace")
    message = _PC.sub(lambda m: "at " + kernel_line(library, int(m.group(1), 16)), message)
    thread = group = None
    if report.has_thread:
        thread = (int(report.thread[0]), int(report.thread[1]), int(report.thread[2]))
        group = (int(report.group[0]), int(report.group[1]), int(report.group[2]))
    where = {"thread": thread, "threadgroup": group}
    status = report.status
    if status == _SYNC:
        raise SynchronizationError(kernel, message, **where)
    if status == _RACE:
        for i, b in enumerate(buffers):  # the runtime names output buffers by index
            message = message.replace(f"output buffer {i} (`?`)", b.label)
        raise DataRaceError(kernel, message, **where)
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
