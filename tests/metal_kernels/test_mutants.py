"""The suite's own proof: each bug that once escaped it, planted in a copy of the source, must fail
one of its checks. A mutant that survives means a check has gone blind.

The bugs (issue 16): the missing barriers of the prefill GEMM (before a K step's tiles are used,
before the prefetched next step overwrites them), simdgroups sharing the epilogue's staging, a
prefetch or decode of the wrong K values, a combine epilogue that writes or weighs a pair at its
sorted position, two simdgroups adding partial sums into one output, a gate clamped from below
too, E8M0 scale 0 read as 0, and a dispatch self-test that accepts NaN.
"""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable
from typing import Any

import mlx.core as mx
import numpy as np
import pytest

import engine.expert_backends as backends
import metal_kernels.mxfp4_moe as moe
from engine.experts import mlx_experts
from metal_kernels.emulator import DataRaceError, metal_kernel
from metal_kernels.mxfp4_moe import MoeKernels
from tests.engine.test_experts_choice import check_self_test_rejects_nan
from tests.metal_kernels.moe_reference import make_problem, reference, rel_error
from tests.metal_kernels.test_mxfp4_moe import (
    F32_TOL,
    check_e8m0_zero_scale,
    check_every_schedule,
    check_gate_is_clamped_from_above_only,
)

GEMM = "mxfp4w_moe_gemm.metal"
HEADER = "mxfp4_common.h"
BARRIER = "threadgroup_barrier(mem_flags::mem_threadgroup);\n"

# name: (file, text to replace, replacement, the suite's check that must fail, what it raises)
KERNEL_MUTANTS: dict[str, tuple[str, str, str, Callable[[MoeKernels], None], type[Exception]]] = {
    "gemm: no barrier between staging a K step and using it": (
        GEMM, f"        {BARRIER}        if (s + 1 < steps)", "        if (s + 1 < steps)",
        check_every_schedule, DataRaceError,
    ),
    "gemm: no barrier before the next K step overwrites the tiles": (
        GEMM, f"        {BARRIER}    }}\n    // epilogue", "    }\n    // epilogue",
        check_every_schedule, DataRaceError,
    ),
    "gemm: every simdgroup stages its accumulators in the same place": (
        GEMM, "threadgroup float* stage = cs + sg * 8 * CS;", "threadgroup float* stage = cs;",
        check_every_schedule, DataRaceError,
    ),
    "gemm: the prefetch reads the current K step again instead of the next": (
        GEMM, "(x + x_row * Kdim + (s + 1) * BK + my_k8)", "(x + x_row * Kdim + s * BK + my_k8)",
        check_every_schedule, AssertionError,
    ),
    "gemm: a K step decodes the wrong words of its block": (
        GEMM, "(wbits[2 * h + q] >> (4 * i))", "(wbits[2 * q + h] >> (4 * i))",
        check_every_schedule, AssertionError,
    ),
    "gemm: the combine writes a pair at its sorted position, not its (token, slot) row": (
        GEMM, "const size_t dst = COMBINE ? size_t(rows[pair0 + p]) : size_t(pair0 + p);",
        "const size_t dst = size_t(pair0 + p);", check_every_schedule, AssertionError,
    ),
    "gemm: the combine weighs a pair by the route weight of its sorted position": (
        GEMM, "COMBINE ? route[dst] : 1.0f", "COMBINE ? route[pair0 + p] : 1.0f",
        check_every_schedule, AssertionError,
    ),
    "swiglu: gate clamped from below as well": (
        HEADER, "gate = gate > limit ? limit : gate;",
        "gate = gate > limit ? limit : (gate < -limit ? -limit : gate);",
        check_gate_is_clamped_from_above_only, AssertionError,
    ),
    "e8m0: scale 0 read as 0 instead of 2^-127": (
        HEADER, "s == 0 ? 0x00400000u : uint(s) << 23", "uint(s) << 23", check_e8m0_zero_scale,
        AssertionError,
    ),
}  # fmt: skip


def mutated_kernels(monkeypatch: pytest.MonkeyPatch, file: str, old: str, new: str) -> MoeKernels:
    real = moe.kernel_source
    text = real(file)
    assert text.count(old) == 1, f"the mutant's anchor is not unique in {file}: {old!r}"
    monkeypatch.setattr(
        moe, "kernel_source", lambda n: text.replace(old, new) if n == file else real(n)
    )
    return MoeKernels(metal_kernel)


@pytest.mark.parametrize("mutant", list(KERNEL_MUTANTS))
def test_kernel_mutant_is_killed(monkeypatch: pytest.MonkeyPatch, mutant: str) -> None:
    file, old, new, check, expected = KERNEL_MUTANTS[mutant]
    check(MoeKernels(metal_kernel))  # the check passes on the real sources...
    kernels = mutated_kernels(monkeypatch, file, old, new)
    with pytest.raises(expected):  # ...and fails on the mutant
        check(kernels)


COMBINE = "mxfp4w_moe_gemv_combine.metal"


def _split_combine(source: str) -> str:
    """The combine kernel with its experts split over two simdgroups, each adding its partial sum
    into y: right in arithmetic, wrong on a GPU, where the two read-add-writes interleave."""
    for old, new in (
        (
            "const uint d0 = (thread_position_in_grid.x / 32) * 4;",
            "const uint d0 = (thread_position_in_grid.x / 64) * 4;\n"
            "    const uint half_k = (thread_position_in_grid.x / 32) % 2;",
        ),
        ("for (uint k = 0; k < K; ++k) {", "for (uint k = half_k; k < K; k += 2) {"),
        ("y[size_t(t) * D + d0 + j] = T(", "y[size_t(t) * D + d0 + j] += T("),
    ):
        assert source.count(old) == 1, old
        source = source.replace(old, new)
    return source


def test_lost_update_mutant_is_killed(monkeypatch: pytest.MonkeyPatch) -> None:
    source = _split_combine(moe.kernel_source(COMBINE))
    kernel = metal_kernel(
        name="combine_split", input_names=["act", "w", "scales", "bias", "idx", "route"],
        output_names=["y"], source=source, header=moe.kernel_source(HEADER),
    )  # fmt: skip
    p = make_problem(np.random.default_rng(1), E=4, D=64, I=64, N=2)
    act_ref, y_ref = reference(p)
    _, down = p.weights()
    inputs = [mx.array(act_ref.astype(np.float32)), *down, mx.array(p.idx), mx.array(p.route)]

    def run() -> np.ndarray:
        (y,) = kernel(
            inputs=inputs, template=[("T", mx.float32)], grid=(64 // 4 * 64, 2, 1),
            threadgroup=(moe.THREADS, 1, 1), output_shapes=[(2, 64)],
            output_dtypes=[mx.float32], init_value=0.0,
        )  # fmt: skip
        return np.array(y)

    monkeypatch.setenv("OSS_DESK_EMU_RACES", "0")
    # Fibers run one at a time, so the arithmetic comes out right: only race tracking sees it.
    assert rel_error(run(), y_ref) < F32_TOL
    monkeypatch.setenv("OSS_DESK_EMU_RACES", "1")
    with pytest.raises(
        DataRaceError, match=r"output `y`.*simdgroup 0.*simdgroup 1|simdgroup 1.*simdgroup 0"
    ):
        run()


def _mutated_function(
    module: Any, name: str, replacements: list[tuple[str, str]]
) -> Callable[..., Any]:
    """`module.name` recompiled from its source with each `old` replaced by its `new`."""
    source = textwrap.dedent(inspect.getsource(getattr(module, name)))
    for old, new in replacements:
        assert source.count(old) == 1, f"{old!r} is not in {name}"
        source = source.replace(old, new)
    namespace = dict(vars(module))
    exec(compile(source, inspect.getfile(module), "exec"), namespace)
    return namespace[name]


def test_self_test_accepting_nan_is_killed() -> None:
    """The careless version: no finiteness check, and `err > tolerance`, which NaN never is."""
    check_self_test_rejects_nan(backends.self_test)
    mutant = _mutated_function(
        backends,
        "self_test",
        [
            ("if not np.isfinite(got).all():", "if False:"),
            ("if not err <= SELF_TEST_TOLERANCE:", "if err > SELF_TEST_TOLERANCE:"),
        ],
    )
    assert mutant(mlx_experts) is None  # still a working self-test for good results
    with pytest.raises(AssertionError):
        check_self_test_rejects_nan(mutant)
