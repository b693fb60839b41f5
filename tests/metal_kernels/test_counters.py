"""The emulator's performance counters, checked against byte counts worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.kernels_model import main as kernels_model
from metal_kernels.emulator import counting, metal_kernel

COPY = """
    uint i = thread_position_in_grid.x;
    {load}
"""


@pytest.mark.parametrize(
    ("load", "width"),
    [
        ("out[i] = a[i];", 4),
        ("((device float4*)out)[i] = ((const device float4*)a)[i];", 16),
    ],
)
def test_device_traffic_and_load_widths(load: str, width: int) -> None:
    kernel = metal_kernel(
        name=f"count_copy_{width}", input_names=["a"], output_names=["out"],
        source=COPY.replace("{load}", load),
    )  # fmt: skip
    a = np.arange(1024, dtype=np.float32)
    with counting() as launches:
        (out,) = kernel(
            inputs=[a], grid=(1024 * 4 // width, 1, 1), threadgroup=(64, 1, 1),
            output_shapes=[a.shape], output_dtypes=[np.float32],
        )  # fmt: skip
    np.testing.assert_array_equal(np.asarray(out), a)
    ((name, c),) = launches
    assert name == f"count_copy_{width}"
    src, dst = c.buffers["input `a`"], c.buffers["output `out`"]
    assert (src.read_bytes, src.write_bytes, dst.write_bytes) == (4096, 0, 4096)
    assert src.loads_by_width == {width: 4096 // width}
    assert src.vector16_fraction == (1.0 if width == 16 else 0.0)
    assert c.tg_bytes == 0 and c.constant_loads == 0


def test_threadgroup_memory_and_table_lookups() -> None:
    kernel = metal_kernel(
        name="count_lut", input_names=["a"], output_names=["out"],
        header="constant float LUT[4] = {1.0f, 2.0f, 3.0f, 4.0f};",
        source="""
            threadgroup float tile[64];
            threadgroup float spare[16];
            uint t = thread_index_in_threadgroup;
            tile[t] = a[thread_position_in_grid.x] * LUT[t % 4];
            if (t < 16) spare[t] = 0.0f;
            threadgroup_barrier(mem_flags::mem_threadgroup);
            out[thread_position_in_grid.x] = tile[63 - t];
        """,
    )  # fmt: skip
    a = np.ones(128, dtype=np.float32)
    with counting() as launches:
        kernel(
            inputs=[a], grid=(128, 1, 1), threadgroup=(64, 1, 1), output_shapes=[a.shape],
            output_dtypes=[np.float32],
        )  # fmt: skip
    c = launches[0][1]
    assert c.tg_bytes == 64 * 4 + 16 * 4
    assert (c.tg_write_bytes, c.tg_read_bytes) == (128 * 4 + 2 * 16 * 4, 128 * 4)
    assert c.constant_loads == 128


def test_kernel_model_benchmark_runs_small(capsys: pytest.CaptureFixture[str]) -> None:
    assert kernels_model(["--small"]) == 0
    out = capsys.readouterr().out
    assert "gemv_swiglu" in out and "reference" in out and "gemm (down)" in out
