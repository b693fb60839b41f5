"""Random MXFP4 expert problems and an independent float64 numpy reference of the MoE."""

from __future__ import annotations

from dataclasses import dataclass

import mlx.core as mx
import numpy as np

from engine.testing.synthetic import FP4_VALUES
from metal_kernels.mxfp4_moe import Mxfp4Matrix

ALPHA = 1.702


@dataclass
class Problem:
    x: np.ndarray  # (N, D) float32
    idx: np.ndarray  # (N, k) uint32
    route: np.ndarray  # (N, k) float32
    gate_up: tuple[np.ndarray, np.ndarray, np.ndarray]  # words u32, scales u8, bias f32
    down: tuple[np.ndarray, np.ndarray, np.ndarray]
    limit: float = 7.0

    def weights(self, dtype: mx.Dtype = mx.float32) -> tuple[Mxfp4Matrix, Mxfp4Matrix]:
        """(gate_up, down) as the kernels take them; biases in the activations' dtype."""
        (gw, gs, gb), (dw, ds, db) = self.gate_up, self.down
        return (
            Mxfp4Matrix(mx.array(gw), mx.array(gs), mx.array(gb).astype(dtype)),
            Mxfp4Matrix(mx.array(dw), mx.array(ds), mx.array(db).astype(dtype)),
        )

    def args(self, dtype: mx.Dtype = mx.float32) -> tuple:
        """Everything MoeKernels(...)(...) takes: x, idx, route, gate_up, down, limit."""
        return (*self.inputs(dtype), *self.weights(dtype), self.limit)

    def inputs(self, dtype: mx.Dtype = mx.float32) -> tuple[mx.array, mx.array, mx.array]:
        return mx.array(self.x).astype(dtype), mx.array(self.idx), mx.array(self.route)


def make_problem(
    rng: np.random.Generator,
    *,
    E: int,
    D: int,
    I: int,
    N: int,
    k: int = 4,
    scale_range: tuple[int, int] = (118, 124),
    x_scale: float = 1.0,
    idx: np.ndarray | None = None,
) -> Problem:
    def words(rows: int, cols: int) -> np.ndarray:
        return rng.integers(0, 2**32, size=(E, rows, cols // 8), dtype=np.uint32)

    def scales(rows: int, cols: int) -> np.ndarray:
        lo, hi = scale_range
        return rng.integers(lo, hi + 1, size=(E, rows, cols // 32)).astype(np.uint8)

    if idx is None:
        idx = np.stack([rng.choice(E, k, replace=False) for _ in range(N)]).astype(np.uint32)
    logits = rng.standard_normal(idx.shape)
    route = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(np.float32)
    return Problem(
        x=(rng.standard_normal((N, D)) * x_scale).astype(np.float32),
        idx=idx.astype(np.uint32),
        route=route,
        gate_up=(
            words(2 * I, D),
            scales(2 * I, D),
            rng.normal(0, 0.1, (E, 2 * I)).astype(np.float32),
        ),
        down=(words(D, I), scales(D, I), rng.normal(0, 0.1, (E, D)).astype(np.float32)),
    )


def dequantize_words(words: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """(..., rows, K/8) u32 words + (..., rows, K/32) E8M0 -> (..., rows, K) float64.

    The spec's formula (low nibble first, value * 2^(scale - 127)) in float64, so that scales
    near the top of E8M0's range do not overflow as they would in float32.
    """
    data = words.view(np.uint8)
    nibbles = np.stack([data & 0x0F, data >> 4], axis=-1).reshape(*words.shape[:-1], -1)
    values = np.asarray(FP4_VALUES, dtype=np.float64)[nibbles]
    factor = np.ldexp(1.0, scales.astype(np.int64) - 127)
    return values * np.repeat(factor, 32, axis=-1)


def swiglu(h: np.ndarray, limit: float) -> np.ndarray:
    gate = np.minimum(h[..., ::2], limit)
    lin = np.clip(h[..., 1::2], -limit, limit)
    with np.errstate(over="ignore"):  # exp overflows for very negative gates: glu -> 0, as wanted
        return gate / (1 + np.exp(-ALPHA * gate)) * (lin + 1)


def reference(p: Problem, x: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(act (N, k, I), y (N, D)) in float64."""
    x64 = (p.x if x is None else x).astype(np.float64)
    N, k = p.idx.shape
    I = p.gate_up[0].shape[1] // 2
    D = x64.shape[1]
    act = np.zeros((N, k, I))
    out = np.zeros((N, k, D))
    for e in np.unique(p.idx):  # one expert at a time keeps memory at one dequantized matrix
        n, slot = np.nonzero(p.idx == e)
        W1 = dequantize_words(p.gate_up[0][e], p.gate_up[1][e])
        act[n, slot] = swiglu(x64[n] @ W1.T + p.gate_up[2][e], p.limit)
        W2 = dequantize_words(p.down[0][e], p.down[1][e])
        out[n, slot] = act[n, slot] @ W2.T + p.down[2][e]
    y = (out * p.route[..., None]).sum(axis=1)
    return act, y


def rel_error(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(got.astype(np.float64) - want).max() / (np.abs(want).max() + 1e-30))
