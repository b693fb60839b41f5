"""The emulator catches the bugs GPUs hide: races, divergent synchronisation, wild accesses.

Every failure is an exception naming the kernel; the launch runs in a child process, so this test
process survives faults (the last test checks that it still launches kernels afterwards).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from metal_kernels.emulator import (
    SCHEDULES,
    DataRaceError,
    KernelCompileError,
    KernelCrashError,
    KernelTimeoutError,
    OutOfBoundsError,
    SynchronizationError,
    is_available,
    metal_kernel,
    run_all_schedules,
    unavailable_reason,
)

pytestmark = pytest.mark.skipif(not is_available(), reason=unavailable_reason() or "")

LUT_HEADER = """
constant float FP4_VALUES[16] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f,
                                 -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};
"""

# 16 threads fill a lookup table that all 64 threads read at data-dependent positions.
LUT_SOURCE = """
    threadgroup float lut[16];
    uint t = thread_index_in_threadgroup;
    if (t < 16) lut[t] = FP4_VALUES[t];
    {barrier}
    uint i = thread_position_in_grid.x;
    out[i] = x[i] * lut[(i * 5) % 16];
"""


def _launch(name: str, source: str, n: int = 128, **call: Any) -> np.ndarray:
    kernel = metal_kernel(
        name=name, input_names=["x"], output_names=["out"], source=source, header=LUT_HEADER
    )
    (out,) = kernel(
        inputs=[np.arange(n, dtype=np.float32)], grid=(n, 1, 1), threadgroup=(64, 1, 1),
        output_shapes=[(n,)], output_dtypes=[np.float32], **call,
    )  # fmt: skip
    return np.asarray(out)


def _all_schedules(name: str, source: str) -> dict[str, np.ndarray]:
    kernel = metal_kernel(
        name=name, input_names=["x"], output_names=["out"], source=source, header=LUT_HEADER
    )
    results = run_all_schedules(
        kernel, inputs=[np.arange(128, dtype=np.float32)], grid=(128, 1, 1),
        threadgroup=(64, 1, 1), output_shapes=[(128,)], output_dtypes=[np.float32],
    )  # fmt: skip
    return {name: np.asarray(out[0]) for name, out in results.items()}


def test_missing_barrier_reads_poisoned_threadgroup_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Even without race detection, a missing barrier shows: poisoned memory is NaN."""
    monkeypatch.setenv("OSS_DESK_EMU_RACES", "0")
    racy = _all_schedules("bug_lut_race", LUT_SOURCE.replace("{barrier}", ""))
    fixed = _all_schedules(
        "bug_lut_fixed",
        LUT_SOURCE.replace("{barrier}", "threadgroup_barrier(mem_flags::mem_threadgroup);"),
    )
    i = np.arange(128)
    lut = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6], np.float32)
    for out in fixed.values():
        np.testing.assert_array_equal(out, i * lut[(i * 5) % 16])
    assert np.isnan(racy["forward"]).any() and np.isnan(racy["reverse"]).any()


@pytest.mark.parametrize("order", SCHEDULES)
def test_missing_barrier_is_a_race_under_every_schedule(order: str) -> None:
    kernel = metal_kernel(
        name="bug_lut_race", input_names=["x"], output_names=["out"],
        source=LUT_SOURCE.replace("{barrier}", ""), header=LUT_HEADER,
    )  # fmt: skip
    with pytest.raises(DataRaceError) as info:
        kernel(
            inputs=[np.arange(128, dtype=np.float32)], grid=(128, 1, 1), threadgroup=(64, 1, 1),
            output_shapes=[(128,)], output_dtypes=[np.float32], schedule=order,
        )  # fmt: skip
    text = str(info.value)
    # the read (line 7) meets either nothing written yet, or a write (line 4) of another simdgroup
    assert "threadgroup memory `lut`" in text and "bug_lut_race/source:7" in text, text
    assert "uninitialised" in text or "bug_lut_race/source:4" in text, text


REDUCTION = """
    threadgroup float partial[64];
    uint t = thread_index_in_threadgroup;
    partial[t] = x[thread_position_in_grid.x];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint stride = 32; stride > 0; stride /= 2) {
        if (t < stride) partial[t] += partial[t + stride];
        {barrier}
    }
    out[thread_position_in_grid.x] = partial[0];
"""


def test_missing_barrier_in_a_reduction_changes_the_result_with_the_schedule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OSS_DESK_EMU_RACES", "0")
    results = _all_schedules("bug_reduction_race", REDUCTION.replace("{barrier}", ""))
    expected = np.repeat([np.arange(64).sum(), np.arange(64, 128).sum()], 64)
    wrong = [name for name, out in results.items() if not np.array_equal(out, expected)]
    assert "forward" in wrong, wrong


def test_missing_barrier_in_a_reduction_is_a_race_naming_both_lanes() -> None:
    with pytest.raises(DataRaceError) as info:
        _all_schedules("bug_reduction_race", REDUCTION.replace("{barrier}", ""))
    text = str(info.value)
    assert "data race on threadgroup memory `partial`" in text, text
    # both lanes' accesses are located: the `+=` (line 7) and the `+=` or the final read (line 10)
    assert text.count("at bug_reduction_race/source:") == 2 and "source:7" in text, text
    assert "simdgroup 0" in text and "simdgroup 1" in text, text
    fixed = REDUCTION.replace("{barrier}", "threadgroup_barrier(mem_flags::mem_threadgroup);")
    expected = np.repeat([np.arange(64).sum(), np.arange(64, 128).sum()], 64)
    for out in _all_schedules("reduction_fixed", fixed).values():
        np.testing.assert_array_equal(out, expected)


def test_lost_update_on_an_output_is_a_race() -> None:
    """Two simdgroups doing `y += partial` on one output: reads and writes interleave on a GPU."""
    source = """
        uint t = thread_index_in_threadgroup;
        out[t % 32] += x[thread_position_in_grid.x];
    """
    with pytest.raises(DataRaceError, match=r"output `out` at element \d+") as info:
        _launch("bug_lost_update", source, n=64, init_value=0.0)
    assert "bug_lost_update/source:3" in str(info.value)
    atomic = """
        uint t = thread_index_in_threadgroup;
        atomic_fetch_add_explicit(&out[t % 32], x[thread_position_in_grid.x], memory_order_relaxed);
    """
    kernel = metal_kernel(
        name="atomic_update", input_names=["x"], output_names=["out"], source=atomic,
        atomic_outputs=True,
    )  # fmt: skip
    (out,) = kernel(
        inputs=[np.arange(64, dtype=np.float32)], grid=(64, 1, 1), threadgroup=(64, 1, 1),
        output_shapes=[(32,)], output_dtypes=[np.float32], init_value=0.0,
    )  # fmt: skip
    np.testing.assert_array_equal(np.asarray(out), np.arange(32) * 2 + 32)


def test_two_threadgroups_writing_one_output_race() -> None:
    source = "out[thread_position_in_grid.x % 64] = x[thread_position_in_grid.x];"
    with pytest.raises(DataRaceError, match="another threadgroup"):
        _launch("bug_cross_group", source, n=128)


def test_one_simdgroup_sharing_data_is_no_race() -> None:
    """Lanes of one simdgroup run in lockstep: exchanging through memory needs no barrier."""
    source = """
        threadgroup float mem[32];
        uint t = thread_index_in_threadgroup;
        mem[t] = x[thread_position_in_grid.x];
        simdgroup_barrier(mem_flags::mem_threadgroup);
        out[thread_position_in_grid.x] = mem[31 - t];
    """
    kernel = metal_kernel(
        name="one_simdgroup", input_names=["x"], output_names=["out"], source=source
    )
    (out,) = kernel(
        inputs=[np.arange(64, dtype=np.float32)], grid=(64, 1, 1), threadgroup=(32, 1, 1),
        output_shapes=[(64,)], output_dtypes=[np.float32],
    )  # fmt: skip
    np.testing.assert_array_equal(
        np.asarray(out), np.r_[np.arange(32)[::-1], np.arange(64, 32, -1) - 1]
    )


def test_barrier_after_an_early_return_is_divergent() -> None:
    source = """
        threadgroup float t_mem[64];
        uint t = thread_index_in_threadgroup;
        if (t == 5) return;
        t_mem[t] = x[thread_position_in_grid.x];
        threadgroup_barrier(mem_flags::mem_threadgroup);
        out[thread_position_in_grid.x] = t_mem[63 - t];
    """
    with pytest.raises(SynchronizationError, match=r"divergent threadgroup_barrier") as info:
        _launch("bug_early_return", source, n=64)  # one threadgroup: workers race to report
    assert "bug_early_return/source:6" in str(info.value)  # line 1 is the empty first line
    assert info.value.kernel == "bug_early_return" and info.value.threadgroup == (0, 0, 0)


def test_threads_at_different_barriers_are_divergent() -> None:
    source = """
        uint t = thread_index_in_threadgroup;
        if (t < 32) {
            threadgroup_barrier(mem_flags::mem_threadgroup);
        } else {
            threadgroup_barrier(mem_flags::mem_threadgroup);
        }
        out[thread_position_in_grid.x] = 0.0f;
    """
    with pytest.raises(SynchronizationError, match=r"source:4\).*source:6\)"):
        _launch("bug_two_barriers", source)


def test_lanes_at_different_simd_functions_are_divergent() -> None:
    source = """
        float v = x[thread_position_in_grid.x];
        float r = thread_index_in_simdgroup < 16 ? simd_sum(v) : simd_max(v);
        out[thread_position_in_grid.x] = r;
    """
    with pytest.raises(
        SynchronizationError, match=r"lanes 0-15 wait at simd_sum .* lane 16 reached simd_max"
    ):
        _launch("bug_divergent_simd", source)


def test_lanes_split_between_a_barrier_and_a_simd_function_deadlock() -> None:
    source = """
        float v = x[thread_position_in_grid.x];
        if (thread_index_in_simdgroup < 16) threadgroup_barrier(mem_flags::mem_threadgroup);
        else v = simd_sum(v);
        out[thread_position_in_grid.x] = v;
    """
    with pytest.raises(SynchronizationError, match=r"deadlock.*threadgroup_barrier.*simd_sum"):
        _launch("bug_simd_barrier_deadlock", source)


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("out[i] = x[i + 1];", r"read of input `x` at element 128 \(it has 128 elements\)"),
        ("out[i + 1] = x[i];", r"write of output `out` at element 128"),
        ("out[i] = x[i - 1];", r"read of input `x` at element 4294967295 .*wrapped"),
        ("out[int(i) - 1] = x[i];", r"write before the start of output `out`"),
        ("const_cast<device float*>(x)[i] = 0.0f; out[i] = 0.0f;", r"inputs are read-only"),
    ],
)
def test_device_buffer_overruns_are_reported(statement: str, expected: str) -> None:
    source = "uint i = thread_position_in_grid.x;\n" + statement
    with pytest.raises(OutOfBoundsError, match=expected):
        _launch(f"bug_oob_{abs(hash(statement)) % 10**6}", source)


def test_threadgroup_array_overrun_is_reported() -> None:
    source = """
        threadgroup float small[16];
        small[thread_index_in_threadgroup] = 1.0f;  // 64 threads
        out[thread_position_in_grid.x] = small[0];
    """
    with pytest.raises(OutOfBoundsError, match=r"threadgroup array `small` \(64 bytes\)") as info:
        _launch("bug_threadgroup_overrun", source, n=64)
    assert info.value.thread == (16, 0, 0)


def test_threadgroup_memory_beyond_32_kib_is_refused() -> None:
    source = """
        threadgroup float big[9000];
        big[thread_index_in_threadgroup] = 1.0f;
        out[thread_position_in_grid.x] = big[0];
    """
    with pytest.raises(KernelCrashError, match=r"36000 bytes .* exceeds the 32768"):
        _launch("bug_threadgroup_too_big", source)


def test_crashes_and_hangs_become_exceptions(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(KernelCrashError, match="stack overflow"):
        _launch(
            "bug_stack_overflow",
            "float big[100000]; for (int j = 0; j < 100000; ++j) big[j] = x[j % 128];\n"
            "out[thread_position_in_grid.x] = big[int(x[1])];",
        )
    with pytest.raises(KernelCrashError, match="division by zero"):
        _launch("bug_divide_by_zero", "out[thread_position_in_grid.x] = 7 / int(x[0]);")
    monkeypatch.setenv("OSS_DESK_EMU_TIMEOUT", "1")
    spin = """
        threadgroup atomic_uint flag;
        uint t = thread_index_in_threadgroup;
        if (t == 0) atomic_store_explicit(&flag, 0u, memory_order_relaxed);
        threadgroup_barrier(mem_flags::mem_threadgroup);
        if (t == 1) atomic_store_explicit(&flag, 1u, memory_order_relaxed);
        while (atomic_load_explicit(&flag, memory_order_relaxed) == 0) {}  // thread 0 spins
        out[thread_position_in_grid.x] = 1.0f;
    """
    with pytest.raises(KernelTimeoutError, match="did not finish within 1 s"):
        _launch("bug_spin_wait", spin, n=64)


def test_compile_errors_point_at_the_kernel_source() -> None:
    source = "uint i = thread_position_in_grid.x;\nout[i] = no_such_function(x[i]);\n"
    with pytest.raises(KernelCompileError) as info:
        _launch("bug_compile_error", source)
    message = str(info.value)
    assert "bug_compile_error/source:2:10: error: 'no_such_function' was not declared" in (
        message.replace("‘", "'").replace("’", "'")
    )
    assert "out[i] = no_such_function(x[i]);" in message


def test_unwritten_outputs_are_poisoned_unless_initialised() -> None:
    source = "uint i = thread_position_in_grid.x;\nif (i % 2 == 0) out[i] = x[i];"
    poisoned = _launch("bug_partial_write", source)
    assert np.isnan(poisoned[1::2]).all() and not np.isnan(poisoned[::2]).any()
    initialised = _launch("bug_partial_write", source, init_value=0.0)
    np.testing.assert_array_equal(initialised[1::2], 0.0)
