"""The MSL subset of the shim: dtypes, half and bfloat rounding, vectors, bit functions."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from metal_kernels.emulator import is_available, metal_kernel, unavailable_reason

pytestmark = pytest.mark.skipif(not is_available(), reason=unavailable_reason() or "")

ALL_DTYPES_SOURCE = """
    uint i = thread_position_in_grid.x;
    ob[i] = !b[i];
    ou8[i] = u8[i] + 1;
    ou32[i] = u32[i] * 3u;
    oi32[i] = -i32[i];
    of16[i] = f16[i] * half(3);
    obf16[i] = bf16[i] * bfloat16_t(3);
    of32[i] = float(bf16[i]) + float(f16[i]) + f32[i];
    ohalf[i] = half(f32[i]);  // rounding float -> half
"""
NAMES = ["b", "u8", "u32", "i32", "f16", "bf16", "f32"]
OUT_NAMES = ["ob", "ou8", "ou32", "oi32", "of16", "obf16", "of32", "ohalf"]


def _all_dtypes_kernel_outputs(n: int = 1000) -> tuple[list[mx.array], list[mx.array]]:
    kernel = metal_kernel(
        name="shim_all_dtypes",
        input_names=NAMES,
        output_names=OUT_NAMES,
        source=ALL_DTYPES_SOURCE,
    )
    rng = np.random.default_rng(0)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 65504, 65520, 1e-8, 6e-5, -3e-7])
    f32 = np.concatenate([special, rng.standard_normal(n - special.size) * 100]).astype(np.float32)
    inputs = [
        mx.array(rng.integers(0, 2, n).astype(np.bool_)),
        mx.array(rng.integers(0, 256, n).astype(np.uint8)),
        mx.array(rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)),
        mx.array(rng.integers(-(2**31), 2**31, n).astype(np.int32)),
        mx.array(rng.standard_normal(n).astype(np.float16)),
        mx.array(rng.standard_normal(n).astype(np.float32)).astype(mx.bfloat16),
        mx.array(f32),
    ]
    dtypes = [
        mx.bool_,
        mx.uint8,
        mx.uint32,
        mx.int32,
        mx.float16,
        mx.bfloat16,
        mx.float32,
        mx.float16,
    ]
    outputs = kernel(
        inputs=inputs, grid=(n, 1, 1), threadgroup=(128, 1, 1),
        output_shapes=[(n,)] * len(dtypes), output_dtypes=dtypes,
    )  # fmt: skip
    return inputs, outputs


def _check_all_dtypes(inputs: list[mx.array], outputs: list[mx.array]) -> None:
    b, u8, u32, i32, f16, bf16, f32 = inputs
    expected = [
        mx.logical_not(b),
        u8 + 1,
        u32 * 3,
        -i32,
        f16 * mx.array(3, mx.float16),
        bf16 * mx.array(3, mx.bfloat16),
        bf16.astype(mx.float32) + f16.astype(mx.float32) + f32,
        f32.astype(mx.float16),
    ]
    for name, out, exp in zip(OUT_NAMES, outputs, expected, strict=True):
        assert out.dtype == exp.dtype, name
        np.testing.assert_array_equal(_bits(out), _bits(exp), err_msg=name)


def _bits(a: mx.array) -> np.ndarray:
    return np.array(a.view(mx.uint16) if a.dtype == mx.bfloat16 else a)


def test_every_supported_dtype_round_trips_with_gpu_rounding() -> None:
    _check_all_dtypes(*_all_dtypes_kernel_outputs())


def test_software_half_matches_float16(monkeypatch: pytest.MonkeyPatch) -> None:
    # The fallback for compilers without _Float16 (g++ < 12, clang < 15 on x86-64).
    monkeypatch.setenv("OSS_DESK_EMU_CXXFLAGS", "-DMSL_SOFT_HALF")
    _check_all_dtypes(*_all_dtypes_kernel_outputs())


def test_vectors_swizzles_as_type_and_bit_functions() -> None:
    kernel = metal_kernel(
        name="shim_language",
        input_names=[],
        output_names=["f", "u"],
        source="""
            float4 a = float4(1.0f, 2.0f, 3.0f, 4.0f);
            float4 b = a.wzyx;
            a.xy = b.zw;
            float3 c = float3(a.xy, 5.0f);
            float2 d = c.zy * 2.0f + 1.0f;
            bool4 gt = a > b;
            float4 e = float4(0.0f);
            e.xy = a.xy;  // same swizzle type: must not copy all four components
            float fs[22] = {a.x, a.y, a.z, a.w, c.x, c.y, c.z, d.x, d.y, dot(a, b),
                            length(float2(3.0f, 4.0f)), select(-1.0f, 1.0f, gt.z),
                            float(any(gt)), float(all(gt)), metal::clamp(7.5f, 0.0f, 6.0f),
                            metal::fract(-1.25f), metal::max(NAN, 2.0f),
                            float(as_type<half2>(0x3c004000u).x), float(sizeof(float3)),
                            float(half(65504.0f) * half(2)), e.y, e.z};
            uint us[12] = {as_type<uint>(1.0f), popcount(0xF0F0u), clz(1u), ctz(8u),
                           extract_bits(0xABCDu, 4u, 8u), reverse_bits(1u),
                           insert_bits(0u, 0xFu, 8u, 4u), rotate(0x80000001u, 1u),
                           mulhi(0x80000000u, 4u), as_type<uint>(uchar4(1, 2, 3, 4)),
                           as_type<ushort>(bfloat16_t(1.00390625f)),
                           as_type<ushort>(bfloat16_t(1.01171875f))};
            for (int k = 0; k < 22; ++k) f[k] = fs[k];
            for (int k = 0; k < 12; ++k) u[k] = us[k];
        """,
    )
    f, u = kernel(
        inputs=[], grid=(1, 1, 1), threadgroup=(1, 1, 1),
        output_shapes=[(22,), (12,)], output_dtypes=[np.float32, np.uint32],
    )  # fmt: skip
    expected_f = [2, 1, 3, 4, 2, 1, 5, 11, 3, 21, 5, 1, 1, 0, 6, 0.75, 2, 2, 16, np.inf, 1, 0]
    np.testing.assert_array_equal(f, np.array(expected_f, np.float32))
    expected_u = [0x3F800000, 8, 31, 3, 0xBC, 0x80000000, 0xF00, 3, 2, 0x04030201, 0x3F80, 0x3F82]
    np.testing.assert_array_equal(u, np.array(expected_u, np.uint32))


def test_simdgroup_matrix_multiply_accumulate() -> None:
    kernel = metal_kernel(
        name="shim_simdgroup_matrix",
        input_names=["a", "b", "c"],
        output_names=["d"],
        source="""
            simdgroup_float8x8 ma, mb, mc;
            simdgroup_load(ma, a, 8);
            simdgroup_load(mb, b, 8, ulong2(0, 0), true);  // transposed
            simdgroup_load(mc, c, 8);
            simdgroup_multiply_accumulate(mc, ma, mb, mc);
            simdgroup_store(mc, d, 8);
        """,
    )
    rng = np.random.default_rng(4)
    a, b, c = rng.standard_normal((3, 8, 8)).astype(np.float32)
    (d,) = kernel(
        inputs=[a, b, c], grid=(32, 1, 1), threadgroup=(32, 1, 1),
        output_shapes=[(8, 8)], output_dtypes=[np.float32],
    )  # fmt: skip
    np.testing.assert_allclose(d, a @ b.T + c, rtol=1e-5, atol=1e-5)


def test_half_literals_and_fast_math_at_its_error_bound() -> None:
    """`0.5h` compiles; fast:: results sit at Metal's fast-math bound, precise:: ones do not."""
    kernel = metal_kernel(
        name="shim_fast_math",
        input_names=["x"],
        output_names=["lit", "fast_exp", "precise_exp", "fast_sin"],
        source="""
            uint i = thread_position_in_grid.x;
            lit[i] = float(0.5h * half(x[i]) + 2h);
            fast_exp[i] = fast::exp(x[i]);
            precise_exp[i] = precise::exp(x[i]);
            fast_sin[i] = fast::sin(x[i]);
        """,
    )
    x = np.linspace(-3, 3, 256).astype(np.float32)
    lit, fexp, pexp, fsin = (
        np.asarray(o)
        for o in kernel(
            inputs=[x], grid=(256, 1, 1), threadgroup=(64, 1, 1),
            output_shapes=[(256,)] * 4, output_dtypes=[np.float32] * 4,
        )
    )  # fmt: skip
    half_x = x.astype(np.float16).astype(np.float32)
    np.testing.assert_allclose(lit, (np.float16(0.5) * half_x + 2).astype(np.float16), rtol=1e-3)
    np.testing.assert_allclose(pexp, np.exp(x.astype(np.float64)), rtol=2e-7)
    ulp = np.spacing(np.abs(pexp))
    bound = (3 + np.floor(np.abs(2 * x))) * ulp * 2  # ILOGB-based ULP may be twice spacing's
    off = np.abs(fexp.astype(np.float64) - pexp)
    assert (off <= bound).all() and (off > 0).mean() > 0.9
    assert np.abs(fsin - np.sin(x.astype(np.float64))).max() <= 2.0**-13 * 1.01
    assert np.abs(fsin - np.sin(x.astype(np.float64))).max() >= 2.0**-13 * 0.9
