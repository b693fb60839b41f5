"""A CPU emulator for Metal compute kernels written for ``mx.fast.metal_kernel``.

The same kernel source is compiled by the system C++ compiler against a shim of the Metal
Shading Language and run with SIMT semantics: every GPU thread is a fiber, threadgroup_barrier and
simd-group functions synchronise lanes of 32 and must be reached by every thread they synchronise,
threadgroup memory and outputs are poisoned, and the threads of a threadgroup can run in several
orders (``schedule``). Each launch runs in a forked child with every buffer between guard pages,
so an out-of-range access or a crash raises an exception naming the kernel.

    kernel = metal_kernel(name="myexp", input_names=["inp"], output_names=["out"], source=...)
    (out,) = kernel(inputs=[a], grid=(n, 1, 1), threadgroup=(256, 1, 1),
                    output_shapes=[a.shape], output_dtypes=[a.dtype])

Settings (environment): OSS_DESK_EMU_CACHE (build cache; default: the user cache dir),
OSS_DESK_EMU_CXX or CXX (compiler), OSS_DESK_EMU_CXXFLAGS (extra flags),
OSS_DESK_EMU_SCHEDULE and OSS_DESK_EMU_SEED (default schedule),
OSS_DESK_EMU_WORKERS (OS threads), OSS_DESK_EMU_STRICT=0 (allow barriers after early returns),
OSS_DESK_EMU_TIMEOUT (seconds, default 300), OSS_DESK_EMU_STACK_KIB (per GPU thread, default 256),
OSS_DESK_EMU_ISOLATE=0 (run in-process, e.g. under a debugger: a fault then kills the process),
OSS_DESK_EMU_RACES=0 (no race or uninitialised-read detection: faster, catches less).
"""

from .compiler import is_available, unavailable_reason
from .errors import (
    DataRaceError,
    EmulatorError,
    EmulatorUnavailable,
    KernelCompileError,
    KernelCrashError,
    KernelRunError,
    KernelTimeoutError,
    OutOfBoundsError,
    SynchronizationError,
)
from .kernel import EmulatedKernel, metal_kernel
from .runtime import BankTraffic, BufferTraffic, LaunchCounters
from .schedules import SCHEDULES, counting, run_all_schedules, schedule

__all__ = [
    "SCHEDULES",
    "BankTraffic",
    "BufferTraffic",
    "DataRaceError",
    "EmulatedKernel",
    "EmulatorError",
    "EmulatorUnavailable",
    "KernelCompileError",
    "KernelCrashError",
    "KernelRunError",
    "KernelTimeoutError",
    "LaunchCounters",
    "OutOfBoundsError",
    "SynchronizationError",
    "counting",
    "is_available",
    "metal_kernel",
    "run_all_schedules",
    "schedule",
    "unavailable_reason",
]
