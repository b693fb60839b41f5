"""The MXFP4 MoE kernels, run by the CPU emulator, against a float64 numpy reference.

Decode kernels run at gpt-oss's real widths (hidden 2880, intermediate 2880). The prefill GEMM at
real widths is launched over a few of its output tiles only (every tile runs the same code over the
whole K = 2880; emulating all 135 column tiles of 200 tokens takes minutes); the complete prefill
path, combine included, runs at smaller widths. Tolerances (relative to the output's largest
magnitude): float32 activations 2e-5 (measured about 2e-6), bfloat16 activations 2e-2.
"""

from __future__ import annotations

from collections.abc import Iterator

import mlx.core as mx
import numpy as np
import pytest

from metal_kernels.emulator import metal_kernel, run_all_schedules, schedule
from metal_kernels.mxfp4_moe import THREADS, TILE_ROWS, MoeKernels, group_by_expert, validate
from tests.metal_kernels.moe_reference import (
    Problem,
    dequantize_words,
    make_problem,
    reference,
    rel_error,
)

F32_TOL = 2e-5
BF16_TOL = 2e-2


@pytest.fixture(scope="module")
def kernels() -> MoeKernels:
    return MoeKernels(metal_kernel)


@pytest.fixture(autouse=True)
def depth_first() -> Iterator[None]:
    """Every kernel test runs with one simdgroup racing ahead of the others (the schedule that
    exposes a missing barrier); test_every_schedule_gives_the_same_answer runs all of them."""
    with schedule("depth-first"):
        yield


@pytest.fixture
def untracked(monkeypatch: pytest.MonkeyPatch) -> None:
    """No race tracking: it triples the cost of a launch, and the real-width tests check numerics
    of the same code that runs tracked at small widths below."""
    monkeypatch.setenv("OSS_DESK_EMU_RACES", "0")


def _decode(
    kernels: MoeKernels, p: Problem, dtype: mx.Dtype = mx.float32
) -> tuple[np.ndarray, np.ndarray]:
    x, idx, _ = p.inputs(dtype)
    gate_up, _ = p.weights(dtype)
    act = kernels.gate_up_gemv(x, idx, gate_up, p.limit)
    y = kernels.decode(*p.args(dtype))
    return np.array(act.astype(mx.float32)), np.array(y.astype(mx.float32))


@pytest.mark.usefixtures("untracked")
@pytest.mark.parametrize("tokens", [1, 2, 7])
def test_decode_kernels_at_real_widths(kernels: MoeKernels, tokens: int) -> None:
    p = make_problem(np.random.default_rng(tokens), E=4, D=2880, I=2880, N=tokens)
    act, y = _decode(kernels, p)
    act_ref, y_ref = reference(p)
    assert rel_error(act, act_ref) < F32_TOL
    assert rel_error(y, y_ref) < F32_TOL


@pytest.mark.usefixtures("untracked")
@pytest.mark.parametrize("tokens", [64, 200])
def test_prefill_gemm_at_real_widths_on_sampled_tiles(kernels: MoeKernels, tokens: int) -> None:
    p = make_problem(np.random.default_rng(tokens), E=4, D=2880, I=2880, N=tokens)
    x, idx, route = p.inputs()
    gate_up, down = p.weights()
    order, rows, tiles = group_by_expert(idx, 4)
    limit = mx.array([p.limit], dtype=mx.float32)
    route_flat = route.reshape(-1).astype(mx.float32)
    act_ref, _ = reference(p)
    pairs = np.array(order)  # sorted position -> flat (token, slot) index
    # gate_up + SwiGLU: the first two 64-row column tiles over every row tile
    (act,) = kernels.gemm(
        inputs=[x, rows, tiles, *gate_up, limit, route_flat],
        template=[("T", mx.float32), ("GATHER", True), ("SWIGLU", True), ("COMBINE", False)],
        grid=(2 * THREADS, tiles.shape[0], 1), threadgroup=(THREADS, 1, 1),
        output_shapes=[(tokens * 4, 2880)], output_dtypes=[mx.float32],
    )  # fmt: skip
    got = np.array(act)[:, :64]
    want = act_ref.reshape(tokens * 4, -1)[pairs][:, :64]
    assert rel_error(got, want) < F32_TOL
    # down projection, bias and route weight, written back in (token, slot) order: two tiles
    act_sorted = mx.array(act_ref.reshape(tokens * 4, -1)[pairs].astype(np.float32))
    (out,) = kernels.gemm(
        inputs=[act_sorted, order.astype(mx.uint32), tiles, *down, limit, route_flat],
        template=[("T", mx.float32), ("GATHER", False), ("SWIGLU", False), ("COMBINE", True)],
        grid=(2 * THREADS, tiles.shape[0], 1), threadgroup=(THREADS, 1, 1),
        output_shapes=[(tokens * 4, 2880)], output_dtypes=[mx.float32],
    )  # fmt: skip
    W2 = dequantize_words(p.down[0], p.down[1])[:, : 2 * TILE_ROWS]
    e_sorted = p.idx.reshape(-1)[pairs]
    a64 = np.array(act_sorted, dtype=np.float64)
    per_pair = np.einsum("pdi,pi->pd", W2[e_sorted], a64) + p.down[2][e_sorted, : 2 * TILE_ROWS]
    want_out = np.empty_like(per_pair)
    want_out[pairs] = per_pair * p.route.reshape(-1)[pairs, None]
    assert rel_error(np.array(out)[:, : 2 * TILE_ROWS], want_out) < F32_TOL


@pytest.mark.usefixtures("untracked")
@pytest.mark.parametrize("tokens", [64, 200])
def test_prefill_path_with_combine(kernels: MoeKernels, tokens: int) -> None:
    p = make_problem(np.random.default_rng(10 + tokens), E=8, D=256, I=192, N=tokens)
    y = np.array(kernels.prefill(*p.args()))
    assert rel_error(y, reference(p)[1]) < F32_TOL


@pytest.mark.parametrize(
    "case",
    ["all-to-one-expert", "unused-experts", "partial-column-tile", "scale-extremes", "past-clamp"],
)
@pytest.mark.parametrize("tokens", [3, 40])
def test_edge_cases(kernels: MoeKernels, case: str, tokens: int) -> None:
    rng = np.random.default_rng(len(case) + tokens)
    kw: dict = dict(E=8, D=128, I=64, N=tokens)
    if case == "all-to-one-expert":
        kw["idx"] = np.tile(np.array([[5, 5, 5, 5]]), (tokens, 1))
    elif case == "unused-experts":
        kw["idx"] = np.stack([rng.choice([1, 6], 2, replace=False) for _ in range(tokens)])
        kw["k"] = 2
    elif case == "partial-column-tile":
        kw.update(D=96, I=96)  # 96 and 192 rows: tiles of 64 rows end part-way
    elif case == "scale-extremes":
        kw["scale_range"] = (0, 2)  # zero and tiny scales; huge ones below
    elif case == "past-clamp":
        kw["x_scale"] = 40.0  # gate and linear pre-activations far beyond +-7
    p = make_problem(rng, **kw)
    if case == "scale-extremes":
        gs = p.gate_up[1]
        gs[:, ::3] = 252  # 2^125 times values up to 6: huge but finite in float32
        p.x[:] = np.float32(1e-37)  # keep products finite
    y = np.array(kernels(*p.args()))
    y_ref = reference(p)[1]
    assert np.isfinite(y).all()
    if case == "scale-extremes":
        assert np.allclose(y, y_ref, rtol=1e-4, atol=1e-30)
    else:
        assert rel_error(y, y_ref) < F32_TOL


def test_past_the_clamp_the_activation_saturates(kernels: MoeKernels) -> None:
    p = make_problem(np.random.default_rng(3), E=4, D=64, I=64, N=2, x_scale=1000.0)
    act, _ = _decode(kernels, p)
    assert np.abs(act).max() <= 7.0 * 8.0 + 1e-3  # gate <= 7, linear + 1 <= 8


@pytest.mark.parametrize("tokens", [2, 40])
def test_bfloat16_activations(kernels: MoeKernels, tokens: int) -> None:
    p = make_problem(np.random.default_rng(tokens), E=8, D=128, I=64, N=tokens)
    x_bf16 = np.array(mx.array(p.x).astype(mx.bfloat16).astype(mx.float32))
    y = np.array(kernels(*p.args(mx.bfloat16)).astype(mx.float32))
    assert rel_error(y, reference(p, x_bf16)[1]) < BF16_TOL


def check_every_schedule(kernels: MoeKernels) -> None:
    """Both paths under every schedule, race tracking on: a missing barrier raises DataRaceError
    (or reads poison), whatever the thread order."""
    for tokens in (3, 40):
        p = make_problem(np.random.default_rng(tokens), E=4, D=64, I=64, N=tokens)
        results = run_all_schedules(lambda p=p: [np.array(kernels(*p.args()))])
        y_ref = reference(p)[1]
        for name, (y,) in results.items():
            assert rel_error(y, y_ref) < F32_TOL, name


def test_every_schedule_gives_the_same_answer(kernels: MoeKernels) -> None:
    check_every_schedule(kernels)


def check_gate_is_clamped_from_above_only(kernels: MoeKernels) -> None:
    """Gate pre-activations far below -limit: silu(gate) is ~0 there (-40 * sigmoid(-68)), while a
    gate clamped from below too gives -limit * sigmoid(-1.702 * limit) = -4.7e-5 per unit of the
    linear half, which a tolerance relative to the whole output lets through."""
    for tokens in (2, 40):  # decode (gemv) and prefill (gemm) compute SwiGLU separately
        p = make_problem(np.random.default_rng(7), E=4, D=64, I=64, N=tokens, x_scale=40.0)
        act_ref, y_ref = reference(p)
        if tokens <= 8:
            act, _ = _decode(kernels, p)
            gate_ref = _gate_preactivations(p)
            far = gate_ref < -2 * p.limit
            assert far.sum() > 10
            np.testing.assert_allclose(act[far], act_ref[far], rtol=1e-3, atol=1e-7)
        else:
            y = np.array(kernels(*p.args()))
            np.testing.assert_allclose(y, y_ref, rtol=1e-3, atol=2e-6 * np.abs(y_ref).max())


def _gate_preactivations(p: Problem) -> np.ndarray:
    x64 = p.x.astype(np.float64)
    gate = np.zeros((*p.idx.shape, p.gate_up[0].shape[1] // 2))
    for t, k in np.ndindex(*p.idx.shape):
        e = p.idx[t, k]
        W1 = dequantize_words(p.gate_up[0][e, ::2], p.gate_up[1][e, ::2])
        gate[t, k] = W1 @ x64[t] + p.gate_up[2][e, ::2]
    return gate


def test_gate_is_clamped_from_above_only(kernels: MoeKernels) -> None:
    check_gate_is_clamped_from_above_only(kernels)


def check_e8m0_zero_scale(kernels: MoeKernels) -> None:
    """E8M0 0 is 2^-127, not 0: with activations near 1e35 the products are ordinary numbers."""
    for tokens in (2, 40):
        p = make_problem(np.random.default_rng(11), E=4, D=64, I=64, N=tokens)
        p.gate_up[1][:] = 0
        p.x *= np.float32(1e35)
        y_ref = reference(p)[1]
        y = np.array(kernels(*p.args()))
        assert rel_error(y, y_ref) < F32_TOL, tokens


def test_e8m0_zero_scale(kernels: MoeKernels) -> None:
    check_e8m0_zero_scale(kernels)


@pytest.mark.parametrize("tokens", [2, 40])
def test_e8m0_255_scale_poisons_only_its_rows(kernels: MoeKernels, tokens: int) -> None:
    """E8M0 255 encodes NaN (OCP MX v1.0); in float32 2^128 overflows. Either way the rows that use
    such a block must come out non-finite, never as plausible numbers, and the others exact."""
    p = make_problem(np.random.default_rng(12), E=4, D=64, I=64, N=tokens)
    p.down[1][:, 5, 0] = 255  # output channel 5 of every expert
    y = np.array(kernels(*p.args()))
    y_ref = reference(p)[1]
    assert not np.isfinite(y[:, 5]).any()
    others = np.delete(np.arange(64), 5)
    assert rel_error(y[:, others], y_ref[:, others]) < F32_TOL


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("tokens", [3, 40])
def test_non_finite_activations_stay_in_their_token(
    kernels: MoeKernels, bad: float, tokens: int
) -> None:
    """A NaN or Inf in one token's activations must not leak into other tokens through shared
    tiles (prefill) or padding."""
    p = make_problem(np.random.default_rng(13), E=4, D=64, I=64, N=tokens)
    p.x[1, 17] = bad
    y = np.array(kernels(*p.args()))
    assert not np.isfinite(y[1]).all()
    rest = np.delete(np.arange(tokens), 1)
    with np.errstate(invalid="ignore"):  # the reference's own NaN row
        y_ref = reference(p)[1]
    assert rel_error(y[rest], y_ref[rest]) < F32_TOL


@pytest.mark.parametrize(("D", "I"), [(96, 32), (160, 96)])
@pytest.mark.parametrize("tokens", [3, 40])
def test_partial_column_tiles(kernels: MoeKernels, D: int, I: int, tokens: int) -> None:
    """Hidden sizes that end part-way through the GEMM's 64-row tiles (96, 160 rows in the down
    projection). The GEMVs give each row a whole simdgroup, and sizes are multiples of 32, so their
    threadgroups are always full; gate_up's 2I rows are multiples of 64."""
    p = make_problem(np.random.default_rng(D + I + tokens), E=4, D=D, I=I, N=tokens)
    assert rel_error(np.array(kernels(*p.args())), reference(p)[1]) < F32_TOL


def test_bad_arguments_are_refused_before_launch(kernels: MoeKernels) -> None:
    p = make_problem(np.random.default_rng(0), E=4, D=64, I=64, N=2)
    x, idx, _ = p.inputs()
    w = p.weights()
    with pytest.raises(ValueError, match="uint32"):
        validate(x, idx.astype(mx.int32), *w)
    with pytest.raises(ValueError, match="float32, bfloat16 or float16"):
        validate(x.astype(mx.int32), idx, *w)
    with pytest.raises(ValueError, match="do not fit"):
        validate(x[:, :32], idx, *w)
