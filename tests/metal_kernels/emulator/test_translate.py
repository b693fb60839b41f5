"""The one source rewrite: threadgroup variable declarations become shared storage."""

from __future__ import annotations

from metal_kernels.emulator.translate import rewrite_threadgroup


def test_declarations_become_shared_storage_and_keep_their_lines() -> None:
    source = (
        "threadgroup float lut[16];\n"
        "threadgroup vec<float, 4> a[2][N], b[3];\n"
        "threadgroup atomic_uint\n    count;\n"
        "x = 1;\n"
    )
    assert rewrite_threadgroup(source) == (
        "MSL_TG(lut, [16], float);\n"
        "MSL_TG(a, [2][N], vec<float, 4>); MSL_TG(b, [3], vec<float, 4>);\n"
        "MSL_TG(count, , atomic_uint);\n\n"
        "x = 1;\n"
    )


def test_qualifiers_comments_strings_and_barriers_are_left_alone() -> None:
    source = (
        "threadgroup float* p = lut;  // threadgroup x[4];\n"
        "inline float f(threadgroup float& r) { return r; }\n"
        'const char* s = "threadgroup y;";\n'
        "threadgroup_barrier(mem_flags::mem_threadgroup);\n"
    )
    assert rewrite_threadgroup(source) == source


def test_an_initialised_threadgroup_variable_fails_to_compile() -> None:
    # Erasing the keyword would give every thread a private copy without any error.
    rewritten = rewrite_threadgroup("threadgroup float total = 0.0f;\nx = 1;")
    assert rewritten.startswith("static_assert(sizeof(int) == 0,")
    assert rewritten.endswith("\nx = 1;")


def test_half_literals_become_half_values_outside_comments() -> None:
    from metal_kernels.emulator.translate import rewrite_half_literals

    source = "half a = 1.5h + .25H * 2h; // 3h stays\nfloat b = x1h + 0x1h + 1e-2h + v.h;\n"
    assert rewrite_half_literals(source) == (
        "half a = half(float(1.5)) + half(float(.25)) * half(float(2)); // 3h stays\n"
        "float b = x1h + 0x1h + half(float(1e-2)) + v.h;\n"
    )
