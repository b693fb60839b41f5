"""The mixture-of-experts computation on native MXFP4 weights, behind a pluggable backend.

Every backend computes, for each token t with selected experts e_k and routing weights w_k:
    y_t = sum_k w_k * (W2[e_k] @ swiglu(W1[e_k] @ x_t + b1[e_k]) + b2[e_k])
where W1's output rows interleave gate (even) and linear (odd) channels, as in the checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import mlx.core as mx

SWIGLU_ALPHA = 1.702
# Below this many (token, expert) pairs sorting the pairs by expert costs more than it saves.
_SORT_THRESHOLD = 64


@dataclass(frozen=True)
class ExpertWeights:
    """One layer's experts as stored in the checkpoint; blocks viewed as uint32 words.

    Shapes: gate_up_blocks (E, 2I, D/8) u32, gate_up_scales (E, 2I, D/32) u8 E8M0,
    gate_up_bias (E, 2I), down_blocks (E, D, I/8) u32, down_scales (E, D, I/32) u8,
    down_bias (E, D).
    """

    gate_up_blocks: mx.array
    gate_up_scales: mx.array
    gate_up_bias: mx.array
    down_blocks: mx.array
    down_scales: mx.array
    down_bias: mx.array
    swiglu_limit: float


# x (N, D), expert indices (N, k) uint32, routing weights (N, k) -> (N, D)
ExpertBackend = Callable[[mx.array, mx.array, mx.array, ExpertWeights], mx.array]


@mx.compile
def _swiglu(h: mx.array, limit: mx.array) -> mx.array:
    glu, lin = h[..., ::2], h[..., 1::2]
    glu = mx.minimum(glu, limit)  # the gate is clamped from above only
    lin = mx.clip(lin, -limit, limit)
    return glu * mx.sigmoid(SWIGLU_ALPHA * glu) * (lin + 1)  # gpt-oss adds 1 to the linear half


def swiglu(h: mx.array, limit: float) -> mx.array:
    """gpt-oss's clamped SwiGLU over interleaved (gate, linear) channels: (..., 2I) -> (..., I)."""
    return _swiglu(h, mx.array(limit, dtype=h.dtype))


def _mxfp4_gather_matmul(
    x: mx.array, blocks: mx.array, scales: mx.array, idx: mx.array, sort: bool
) -> mx.array:
    """x @ W[idx].T with W in MXFP4: 32-value blocks, 4-bit E2M1 values, one E8M0 scale each."""
    return mx.gather_qmm(
        x,
        blocks,
        scales,
        rhs_indices=idx,
        transpose=True,
        group_size=32,
        bits=4,
        mode="mxfp4",
        sorted_indices=sort,
    )


def mlx_experts(
    x: mx.array, indices: mx.array, route_weights: mx.array, w: ExpertWeights
) -> mx.array:
    """MLX's built-in quantized gather-matmul (mode "mxfp4") on the checkpoint's bytes."""
    N, k = indices.shape
    sort = N * k >= _SORT_THRESHOLD
    if sort:
        # Group (token, expert) pairs by expert so each expert's weights are read once.
        flat = indices.flatten()
        order = mx.argsort(flat)
        inverse = mx.argsort(order)
        rows = x[order // k][:, None, :]  # (N*k, 1, D)
        idx = flat[order]
    else:
        rows = x[:, None, None, :]  # (N, 1, 1, D) broadcast against (N, k)
        idx = indices
    h = _mxfp4_gather_matmul(rows, w.gate_up_blocks, w.gate_up_scales, idx, sort)
    h = h + mx.expand_dims(w.gate_up_bias[idx], -2)
    a = swiglu(h, w.swiglu_limit)
    y = _mxfp4_gather_matmul(a, w.down_blocks, w.down_scales, idx, sort)
    y = (y + mx.expand_dims(w.down_bias[idx], -2)).squeeze(-2)
    if sort:
        y = y[inverse].reshape(N, k, -1)
    return (y * route_weights[..., None].astype(y.dtype)).sum(axis=1)


def local_routes(
    indices: mx.array, route_weights: mx.array, first: int, count: int
) -> tuple[mx.array, mx.array]:
    """The routes of one tensor-parallel rank holding experts first .. first + count - 1.

    Global expert ids become local ones; a route to an expert held elsewhere keeps its slot (so
    shapes stay static) but points at local expert 0 with weight 0, and the ranks' all-sum adds
    each expert's output exactly once.
    """
    local = indices.astype(mx.int32) - first
    mine = (local >= 0) & (local < count)
    return mx.where(mine, local, 0), mx.where(mine, route_weights, 0)
