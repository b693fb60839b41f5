"""What the MXFP4 MoE kernels do per weight byte, counted by the Metal CPU emulator.

    .venv/bin/python -m benchmarks.kernels_model            # gpt-oss-20b widths, ~1-3 min
    .venv/bin/python -m benchmarks.kernels_model --small    # small widths, seconds (CI smoke)

Each kernel runs once at gpt-oss-20b's widths (hidden 2880, intermediate 2880, top-4; decode with
1 token, prefill with 64 tokens on the first two column tiles) with the emulator's access hooks
counting every load and store. Printed per kernel, next to a reference design:

- act B/wB   activation bytes read per weight byte (1 token: the activations reloaded per row)
- 16B loads  share of weight bytes read by 16-byte (uint4) loads
- lut/nib    constant-table lookups per FP4 nibble (the decode's table traffic)
- tg KB      threadgroup memory of one threadgroup

The reference rows are a design, not a measurement: what MLX's qmv (fp_quantized.h) and llama.cpp's
kernel_mul_mv_mxfp4_f32 / kernel_mul_mm_id do per byte as read from their sources: activations
held in registers and reused by 4 rows, uint4 weight loads, a threadgroup or ALU decode at most
once per nibble, about 8 KB of half tiles for the prefill GEMM. The issue-16 targets (>= 90% 16-byte
weight loads, <= 1 decode op per nibble, <= 8 KB of prefill threadgroup memory) are the reference
values. Not counted yet: bank conflicts, distinct cache lines per load instruction, registers.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import mlx.core as mx
import numpy as np

from metal_kernels.emulator import LaunchCounters, counting, metal_kernel
from metal_kernels.mxfp4_moe import THREADS, MoeKernels, Mxfp4Matrix, group_by_expert


@dataclass(frozen=True)
class Row:
    act_per_weight_byte: float
    vector16: float
    lookups_per_nibble: float
    tg_kb: float


# The reference design's values with float32 activations (see the docstring). GEMV: 4 rows per
# simdgroup share activations held in registers, so 32 values (128 B) serve 4 x 16 weight bytes.
# GEMM: a 64-row x 32-token tile in half: 32 x 32 x 2 B of activations per 64 x 16 weight bytes.
REFERENCE = {
    "gemv_swiglu": Row(2.0, 1.0, 1.0, 0.0),
    "gemv_combine": Row(2.0, 1.0, 1.0, 0.0),
    "gemm (gate_up)": Row(2.0, 1.0, 1.0, 8.0),
    "gemm (down)": Row(2.0, 1.0, 1.0, 8.0),
}


def measure(c: LaunchCounters, activations: str) -> Row:
    w = c.buffers["input `w`"]
    act = c.buffers[activations].read_bytes
    return Row(act / w.read_bytes, w.vector16_fraction, c.constant_loads / (2 * w.read_bytes),
               c.tg_bytes / 1024)  # fmt: skip


def _problem(rng: np.random.Generator, E: int, D: int, I: int, N: int, k: int) -> tuple:
    def matrix(rows: int, cols: int) -> Mxfp4Matrix:
        words = rng.integers(0, 2**32, (E, rows, cols // 8), dtype=np.uint32)
        scales = rng.integers(118, 125, (E, rows, cols // 32)).astype(np.uint8)
        return Mxfp4Matrix(mx.array(words), mx.array(scales), mx.zeros((E, rows)))

    x = mx.array(rng.standard_normal((N, D)).astype(np.float32))
    idx = mx.array(np.stack([rng.choice(E, k, replace=False) for _ in range(N)]).astype(np.uint32))
    route = mx.softmax(mx.array(rng.standard_normal((N, k)).astype(np.float32)), axis=-1)
    return x, idx, route, matrix(2 * I, D), matrix(D, I)


def run(small: bool) -> dict[str, Row]:
    D = I = 256 if small else 2880
    E, k = 4, 4  # only the chosen experts' bytes are read: 4 experts stand for 32
    rng = np.random.default_rng(0)
    kernels = MoeKernels(metal_kernel)
    rows: dict[str, Row] = {}
    x, idx, route, gate_up, down = _problem(rng, E, D, I, 1, k)
    with counting() as launches:
        kernels.decode(x, idx, route, gate_up, down, 7.0)
    rows["gemv_swiglu"] = measure(launches[0][1], "input `x`")
    rows["gemv_combine"] = measure(launches[1][1], "input `act`")
    N = 64
    x, idx, route, gate_up, down = _problem(rng, E, D, I, N, k)
    _, pair_rows, tiles = group_by_expert(idx, E)
    limit = mx.array([7.0])
    act = mx.zeros((N * k, I))
    for name, inputs, gather, swiglu, width in (
        ("gemm (gate_up)", [x, pair_rows, tiles, *gate_up, limit], True, True, I),
        ("gemm (down)", [act, pair_rows, tiles, *down, limit], False, False, D),
    ):
        with counting() as launches:
            kernels.gemm(
                inputs=inputs, template=[("T", mx.float32), ("GATHER", gather), ("SWIGLU", swiglu)],
                grid=(2 * THREADS, tiles.shape[0], 1), threadgroup=(THREADS, 1, 1),
                output_shapes=[(N * k, width)], output_dtypes=[mx.float32],
            )  # fmt: skip
        rows[name] = measure(launches[0][1], "input `x`")  # the GEMM names its activations x
    return rows


def report(rows: dict[str, Row]) -> str:
    lines = [f"{'kernel':<16}{'':<11}{'act B/wB':>10}{'16B loads':>11}{'lut/nib':>9}{'tg KB':>8}"]
    for name, row in rows.items():
        for label, r in (("this", row), ("reference", REFERENCE[name])):
            lines.append(
                f"{name if label == 'this' else '':<16}{label:<11}{r.act_per_weight_byte:>10.2f}"
                f"{r.vector16:>10.0%}{r.lookups_per_nibble:>9.2f}{r.tg_kb:>8.1f}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--small", action="store_true", help="small widths: a quick smoke run")
    args = p.parse_args(argv)
    print(report(run(args.small)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
