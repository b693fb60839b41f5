"""Errors of the Metal CPU emulator.

``EmulatorUnavailable`` means "fall back"; every other error means the kernel is wrong (or, for
``KernelCompileError``, that it uses MSL the shim lacks). Messages are composed here, and their
first sentence is the summary.
"""

from __future__ import annotations

from pathlib import Path

Dim3 = tuple[int, int, int]


class EmulatorError(RuntimeError):
    """Base class of the emulator's errors."""


class EmulatorUnavailable(EmulatorError):
    """The emulator cannot run on this machine (platform, or no C++ compiler)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"The Metal CPU emulator is unavailable: {reason}.")


class KernelCompileError(EmulatorError):
    """The kernel source did not compile as C++ against the shim.

    Line numbers in ``output`` refer to the kernel's own strings: ``<name>/source:12`` is line 12 of
    ``source`` and ``<name>/header:3`` line 3 of ``header``.
    """

    def __init__(self, kernel: str, compiler: str, output: str, build_dir: Path) -> None:
        self.kernel = kernel
        self.output = output
        self.build_dir = build_dir
        super().__init__(
            f"Metal kernel `{kernel}` failed to compile in the CPU emulator ({compiler}; this is "
            f"not Apple's compiler, and the shim may lack an MSL function).\n{output}\n"
            f"Generated C++: {build_dir / 'kernel.cpp'}"
        )


class KernelRunError(EmulatorError):
    """A launch failed. ``thread`` and ``threadgroup`` locate the GPU thread when known."""

    def __init__(
        self,
        kernel: str,
        problem: str,
        *,
        thread: Dim3 | None = None,
        threadgroup: Dim3 | None = None,
    ) -> None:
        self.kernel = kernel
        self.problem = problem
        self.thread = thread
        self.threadgroup = threadgroup
        where = ""
        if thread is not None:
            where = (
                f" [thread_position_in_grid={thread}, threadgroup_position_in_grid={threadgroup}]"
            )
        super().__init__(f"Metal kernel `{kernel}`: {problem}{where}")


class SynchronizationError(KernelRunError):
    """A barrier or simd-group function was not reached by all threads it synchronises."""


class DataRaceError(SynchronizationError):
    """Two lanes of different simdgroups (or threadgroups) touched one address, at least one of
    them writing, with no barrier between; or a read of threadgroup memory nobody wrote."""


class OutOfBoundsError(KernelRunError):
    """An access outside a device buffer or threadgroup array, or a write to an input."""


class KernelCrashError(KernelRunError):
    """The kernel crashed, hung, ran out of resources, or the launch was interrupted."""


class KernelTimeoutError(KernelCrashError):
    """The launch did not finish in time (an endless loop, or a spin-wait on other threads)."""
