"""Launchers for the MXFP4 mixture-of-experts Metal kernels: arrays in, arrays out.

The kernel bodies live in msl/*.metal and are read once. `MoeKernels(make_kernel)` builds them with
`mx.fast.metal_kernel` on a Mac, or with the CPU emulator (metal_kernels.emulator) everywhere else:
one launcher, the same sources, the same calling convention. This package knows no model: the
adapter that turns these kernels into the engine's expert backend lives in engine.expert_backends.

Decode (few tokens): gate_up GEMV fused with bias + SwiGLU, then the down GEMV fused with bias
and the routing-weighted sum; both give a simdgroup 4 weight rows that share activations held in
registers, and read weights as uint4 (benchmarks/kernels_model.py counts what they do per byte).
Prefill: pairs (token, expert) are grouped by expert into 32-pair tiles and multiplied with
simdgroup matrix tiles; the down projection's epilogue weighs each pair by its route weight and
puts it back in (token, slot) order, leaving one sum over each token's k rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import mlx.core as mx

MSL_DIR = Path(__file__).with_name("msl")
DECODE_MAX_TOKENS = 8  # above this, tiles read each weight once for many tokens
TILE_PAIRS = 32  # pairs per prefill tile (the kernel's BM)
TILE_ROWS = 64  # weight rows per prefill tile (the kernel's BN)
THREADS = 128  # 4 simdgroups per threadgroup in every kernel
_ACTIVATION_DTYPES = (mx.float32, mx.bfloat16, mx.float16)

MakeKernel = Callable[..., Any]


class Mxfp4Matrix(NamedTuple):
    """Per-expert MXFP4 weight matrices with bias, as stored in gpt-oss checkpoints.

    Shapes: blocks (E, rows, cols/8) u32 (8 E2M1 nibbles per word), scales (E, rows, cols/32) u8
    E8M0, bias (E, rows) in the activations' dtype.
    """

    blocks: mx.array
    scales: mx.array
    bias: mx.array


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
            input_names=["x", "rows", "tiles", "w", "scales", "bias", "limit", "route"],
            output_names=["out"],
            source=kernel_source("mxfp4w_moe_gemm.metal"),
            header=header,
        )

    def __call__(
        self,
        x: mx.array,
        indices: mx.array,
        route_weights: mx.array,
        gate_up: Mxfp4Matrix,
        down: Mxfp4Matrix,
        limit: float,
    ) -> mx.array:
        """(N, D) activations, (N, k) u32 expert indices and (N, k) route weights -> (N, D)
        route-weighted sum of down(swiglu(gate_up(x))) over each token's k experts."""
        validate(x, indices, gate_up, down)
        if x.shape[0] <= DECODE_MAX_TOKENS:
            return self.decode(x, indices, route_weights, gate_up, down, limit)
        return self.prefill(x, indices, route_weights, gate_up, down, limit)

    def decode(
        self,
        x: mx.array,
        indices: mx.array,
        route_weights: mx.array,
        gate_up: Mxfp4Matrix,
        down: Mxfp4Matrix,
        limit: float,
    ) -> mx.array:
        N = indices.shape[0]
        D = x.shape[1]
        act = self.gate_up_gemv(x, indices, gate_up, limit)
        (y,) = self.gemv_combine(
            inputs=[act, *down, indices, route_weights],
            template=[("T", x.dtype)],
            grid=(D // 4 * 32, N, 1),  # one simdgroup per 4 output rows
            threadgroup=(THREADS, 1, 1),
            output_shapes=[(N, D)],
            output_dtypes=[x.dtype],
        )
        return y

    def gate_up_gemv(
        self, x: mx.array, indices: mx.array, gate_up: Mxfp4Matrix, limit: float
    ) -> mx.array:
        """(N, D) activations -> (N, k, I) SwiGLU activations of each token's k experts."""
        N, K = indices.shape
        I = gate_up.blocks.shape[1] // 2
        (act,) = self.gemv_swiglu(
            inputs=[x, *gate_up, indices, mx.array([limit], dtype=mx.float32)],
            template=[("T", x.dtype)],
            grid=(I // 2 * 32, N * K, 1),  # one simdgroup per 2 output channels (4 rows)
            threadgroup=(THREADS, 1, 1),
            output_shapes=[(N, K, I)],
            output_dtypes=[x.dtype],
        )
        return act

    def prefill(
        self,
        x: mx.array,
        indices: mx.array,
        route_weights: mx.array,
        gate_up: Mxfp4Matrix,
        down: Mxfp4Matrix,
        limit: float,
    ) -> mx.array:
        N, K = indices.shape
        E, two_i, _ = gate_up.blocks.shape
        D = x.shape[1]
        order, rows, tiles = group_by_expert(indices, E)
        lim = mx.array([limit], dtype=mx.float32)
        route = route_weights.reshape(-1).astype(mx.float32)
        n_tiles = tiles.shape[0]
        (act,) = self.gemm(
            inputs=[x, rows, tiles, *gate_up, lim, route],
            template=[("T", x.dtype), ("GATHER", True), ("SWIGLU", True), ("COMBINE", False)],
            grid=(_ceil(two_i, TILE_ROWS) * THREADS, n_tiles, 1),
            threadgroup=(THREADS, 1, 1),
            output_shapes=[(N * K, two_i // 2)],
            output_dtypes=[x.dtype],
        )
        # act is in expert order; the down GEMM writes each pair, weighted, at its (token, slot)
        (out,) = self.gemm(
            inputs=[act, order.astype(mx.uint32), tiles, *down, lim, route],
            template=[("T", x.dtype), ("GATHER", False), ("SWIGLU", False), ("COMBINE", True)],
            grid=(_ceil(D, TILE_ROWS) * THREADS, n_tiles, 1),
            threadgroup=(THREADS, 1, 1),
            output_shapes=[(N * K, D)],
            output_dtypes=[x.dtype],
        )
        return out.reshape(N, K, D).sum(axis=1)


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


def validate(x: mx.array, indices: mx.array, gate_up: Mxfp4Matrix, down: Mxfp4Matrix) -> None:
    """Checks what the kernels assume, so a wrong call fails here rather than reading garbage."""
    if x.ndim != 2 or indices.ndim != 2 or indices.shape[0] != x.shape[0]:
        raise ValueError(f"expected x (N, D) and indices (N, k), got {x.shape} and {indices.shape}")
    if x.dtype not in _ACTIVATION_DTYPES:
        raise ValueError(f"activations must be float32, bfloat16 or float16, not {x.dtype}")
    if indices.dtype != mx.uint32:
        raise ValueError("expert indices must be uint32")
    D = x.shape[1]
    E, two_i, words = gate_up.blocks.shape
    if D % 32 or two_i % 64:
        raise ValueError("hidden and intermediate sizes must be multiples of the 32-value block")
    if gate_up.blocks.dtype != mx.uint32 or down.blocks.dtype != mx.uint32:
        raise ValueError("MXFP4 blocks must be viewed as uint32 words")
    if gate_up.scales.dtype != mx.uint8 or down.scales.dtype != mx.uint8:
        raise ValueError("E8M0 scales must be uint8")
    if words * 8 != D or down.blocks.shape != (E, D, two_i // 16):
        raise ValueError(
            f"expert shapes {gate_up.blocks.shape} / {down.blocks.shape} do not fit D={D}"
        )


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def source_hash() -> str:
    """Digest of every kernel source and header: a measured speed holds for these sources only."""
    digest = hashlib.sha256()
    for path in sorted(MSL_DIR.iterdir()):
        if path.suffix in (".metal", ".h"):
            digest.update(path.name.encode() + b"\0" + kernel_source(path.name).encode())
    return digest.hexdigest()[:16]
