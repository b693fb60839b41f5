"""Launchers for the MXFP4 mixture-of-experts Metal kernels, and an expert backend built on them.

The kernel bodies live in msl/*.metal and are read once. `MoeKernels(make_kernel)` builds them with
`mx.fast.metal_kernel` on a Mac, or with the CPU emulator (metal_kernels.emulator) everywhere else:
one launcher, the same sources, the same calling convention.

Decode (few tokens): gate_up GEMV fused with bias + SwiGLU, then the down GEMV fused with bias
and the routing-weighted sum. Prefill: pairs (token, expert) are grouped by expert into 32-pair
tiles and multiplied with simdgroup matrix tiles; the weighted combine is a gather and a sum.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import mlx.core as mx

from engine.experts import ExpertWeights

MSL_DIR = Path(__file__).with_name("msl")
DECODE_MAX_TOKENS = 8  # above this, tiles read each weight once for many tokens
TILE_PAIRS = 32  # pairs per prefill tile (the kernel's BM)
TILE_ROWS = 64  # weight rows per prefill tile (the kernel's BN)
THREADS = 128  # 4 simdgroups per threadgroup in every kernel
_ACTIVATION_DTYPES = (mx.float32, mx.bfloat16, mx.float16)

MakeKernel = Callable[..., Any]


@cache
def kernel_source(name: str) -> str:
    return (MSL_DIR / name).read_text(encoding="utf-8")


class MoeKernels:
    """The three kernels, built once with `make_kernel` (mx.fast.metal_kernel or the emulator's)."""

    def __init__(self, make_kernel: MakeKernel) -> None:
        header = kernel_source("mxfp4_common.h")
        self.gemv_swiglu = make_kernel(
            name="mxfp4w_moe_gemv_swiglu",
            input_names=["x", "w", "scales", "bias", "idx", "limit"],
            output_names=["act"],
            source=kernel_source("mxfp4w_moe_gemv_swiglu.metal"),
            header=header,
        )
        self.gemv_combine = make_kernel(
            name="mxfp4w_moe_gemv_combine",
            input_names=["act", "w", "scales", "bias", "idx", "route"],
            output_names=["y"],
            source=kernel_source("mxfp4w_moe_gemv_combine.metal"),
            header=header,
        )
        self.gemm = make_kernel(
            name="mxfp4w_moe_gemm",
            input_names=["x", "rows", "tiles", "w", "scales", "bias", "limit"],
            output_names=["out"],
            source=kernel_source("mxfp4w_moe_gemm.metal"),
            header=header,
        )

    def __call__(
        self, x: mx.array, indices: mx.array, route_weights: mx.array, w: ExpertWeights
    ) -> mx.array:
        """The expert backend: (N, D) activations -> (N, D) weighted sum of the chosen experts."""
        validate(x, indices, w)
        if x.shape[0] <= DECODE_MAX_TOKENS:
            return self.decode(x, indices, route_weights, w)
        return self.prefill(x, indices, route_weights, w)

    def decode(
        self, x: mx.array, indices: mx.array, route_weights: mx.array, w: ExpertWeights
    ) -> mx.array:
        N, K = indices.shape
        I = w.gate_up_blocks.shape[1] // 2
        D = x.shape[1]
        limit = mx.array([w.swiglu_limit], dtype=mx.float32)
        (act,) = self.gemv_swiglu(
            inputs=[x, w.gate_up_blocks, w.gate_up_scales, w.gate_up_bias, indices, limit],
            template=[("T", x.dtype)],
            grid=(I * 32, N * K, 1),
            threadgroup=(THREADS, 1, 1),
            output_shapes=[(N, K, I)],
            output_dtypes=[x.dtype],
        )
        (y,) = self.gemv_combine(
            inputs=[act, w.down_blocks, w.down_scales, w.down_bias, indices, route_weights],
            template=[("T", x.dtype)],
            grid=(D * 32, N, 1),
            threadgroup=(THREADS, 1, 1),
            output_shapes=[(N, D)],
            output_dtypes=[x.dtype],
        )
        return y

    def prefill(
        self, x: mx.array, indices: mx.array, route_weights: mx.array, w: ExpertWeights
    ) -> mx.array:
        N, K = indices.shape
        E, two_i, _ = w.gate_up_blocks.shape
        D = x.shape[1]
        order, rows, tiles = group_by_expert(indices, E)
        limit = mx.array([w.swiglu_limit], dtype=mx.float32)
        n_tiles = tiles.shape[0]
        (act,) = self.gemm(
            inputs=[x, rows, tiles, w.gate_up_blocks, w.gate_up_scales, w.gate_up_bias, limit],
            template=[("T", x.dtype), ("GATHER", True), ("SWIGLU", True)],
            grid=(_ceil(two_i, TILE_ROWS) * THREADS, n_tiles, 1),
            threadgroup=(THREADS, 1, 1),
            output_shapes=[(N * K, two_i // 2)],
            output_dtypes=[x.dtype],
        )
        (out,) = self.gemm(
            inputs=[act, rows, tiles, w.down_blocks, w.down_scales, w.down_bias, limit],
            template=[("T", x.dtype), ("GATHER", False), ("SWIGLU", False)],
            grid=(_ceil(D, TILE_ROWS) * THREADS, n_tiles, 1),
            threadgroup=(THREADS, 1, 1),
            output_shapes=[(N * K, D)],
            output_dtypes=[x.dtype],
        )
        # out holds pairs in expert order; put them back in (token, slot) order and weigh them
        per_pair = out[mx.argsort(order)].reshape(N, K, D)
        return (per_pair * route_weights[..., None].astype(per_pair.dtype)).sum(axis=1)


def group_by_expert(indices: mx.array, num_experts: int) -> tuple[mx.array, mx.array, mx.array]:
    """Sorts the (token, slot) pairs by expert and cuts each expert's run into 32-pair tiles.

    Returns order (P,) (pair positions in expert order), rows (P,) u32 (the token of each sorted
    pair) and tiles (n_tiles, 3) u32 = (expert, first sorted pair, pair count), where n_tiles is
    a bound known without reading the indices back: ceil(P / 32) + min(E, P); spare tiles have
    count 0. Everything stays on the device.
    """
    N, K = indices.shape
    P = N * K
    flat = indices.flatten()
    order = mx.argsort(flat)
    rows = (order // K).astype(mx.uint32)
    counts = (flat[:, None] == mx.arange(num_experts)[None]).sum(axis=0)  # (E,)
    starts = mx.cumsum(counts) - counts
    tiles_per = (counts + TILE_PAIRS - 1) // TILE_PAIRS
    tiles_end = mx.cumsum(tiles_per)
    n_tiles = _ceil(P, TILE_PAIRS) + min(num_experts, P)
    i = mx.arange(n_tiles)
    expert = (tiles_end[None, :] <= i[:, None]).sum(axis=1)  # E for spare tiles
    e = mx.minimum(expert, num_experts - 1)
    local = i - (tiles_end[e] - tiles_per[e])
    first = starts[e] + local * TILE_PAIRS
    count = mx.where(
        expert < num_experts, mx.clip(counts[e] - local * TILE_PAIRS, 0, TILE_PAIRS), 0
    )
    tiles = mx.stack([e, first, count], axis=1).astype(mx.uint32)
    return order, rows, tiles


def validate(x: mx.array, indices: mx.array, w: ExpertWeights) -> None:
    """Checks what the kernels assume, so a wrong call fails here rather than reading garbage."""
    if x.ndim != 2 or indices.ndim != 2 or indices.shape[0] != x.shape[0]:
        raise ValueError(f"expected x (N, D) and indices (N, k), got {x.shape} and {indices.shape}")
    if x.dtype not in _ACTIVATION_DTYPES:
        raise ValueError(f"activations must be float32, bfloat16 or float16, not {x.dtype}")
    if indices.dtype != mx.uint32:
        raise ValueError("expert indices must be uint32")
    D = x.shape[1]
    E, two_i, words = w.gate_up_blocks.shape
    if D % 32 or two_i % 64:
        raise ValueError("hidden and intermediate sizes must be multiples of the 32-value block")
    if w.gate_up_blocks.dtype != mx.uint32 or w.down_blocks.dtype != mx.uint32:
        raise ValueError("MXFP4 blocks must be viewed as uint32 words")
    if w.gate_up_scales.dtype != mx.uint8 or w.down_scales.dtype != mx.uint8:
        raise ValueError("E8M0 scales must be uint8")
    if words * 8 != D or w.down_blocks.shape != (E, D, two_i // 16):
        raise ValueError(
            f"expert shapes {w.gate_up_blocks.shape} / {w.down_blocks.shape} do not fit D={D}"
        )


def _ceil(a: int, b: int) -> int:
    return -(-a // b)
