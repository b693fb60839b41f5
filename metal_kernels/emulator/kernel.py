"""``metal_kernel``: the emulator's stand-in for ``mx.fast.metal_kernel``.

Same constructor, same call keywords, same generated kernel text; a launcher can therefore pick
``mx.fast.metal_kernel`` or this function and call the result the same way.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import compiler
from .arrays import (
    HostArray,
    byte_span,
    dtype_of,
    is_mlx,
    new_output,
    row_contiguous,
    to_caller,
    to_host,
)
from .errors import EmulatorUnavailable
from .runtime import KernelLibrary, LaunchBuffer, LaunchOptions
from .schedules import counter_sink, current_schedule
from .signature import (
    DType,
    InputInfo,
    TemplateValue,
    attributes_used,
    generated_source,
    instantiation_text,
    kernel_name,
    shape_infos,
    signature_text,
)
from .translate import KernelParts, file_stem, translation_unit

MAX_THREADS_PER_THREADGROUP = 1024  # Apple GPUs; a heavy kernel may get less on the GPU
# A pipeline's maxTotalThreadsPerThreadgroup depends on its registers and is only known on a Mac;
# OSS_DESK_EMU_MAX_THREADS (or EmulatedKernel.max_total_threads_per_threadgroup) lowers the limit
# so a suite can prove its launches fit a register-heavy pipeline's 256 or 512.
_MAX_THREADS_ENV = "OSS_DESK_EMU_MAX_THREADS"
_MATH_MODES = ("safe", "relaxed", "fast")
_loaded: dict[str, KernelLibrary] = {}  # by library path: one handle per process
_loaded_lock = threading.Lock()


def _template_value(value: object) -> TemplateValue:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    try:
        return dtype_of(value)
    except ValueError as e:
        raise ValueError(
            "Invalid template argument. Must be `mlx.core.Dtype`, `int` or `bool`."
        ) from e


def _dims(value: Sequence[int], what: str, minimum: int) -> tuple[int, int, int]:
    dims = tuple(int(v) for v in value)
    if len(dims) != 3 or min(dims) < minimum:
        raise ValueError(f"[metal_kernel] `{what}` must be 3 integers >= {minimum}, got {value}")
    return dims[0], dims[1], dims[2]


class EmulatedKernel:
    """A kernel built by :func:`metal_kernel`; call it like an ``mx.fast.metal_kernel`` object."""

    def __init__(
        self,
        name: str,
        input_names: Sequence[str],
        output_names: Sequence[str],
        source: str,
        header: str,
        ensure_row_contiguous: bool,
        atomic_outputs: bool,
    ) -> None:
        self.name = name
        self.input_names = list(input_names)
        self.output_names = list(output_names)
        self.source = source
        self.header = header
        self.ensure_row_contiguous = ensure_row_contiguous
        self.atomic_outputs = atomic_outputs
        self._shapes = shape_infos(self.input_names, source)
        self._attributes = attributes_used(source)
        self._libraries: dict[str, KernelLibrary] = {}
        self.max_total_threads_per_threadgroup = MAX_THREADS_PER_THREADGROUP

    def __call__(
        self,
        *,
        inputs: Sequence[object],
        output_shapes: Sequence[Sequence[int]],
        output_dtypes: Sequence[object],
        grid: Sequence[int],
        threadgroup: Sequence[int],
        template: Sequence[tuple[str, object]] | None = None,
        init_value: float | None = None,
        verbose: bool = False,
        stream: object = None,
        schedule: str | None = None,
        seed: int | None = None,
    ) -> list[Any]:
        """Launch the kernel; ``schedule`` and ``seed`` are emulator extras (see schedules.py)."""
        del stream  # there is one device: the CPU
        self._check_counts(len(inputs), len(output_shapes), len(output_dtypes))
        hosts = [self._host(x) for x in inputs]
        out_dtypes = [dtype_of(d) for d in output_dtypes]
        parts = self._parts(hosts, out_dtypes, template)
        if verbose:
            text = generated_source(
                parts.header, parts.signature, parts.source, parts.instantiation
            )
            print(f"Generated source code for `{self.name}`:\n```\n{text}\n```")
        grid3 = _dims(grid, "grid", 0)
        tg3 = _dims(threadgroup, "threadgroup", 1)
        limit = min(
            self.max_total_threads_per_threadgroup,
            int(os.environ.get(_MAX_THREADS_ENV) or MAX_THREADS_PER_THREADGROUP),
        )
        # MLX clamps each dimension to the grid before it compares (custom_kernel.cpp)
        clamped = [min(t, g) if g else t for t, g in zip(tg3, grid3, strict=True)]
        if clamped[0] * clamped[1] * clamped[2] > limit:
            raise ValueError(
                f"Thread group size ({clamped[0] * clamped[1] * clamped[2]}) is greater than the "
                f"maximum allowed threads per threadgroup ({limit})."
            )
        library = self._library(parts)
        outputs = [
            new_output(s, d, init_value) for s, d in zip(output_shapes, out_dtypes, strict=True)
        ]
        chosen = current_schedule()
        options = LaunchOptions.from_environment(
            schedule or (chosen[0] if chosen else None),
            seed if seed is not None else (chosen[1] if chosen else None),
        )
        sink = counter_sink()
        if sink is not None:
            options = dataclasses.replace(options, counters=True)
        counted = library.launch(self.name, self._buffers(hosts, outputs), grid3, tg3, options)
        if sink is not None and counted is not None:
            sink.append((self.name, counted))
        as_mlx = any(h.from_mlx for h in hosts) or (
            not any(isinstance(x, np.ndarray) for x in inputs) and any(map(is_mlx, output_dtypes))
        )
        return [to_caller(o, d, as_mlx) for o, d in zip(outputs, out_dtypes, strict=True)]

    def generated_source(
        self,
        *,
        inputs: Sequence[object],
        output_dtypes: Sequence[object],
        template: Sequence[tuple[str, object]] | None = None,
    ) -> str:
        """The kernel text MLX would compile for these inputs (what ``verbose=True`` prints)."""
        self._check_counts(len(inputs), len(self.output_names), len(output_dtypes))
        parts = self._parts(
            [self._host(x) for x in inputs], [dtype_of(d) for d in output_dtypes], template
        )
        return generated_source(parts.header, parts.signature, parts.source, parts.instantiation)

    def _check_counts(self, n_inputs: int, n_shapes: int, n_dtypes: int) -> None:
        for what, expected, got in (
            ("inputs", len(self.input_names), n_inputs),
            ("output_shapes", len(self.output_names), n_shapes),
            ("output_dtypes", len(self.output_names), n_dtypes),
        ):
            if expected != got:
                raise ValueError(
                    f"[metal_kernel] Expected `{what}` to have size {expected} but got size {got}."
                )

    def _host(self, value: object) -> HostArray:
        host = to_host(value)
        return row_contiguous(host) if self.ensure_row_contiguous else host

    def _parts(
        self,
        hosts: Sequence[HostArray],
        out_dtypes: Sequence[DType],
        template: Sequence[tuple[str, object]] | None,
    ) -> KernelParts:
        targs = [(str(n), _template_value(v)) for n, v in template or ()]
        infos = [
            InputInfo(n, h.dtype, h.array.ndim, h.array.size)
            for n, h in zip(self.input_names, hosts, strict=True)
        ]
        func = kernel_name(self.name, targs, infos, out_dtypes)
        signature = signature_text(
            func,
            infos,
            self._shapes,
            self.output_names,
            out_dtypes,
            targs,
            self._attributes,
            self.atomic_outputs,
        )
        return KernelParts(
            self.name,
            func,
            self.header,
            signature,
            self.source,
            instantiation_text(func, targs),
            infos,
            self._shapes,
            out_dtypes,
            targs,
            self._attributes,
            self.atomic_outputs,
        )

    def _library(self, parts: KernelParts) -> KernelLibrary:
        cpp, files = translation_unit(parts)
        key = hashlib.sha256("\0".join((cpp, *compiler.extra_flags())).encode()).hexdigest()
        if (library := self._libraries.get(key)) is None:
            path = compiler.build(self.name, file_stem(self.name), cpp, files)
            with _loaded_lock:
                library = _loaded.get(str(path)) or KernelLibrary(path)
                _loaded[str(path)] = library
            self._libraries[key] = library
        return library

    def _buffers(
        self, hosts: Sequence[HostArray], outputs: Sequence[np.ndarray]
    ) -> list[LaunchBuffer]:
        buffers: list[LaunchBuffer] = []

        def add(arr: np.ndarray, label: str, writable: bool = False) -> None:
            address, nbytes, offset = byte_span(arr)
            buffers.append(
                LaunchBuffer(arr, address, nbytes, offset, writable, label, arr.itemsize)
            )

        for name, host, shape in zip(self.input_names, hosts, self._shapes, strict=True):
            a = host.array
            add(a, f"input `{name}`")
            if a.ndim > 0:  # in element units, as MLX passes them
                if shape.shape:
                    add(np.array(a.shape, np.int32), f"`{name}_shape`")
                if shape.strides:
                    add(
                        np.array([s // a.itemsize for s in a.strides], np.int64),
                        f"`{name}_strides`",
                    )
                if shape.ndim:
                    add(np.array(a.ndim, np.int32), f"`{name}_ndim`")
        for name, out in zip(self.output_names, outputs, strict=True):
            add(out, f"output `{name}`", writable=True)
        return buffers


def metal_kernel(
    name: str,
    input_names: Sequence[str],
    output_names: Sequence[str],
    source: str,
    header: str = "",
    ensure_row_contiguous: bool = True,
    atomic_outputs: bool = False,
    compile_options: dict[str, str] | None = None,
) -> EmulatedKernel:
    """Build a kernel exactly as ``mx.fast.metal_kernel`` would, to run on the CPU emulator.

    Raises EmulatorUnavailable when the emulator cannot run here (check ``is_available()``).
    ``compile_options`` is validated like MLX does; its math mode is not modelled.
    """
    if not output_names:
        raise ValueError("[metal_kernel] Must specify at least one output.")
    for key, value in (compile_options or {}).items():
        if key != "math_mode":
            raise ValueError(f"[metal_kernel] Unknown compile option `{key}`.")
        if value not in _MATH_MODES:
            raise ValueError(f"[metal_kernel] Invalid math mode `{value}`.")
    if (reason := compiler.unavailable_reason()) is not None:
        raise EmulatorUnavailable(reason)
    return EmulatedKernel(
        name, input_names, output_names, source, header, ensure_row_contiguous, atomic_outputs
    )
