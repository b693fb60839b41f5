"""MXFP4-style kernels (packed uint32 or uint8 blocks, uint8 E8M0 scales, bfloat16 data) run on the
emulator and agree with MLX's own mxfp4 dequantization and with numpy."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from metal_kernels.emulator import is_available, metal_kernel, run_all_schedules, unavailable_reason

pytestmark = pytest.mark.skipif(not is_available(), reason=unavailable_reason() or "")

HEADER = """
constant float FP4_VALUES[16] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f,
                                 -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};
// E8M0 block scale: 2^(s - 127); s == 0 encodes 2^-127, a float subnormal.
inline float e8m0_to_float(uint8_t s) {
    return as_type<float>(s == 0 ? 0x00400000u : uint(s) << 23);
}
"""

# One thread per 32-value block; the table of fp4 values lives in threadgroup memory.
DEQUANT = metal_kernel(
    name="mxfp4_dequant_bf16",
    input_names=["w", "scales"],
    output_names=["out"],
    header=HEADER,
    source="""
        threadgroup float lut[16];
        // A strided fill: the last threadgroup may have fewer than 16 threads (the emulator's
        // poisoned threadgroup memory caught `if (t < 16) lut[t] = ...` here).
        for (uint t = thread_index_in_threadgroup; t < 16; t += threads_per_threadgroup.x)
            lut[t] = FP4_VALUES[t];
        threadgroup_barrier(mem_flags::mem_threadgroup);
        uint block = thread_position_in_grid.x;
        if (block >= uint(scales_shape[0] * scales_shape[1])) return;
        float scale = e8m0_to_float(scales[block]);
        const device uint4* words = reinterpret_cast<const device uint4*>(w) + block;
        uint4 q = *words;  // 8 nibbles per word, low nibble first
        for (int k = 0; k < 32; ++k) {
            uint nibble = (q[k / 8] >> (4 * (k % 8))) & 0xFu;
            out[32 * block + k] = bfloat16_t(lut[nibble] * scale);
        }
    """,
)

# y = W x for uint8 blocks (two nibbles per byte, gpt-oss checkpoint layout): one simdgroup per row.
MATVEC = metal_kernel(
    name="mxfp4_matvec_simd",
    input_names=["x", "w", "scales"],
    output_names=["y"],
    header=HEADER,
    source="""
        uint row = threadgroup_position_in_grid.x * simdgroups_per_threadgroup
                   + simdgroup_index_in_threadgroup;
        uint lane = thread_index_in_simdgroup;
        const int K = x_shape[0];
        if (row >= uint(w_shape[0])) return;  // whole simdgroups leave together
        float acc = 0.0f;
        for (int b = int(lane); b < K / 32; b += 32) {
            const device uint8_t* q = w + row * (K / 2) + 16 * b;
            float part = 0.0f;
            for (int j = 0; j < 16; ++j) {
                part += float(x[32 * b + 2 * j]) * FP4_VALUES[q[j] & 15]
                      + float(x[32 * b + 2 * j + 1]) * FP4_VALUES[q[j] >> 4];
            }
            acc += part * e8m0_to_float(scales[row * (K / 32) + b]);
        }
        acc = simd_sum(acc);
        if (lane == 0) y[row] = T(acc);
    """,
)

FP4 = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6], np.float32)


def _dequant_uint8(w: np.ndarray, scales: np.ndarray) -> np.ndarray:
    nibbles = np.stack([w & 15, w >> 4], axis=-1).reshape(*w.shape[:-1], -1)
    scale = np.where(scales == 0, np.float32(2.0**-127), np.exp2(scales.astype(np.float32) - 127))
    return FP4[nibbles] * np.repeat(scale, 32, axis=-1)


def test_dequant_of_packed_uint32_matches_mlx_mxfp4_bit_for_bit() -> None:
    weights = mx.random.normal((24, 96), key=mx.random.key(0)) * 4
    quantized = mx.quantize(weights, group_size=32, bits=4, mode="mxfp4")
    wq, scales = quantized[0], quantized[1]  # mxfp4 has no biases
    expected = mx.dequantize(wq, scales, group_size=32, bits=4, mode="mxfp4")
    n_blocks = scales.size
    results = run_all_schedules(
        DEQUANT, inputs=[wq, scales], grid=(n_blocks, 1, 1), threadgroup=(32, 1, 1),
        output_shapes=[weights.shape], output_dtypes=[mx.bfloat16],
    )  # fmt: skip
    for (out,) in results.values():
        assert isinstance(out, mx.array) and out.dtype == mx.bfloat16
        assert mx.array_equal(out, expected.astype(mx.bfloat16))


def test_uint8_block_matvec_with_bfloat16_activations() -> None:
    rng = np.random.default_rng(5)
    N, K = 40, 128
    w = rng.integers(0, 256, (N, K // 2), dtype=np.uint8)
    scales = rng.integers(118, 130, (N, K // 32), dtype=np.uint8)
    scales[0, 0] = 0  # the 2^-127 corner of E8M0
    x = mx.array(rng.standard_normal(K).astype(np.float32)).astype(mx.bfloat16)
    (y,) = MATVEC(
        inputs=[x, mx.array(w), mx.array(scales)], template=[("T", mx.float32)],
        grid=(32 * N, 1, 1), threadgroup=(128, 1, 1),
        output_shapes=[(N,)], output_dtypes=[mx.float32],
    )  # fmt: skip
    x64 = np.array(x.astype(mx.float32)).astype(np.float64)
    expected = _dequant_uint8(w, scales).astype(np.float64) @ x64
    np.testing.assert_allclose(np.array(y), expected, rtol=1e-5, atol=1e-5)
