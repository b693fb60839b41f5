"""What the MXFP4 MoE kernels do per weight byte, counted by the Metal CPU emulator.

    .venv/bin/python -m benchmarks.kernels_model            # gpt-oss-20b widths, ~1-3 min
    .venv/bin/python -m benchmarks.kernels_model --small    # small widths, seconds (CI smoke)

Each kernel runs once at gpt-oss-20b's widths (hidden 2880, intermediate 2880, top-4; decode with
1 token, prefill with 64 tokens on the first two column tiles) in the activation dtype the engine
uses on a Mac (bfloat16; `--dtype` to change), with the emulator's access hooks counting every
load and store. Printed per kernel, next to a reference design:

- act B/wB   activation bytes read per weight byte (1 token: the activations reloaded per row)
- 16B loads  share of weight bytes read by 16-byte (uint4) loads
- lut/nib    constant-table lookups per FP4 nibble (the decode's table traffic)
- lines/ld   distinct 128-byte cache lines per simdgroup weight-load instruction
- mma cf     extra threadgroup-memory wavefronts (bank conflicts) per simdgroup_load/store
- tg cf      the same per other threadgroup load or store instruction (staging the tiles)
- tg KB      threadgroup memory of one threadgroup

The reference rows are a design, not a measurement: what MLX's qmv (fp_quantized.h) and llama.cpp's
kernel_mul_mv_mxfp4_f32 / kernel_mul_mm_id do per byte as read from their sources: activations
held in registers and reused by 4 rows, uint4 weight loads, a threadgroup or ALU decode at most
once per nibble, a GEMV simdgroup reading 512 contiguous weight bytes per load (4 lines), a GEMM
tile of 64 rows with 2 threads per row (16 rows, so 16 lines, per load), about 8 KB of half tiles
without bank conflicts. Below the table, each issue-16 target is marked met or not met per kernel:
no bank conflicts, >= 90% 16-byte weight loads, <= 1 decode op per nibble, prefill threadgroup
memory <= 8 KB. Registers per thread are not counted (the emulator cannot see register allocation).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import mlx.core as mx
import numpy as np

from metal_kernels.emulator import LaunchCounters, counting, metal_kernel
from metal_kernels.mxfp4_moe import THREADS, MoeKernels, Mxfp4Matrix, group_by_expert

DTYPES = {"bfloat16": mx.bfloat16, "float16": mx.float16, "float32": mx.float32}


@dataclass(frozen=True)
class Row:
    act_per_weight_byte: float
    vector16: float
    lookups_per_nibble: float
    lines_per_load: float
    matrix_conflicts: float
    tg_conflicts: float
    tg_kb: float


# The reference design's values with 16-bit activations (see the docstring). GEMV: 4 rows per
# simdgroup share activations held in registers, so 32 values (64 B) serve 4 x 16 weight bytes.
# GEMM: a 64-row x 32-token tile in half: 32 x 32 x 2 B of activations per 64 x 16 weight bytes.
REFERENCE = {
    "gemv_swiglu": Row(1.0, 1.0, 1.0, 4.0, 0.0, 0.0, 0.0),
    "gemv_combine": Row(1.0, 1.0, 1.0, 4.0, 0.0, 0.0, 0.0),
    "gemm (gate_up)": Row(2.0, 1.0, 1.0, 16.0, 0.0, 0.0, 8.0),
    "gemm (down)": Row(2.0, 1.0, 1.0, 16.0, 0.0, 0.0, 8.0),
}
PREFILL_TG_KB = 8.0
VECTOR16_TARGET = 0.9


def measure(c: LaunchCounters, activations: str) -> Row:
    w = c.buffers["input `w`"]
    act = c.buffers[activations].read_bytes
    return Row(
        act / w.read_bytes, w.vector16_fraction, c.constant_loads / (2 * w.read_bytes),
        w.lines_per_load, c.matrix_banks.conflicts_per_instruction,
        c.tg_banks.conflicts_per_instruction, c.tg_bytes / 1024,
    )  # fmt: skip


def targets(name: str, r: Row) -> dict[str, bool]:
    """The issue-16 targets, each met or not."""
    met = {
        "no bank conflicts": r.matrix_conflicts == 0 and r.tg_conflicts == 0,
        ">= 90% 16-byte weight loads": r.vector16 >= VECTOR16_TARGET,
        "<= 1 decode op per nibble": r.lookups_per_nibble <= 1.0,
    }
    if name.startswith("gemm"):
        met["prefill threadgroup memory <= 8 KB"] = r.tg_kb <= PREFILL_TG_KB
    return met


def _problem(
    rng: np.random.Generator, E: int, D: int, I: int, N: int, k: int, dtype: mx.Dtype
) -> tuple:
    def matrix(rows: int, cols: int) -> Mxfp4Matrix:
        words = rng.integers(0, 2**32, (E, rows, cols // 8), dtype=np.uint32)
        scales = rng.integers(118, 125, (E, rows, cols // 32)).astype(np.uint8)
        return Mxfp4Matrix(mx.array(words), mx.array(scales), mx.zeros((E, rows), dtype=dtype))

    x = mx.array(rng.standard_normal((N, D)).astype(np.float32)).astype(dtype)
    idx = mx.array(np.stack([rng.choice(E, k, replace=False) for _ in range(N)]).astype(np.uint32))
    route = mx.softmax(mx.array(rng.standard_normal((N, k)).astype(np.float32)), axis=-1)
    return x, idx, route, matrix(2 * I, D), matrix(D, I)


def run(small: bool, dtype: mx.Dtype = mx.bfloat16) -> dict[str, Row]:
    D = I = 256 if small else 2880
    E, k = 4, 4  # only the chosen experts' bytes are read: 4 experts stand for 32
    rng = np.random.default_rng(0)
    kernels = MoeKernels(metal_kernel)
    rows: dict[str, Row] = {}
    x, idx, route, gate_up, down = _problem(rng, E, D, I, 1, k, dtype)
    with counting() as launches:
        kernels.decode(x, idx, route, gate_up, down, 7.0)
    rows["gemv_swiglu"] = measure(launches[0][1], "input `x`")
    rows["gemv_combine"] = measure(launches[1][1], "input `act`")
    N = 64
    x, idx, route, gate_up, down = _problem(rng, E, D, I, N, k, dtype)
    order, pair_rows, tiles = group_by_expert(idx, E)
    limit, route = mx.array([7.0]), route.reshape(-1)
    act = mx.zeros((N * k, I), dtype=dtype)
    for name, rows_in, first, matrix, width in (
        ("gemm (gate_up)", pair_rows, True, gate_up, I),
        ("gemm (down)", order.astype(mx.uint32), False, down, D),
    ):
        flags = [("GATHER", first), ("SWIGLU", first), ("COMBINE", not first)]
        inputs = [x if first else act, rows_in, tiles, *matrix, limit, route]
        with counting() as launches:
            kernels.gemm(
                inputs=inputs, template=[("T", dtype), *flags],
                grid=(2 * THREADS, tiles.shape[0], 1), threadgroup=(THREADS, 1, 1),
                output_shapes=[(N * k, width)], output_dtypes=[dtype],
            )  # fmt: skip
        rows[name] = measure(launches[0][1], "input `x`")  # the GEMM names its activations x
    return rows


def report(rows: dict[str, Row]) -> str:
    head = ("act B/wB", "16B loads", "lut/nib", "lines/ld", "mma cf", "tg cf", "tg KB")
    lines = [f"{'kernel':<16}{'':<11}" + "".join(f"{h:>10}" for h in head)]
    for name, row in rows.items():
        for label, r in (("this", row), ("reference", REFERENCE[name])):
            lines.append(
                f"{name if label == 'this' else '':<16}{label:<11}{r.act_per_weight_byte:>10.2f}"
                f"{r.vector16:>10.0%}{r.lookups_per_nibble:>10.2f}{r.lines_per_load:>10.1f}"
                f"{r.matrix_conflicts:>10.2f}{r.tg_conflicts:>10.2f}{r.tg_kb:>10.2f}"
            )
    lines.append("")
    lines.append("issue-16 targets (this / reference):")
    for name, row in rows.items():
        ref = targets(name, REFERENCE[name])
        for target, ok in targets(name, row).items():
            marks = ["met" if m else "NOT met" for m in (ok, ref[target])]
            lines.append(f"  {name:<16}{target:<38}{marks[0]:<9}/ {marks[1]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--small", action="store_true", help="small widths: a quick smoke run")
    p.add_argument("--dtype", choices=list(DTYPES), default="bfloat16", help="activation dtype")
    args = p.parse_args(argv)
    print(report(run(args.small, DTYPES[args.dtype])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
