"""Kernels run on the emulator give what numpy gives, with Metal's thread and SIMT semantics."""

from __future__ import annotations

from typing import Any

import mlx.core as mx
import numpy as np
import pytest

from metal_kernels.emulator import (
    SCHEDULES,
    EmulatorUnavailable,
    is_available,
    metal_kernel,
    run_all_schedules,
    schedule,
    unavailable_reason,
)

pytestmark = pytest.mark.skipif(not is_available(), reason=unavailable_reason() or "")

ADD = metal_kernel(
    name="test_add",
    input_names=["a", "b"],
    output_names=["out"],
    source="""
        uint i = thread_position_in_grid.x;
        out[i] = a[i] + b[i];
    """,
)

# Tree reduction in threadgroup memory: one partial sum per threadgroup of 256.
BLOCK_SUM = metal_kernel(
    name="test_block_sum",
    input_names=["x"],
    output_names=["out"],
    source="""
        threadgroup float partial[256];
        uint t = thread_index_in_threadgroup;
        uint i = thread_position_in_grid.x;
        partial[t] = i < uint(x_shape[0]) ? x[i] : 0.0f;
        threadgroup_barrier(mem_flags::mem_threadgroup);
        for (uint stride = threads_per_threadgroup.x / 2; stride > 0; stride /= 2) {
            if (t < stride) partial[t] += partial[t + stride];
            threadgroup_barrier(mem_flags::mem_threadgroup);
        }
        if (t == 0) out[threadgroup_position_in_grid.x] = partial[0];
    """,
)

SIMD_REDUCE = metal_kernel(
    name="test_simd_reduce",
    input_names=["x"],
    output_names=["sums", "maxes", "mins"],
    source="""
        uint i = thread_position_in_grid.x;
        if (i >= uint(x_shape[0])) return;  // the lanes past the end are inactive
        float v = x[i];
        float s = simd_sum(v), hi = simd_max(v), lo = simd_min(v);
        if (simd_is_first()) {
            sums[i / 32] = s;
            maxes[i / 32] = hi;
            mins[i / 32] = lo;
        }
    """,
)

SHUFFLES = metal_kernel(
    name="test_shuffles",
    input_names=["x"],
    output_names=["down", "up", "xor5", "bcast", "prefix"],
    source="""
        uint i = thread_position_in_grid.x;
        float v = x[i];
        down[i] = simd_shuffle_down(v, 1);
        up[i] = simd_shuffle_up(v, 2);
        xor5[i] = simd_shuffle_xor(v, 5);
        bcast[i] = simd_broadcast(v, 3);
        prefix[i] = simd_prefix_inclusive_sum(v);
    """,
)

IDS = metal_kernel(
    name="test_ids",
    input_names=[],
    output_names=["ids"],
    source="""
        uint3 g = thread_position_in_grid;
        device uint* o = ids + 12 * (g.y * threads_per_grid.x + g.x);
        o[0] = thread_position_in_threadgroup.x;
        o[1] = thread_position_in_threadgroup.y;
        o[2] = threadgroup_position_in_grid.x;
        o[3] = threadgroup_position_in_grid.y;
        o[4] = threads_per_threadgroup.x;
        o[5] = threads_per_threadgroup.y;
        o[6] = thread_index_in_threadgroup;
        o[7] = simdgroup_index_in_threadgroup;
        o[8] = thread_index_in_simdgroup;
        o[9] = threadgroups_per_grid.x;
        o[10] = dispatch_threads_per_threadgroup.x;
        o[11] = threads_per_simdgroup;
    """,
)


def test_elementwise_add_numpy_in_numpy_out() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 1000)).astype(np.float32)
    (out,) = ADD(
        inputs=[a, b], grid=(1000, 1, 1), threadgroup=(256, 1, 1),
        output_shapes=[a.shape], output_dtypes=[np.float32],
    )  # fmt: skip
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, a + b)


def test_elementwise_add_mlx_in_mlx_out() -> None:
    a = mx.arange(100).astype(mx.float16) / 7
    (out,) = ADD(
        inputs=[a, a], grid=(100, 1, 1), threadgroup=(64, 1, 1),
        output_shapes=[a.shape], output_dtypes=[mx.float16],
    )  # fmt: skip
    assert isinstance(out, mx.array) and out.dtype == mx.float16
    assert mx.array_equal(out, a + a)


def test_threadgroup_tree_reduction_matches_numpy_under_every_schedule() -> None:
    x = np.random.default_rng(1).standard_normal(1000).astype(np.float32)
    results = run_all_schedules(
        BLOCK_SUM, inputs=[x], grid=(1024, 1, 1), threadgroup=(256, 1, 1),
        output_shapes=[(4,)], output_dtypes=[np.float32],
    )  # fmt: skip
    expected = np.add.reduceat(x, [0, 256, 512, 768])
    for outputs in results.values():
        np.testing.assert_allclose(outputs[0], expected, rtol=1e-5)
        np.testing.assert_array_equal(outputs[0], results["forward"][0])


def test_simd_reductions_skip_inactive_lanes() -> None:
    x = np.random.default_rng(2).standard_normal(100).astype(np.float32)
    sums, maxes, mins = SIMD_REDUCE(
        inputs=[x], grid=(128, 1, 1), threadgroup=(64, 1, 1),
        output_shapes=[(4,)] * 3, output_dtypes=[np.float32] * 3,
    )  # fmt: skip
    chunks = [x[k : k + 32] for k in range(0, 100, 32)]
    np.testing.assert_allclose(sums, [c.sum() for c in chunks], rtol=1e-5)
    np.testing.assert_array_equal(maxes, [c.max() for c in chunks])
    np.testing.assert_array_equal(mins, [c.min() for c in chunks])


def test_shuffles_and_prefix_sums() -> None:
    x = np.arange(64, dtype=np.float32) * 3
    down, up, xor5, bcast, prefix = SHUFFLES(
        inputs=[x], grid=(64, 1, 1), threadgroup=(64, 1, 1),
        output_shapes=[(64,)] * 5, output_dtypes=[np.float32] * 5,
    )  # fmt: skip
    lanes = np.arange(32)
    for base in (0, 32):
        v = x[base : base + 32]
        s = slice(base, base + 32)
        np.testing.assert_array_equal(down[s], np.where(lanes + 1 < 32, v[(lanes + 1) % 32], v))
        np.testing.assert_array_equal(up[s], np.where(lanes >= 2, v[lanes - 2], v))
        np.testing.assert_array_equal(xor5[s], v[lanes ^ 5])
        np.testing.assert_array_equal(bcast[s], np.full(32, v[3]))
        np.testing.assert_array_equal(prefix[s], np.cumsum(v))


def test_thread_ids_of_a_2d_grid_with_partial_threadgroups() -> None:
    W, H, TX, TY = 10, 6, 8, 4  # edge threadgroups are 2 wide and 2 high
    (ids,) = IDS(
        inputs=[], grid=(W, H, 1), threadgroup=(TX, TY, 1),
        output_shapes=[(H, W, 12)], output_dtypes=[np.uint32],
    )  # fmt: skip
    y, x = np.mgrid[0:H, 0:W]
    width = np.minimum(TX, W - x // TX * TX)
    height = np.minimum(TY, H - y // TY * TY)
    index = (y % TY) * width + x % TX
    expected = np.stack(
        [x % TX, y % TY, x // TX, y // TY, width, height, index, index // 32, index % 32,
         np.full_like(x, 2), np.full_like(x, TX), np.full_like(x, 32)],
        axis=-1,
    )  # fmt: skip
    np.testing.assert_array_equal(ids, expected)


def test_strided_input_without_row_contiguous_copy() -> None:
    kernel = metal_kernel(
        name="test_strided_copy",
        input_names=["inp"],
        output_names=["out"],
        ensure_row_contiguous=False,
        source="""
            uint elem = thread_position_in_grid.x;
            // int64_t: with uint, a negative stride wraps (the emulator reports that read)
            out[elem] = inp[elem_to_loc<int64_t>(elem, inp_shape, inp_strides, inp_ndim)];
        """,
    )
    base = np.arange(8 * 16, dtype=np.float32).reshape(8, 16)
    for view in (base[::2, 1::3], base[::-1, ::-2], base.T):
        (out,) = kernel(
            inputs=[view], grid=(view.size, 1, 1), threadgroup=(32, 1, 1),
            output_shapes=[view.shape], output_dtypes=[np.float32],
        )  # fmt: skip
        np.testing.assert_array_equal(out, view)


def test_atomic_outputs_init_value_and_scalar_input() -> None:
    kernel = metal_kernel(
        name="test_histogram",
        input_names=["x", "weight"],
        output_names=["hist"],
        atomic_outputs=True,
        source="""
            uint i = thread_position_in_grid.x;
            atomic_fetch_add_explicit(&hist[x[i] % 16], weight, memory_order_relaxed);
        """,
    )
    x = np.random.default_rng(3).integers(0, 1000, 4096).astype(np.uint32)
    (hist,) = kernel(
        inputs=[x, 0.5], grid=(x.size, 1, 1), threadgroup=(128, 1, 1),
        output_shapes=[(16,)], output_dtypes=[np.float32], init_value=1.0,
    )  # fmt: skip
    np.testing.assert_array_equal(hist, 1.0 + 0.5 * np.bincount(x % 16, minlength=16))


def test_schedules_order_the_threads_of_a_threadgroup() -> None:
    kernel = metal_kernel(
        name="test_run_order",
        input_names=[],
        output_names=["order", "counter"],
        atomic_outputs=True,
        source="""
            int k = atomic_fetch_add_explicit(&counter[0], 1, memory_order_relaxed);
            atomic_store_explicit(&order[thread_position_in_grid.x], k, memory_order_relaxed);
        """,
    )

    def run(**kw: Any) -> np.ndarray:
        out = kernel(
            inputs=[], grid=(64, 1, 1), threadgroup=(64, 1, 1), init_value=0,
            output_shapes=[(64,), (1,)], output_dtypes=[np.int32, np.int32], **kw,
        )  # fmt: skip
        return np.asarray(out[0])

    np.testing.assert_array_equal(run(), np.arange(64))
    np.testing.assert_array_equal(run(schedule="reverse"), np.arange(64)[::-1])
    with schedule("random", seed=7):
        shuffled = run()
    assert sorted(shuffled) == list(range(64)) and list(shuffled) != list(range(64))
    np.testing.assert_array_equal(run(schedule="random", seed=7), shuffled)
    assert SCHEDULES == ("forward", "reverse", "random", "depth-first")


def test_depth_first_runs_a_released_simdgroup_until_it_blocks() -> None:
    """Thread 0's second ticket: after all 64 first tickets in lockstep schedules, after only its
    own simdgroup's 32 in depth-first (simdgroup 0 runs on past the simd_sum)."""
    kernel = metal_kernel(
        name="test_depth_first",
        input_names=[],
        output_names=["second", "counter"],
        atomic_outputs=True,
        source="""
            atomic_fetch_add_explicit(&counter[0], 1, memory_order_relaxed);
            uint s = simd_sum(1u);
            int k = atomic_fetch_add_explicit(&counter[0], int(s) - 31, memory_order_relaxed);
            atomic_store_explicit(&second[thread_position_in_grid.x], k, memory_order_relaxed);
            threadgroup_barrier(mem_flags::mem_threadgroup);
        """,
    )

    def run(order: str) -> np.ndarray:
        out = kernel(
            inputs=[], grid=(64, 1, 1), threadgroup=(64, 1, 1), init_value=0, schedule=order,
            output_shapes=[(64,), (1,)], output_dtypes=[np.int32, np.int32],
        )  # fmt: skip
        return np.asarray(out[0])

    assert run("forward")[0] == 64
    np.testing.assert_array_equal(run("depth-first"), np.r_[32:64, 96:128])


def test_in_process_launches_for_debuggers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSS_DESK_EMU_ISOLATE", "0")
    monkeypatch.setenv("OSS_DESK_EMU_WORKERS", "1")
    a = np.arange(300, dtype=np.float32)
    (out,) = ADD(
        inputs=[a, a], grid=(300, 1, 1), threadgroup=(128, 1, 1),
        output_shapes=[a.shape], output_dtypes=[np.float32],
    )  # fmt: skip
    np.testing.assert_array_equal(out, 2 * a)


def test_unavailable_without_a_compiler(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSS_DESK_EMU_CXX", "/nonexistent/c++")
    assert not is_available()
    with pytest.raises(EmulatorUnavailable, match="OSS_DESK_EMU_CXX=/nonexistent/c"):
        metal_kernel(name="k", input_names=[], output_names=["out"], source="")


def test_a_pipeline_limit_on_threads_per_threadgroup(monkeypatch: pytest.MonkeyPatch) -> None:
    """A register-heavy pipeline may allow fewer than 1024 threads; the launch fails as in MLX."""
    kernel = metal_kernel(
        name="test_pipeline_limit", input_names=["a"], output_names=["out"],
        source="out[thread_position_in_grid.x] = a[thread_position_in_grid.x];",
    )  # fmt: skip
    a = np.arange(512, dtype=np.float32)

    def launch(tg: int, grid: int = 512) -> None:
        kernel(
            inputs=[np.resize(a, grid)], grid=(grid, 1, 1), threadgroup=(tg, 1, 1),
            output_shapes=[(grid,)], output_dtypes=[np.float32],
        )  # fmt: skip

    with pytest.raises(ValueError, match=r"\(2048\) is greater than the maximum .* \(1024\)"):
        launch(2048, grid=4096)
    kernel.max_total_threads_per_threadgroup = 256
    launch(256)
    launch(512, grid=200)  # clamped to the grid first: 200 threads
    with pytest.raises(ValueError, match=r"\(512\) is greater than the maximum .* \(256\)"):
        launch(512)
    kernel.max_total_threads_per_threadgroup = 1024
    monkeypatch.setenv("OSS_DESK_EMU_MAX_THREADS", "128")
    with pytest.raises(ValueError, match=r"\(256\) is greater than the maximum .* \(128\)"):
        launch(256)
