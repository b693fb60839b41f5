"""Custom MXFP4 MoE Metal kernels vs MLX's gather_qmm, on a Mac (Apple GPU).

    .venv/bin/python benchmarks/kernels_mac.py [--model DIR] [--bandwidth-gbs 120] [--repeat 20]

1. One layer of gpt-oss-20b's experts (E=32, hidden 2880, intermediate 2880, top-4) on random MXFP4
   weights: decode (1 token) and prefill (512 tokens), milliseconds per call for each path, the
   weight bytes each call must read and the achieved GB/s against the chip's bandwidth.
2. With --model: decode tokens/s of the whole engine with each path on that checkpoint.
Without Metal it says so and exits with status 0.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from functools import partial

import mlx.core as mx
import numpy as np

from engine.experts import ExpertWeights, mlx_experts

E, D, I, TOP_K = 32, 2880, 2880, 4


def _weights(rng: np.random.Generator) -> ExpertWeights:
    def words(rows: int, cols: int) -> mx.array:
        return mx.array(rng.integers(0, 2**32, (E, rows, cols // 8), dtype=np.uint32))

    def scales(rows: int, cols: int) -> mx.array:
        return mx.array(rng.integers(118, 125, (E, rows, cols // 32), dtype=np.uint8))

    return ExpertWeights(
        words(2 * I, D), scales(2 * I, D), mx.zeros((E, 2 * I), mx.bfloat16),
        words(D, I), scales(D, I), mx.zeros((E, D), mx.bfloat16), 7.0,
    )  # fmt: skip


def _bytes_read(tokens: int, rng: np.random.Generator) -> tuple[mx.array, int]:
    idx = np.stack([rng.choice(E, TOP_K, replace=False) for _ in range(tokens)])
    per_expert = (2 * I * D + D * I) // 2 + (2 * I * D + D * I) // 32
    return mx.array(idx.astype(np.uint32)), len(np.unique(idx)) * per_expert


def _time(fn: Callable[[], mx.array], repeat: int) -> float:
    mx.eval(fn())  # warm-up: compiles the kernels
    start = time.perf_counter()
    for _ in range(repeat):
        mx.eval(fn())
    return (time.perf_counter() - start) / repeat


def bench_layer(repeat: int, bandwidth: float) -> None:
    from engine.expert_backends import KernelExperts
    from metal_kernels.mxfp4_moe import MoeKernels

    rng = np.random.default_rng(0)
    w = _weights(rng)
    kernels = KernelExperts(MoeKernels(mx.fast.metal_kernel))
    print(f"{'case':<22}{'path':<10}{'ms':>9}{'GB/s':>9}{'% of BW':>9}")
    for tokens in (1, 512):
        idx, nbytes = _bytes_read(tokens, rng)
        x = mx.array(rng.normal(0, 1, (tokens, D)).astype(np.float32)).astype(mx.bfloat16)
        route = mx.softmax(mx.array(rng.normal(0, 1, (tokens, TOP_K)).astype(np.float32)), -1)
        paths: tuple[tuple[str, Callable[..., mx.array]], ...] = (
            ("mlx", mlx_experts),
            ("custom", kernels),
        )
        for name, fn in paths:
            s = _time(partial(fn, x, idx, route, w), repeat)
            gbs = nbytes / s / 1e9
            case = "decode, 1 token" if tokens == 1 else f"prefill, {tokens} tokens"
            print(f"{case:<22}{name:<10}{s * 1e3:>9.3f}{gbs:>9.1f}{100 * gbs / bandwidth:>8.0f}%")


def bench_engine(model_dir: str, tokens: int) -> None:
    from engine import GREEDY, Finished, load_model

    for mode in ("mlx", "metal"):
        model = load_model(model_dir, expert_backend=mode)
        events = model.generate([1, 2, 3, 4], settings=GREEDY, max_tokens=tokens)
        done = next(e for e in events if isinstance(e, Finished))
        print(f"engine with {model.expert_backend:<8} decode {done.stats.decode_tokens_per_s:7.1f} "
              f"tok/s, prefill {done.stats.prefill_tokens_per_s:7.1f} tok/s")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="a gpt-oss checkpoint folder for the whole-engine comparison")
    p.add_argument("--bandwidth-gbs", type=float, default=120.0, help="chip memory bandwidth")
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--tokens", type=int, default=64, help="tokens to decode with --model")
    args = p.parse_args(argv)
    if not mx.metal.is_available():
        print("No Metal GPU here: this benchmark needs a Mac with Apple silicon.")
        print("(The kernels' correctness is tested on any machine by tests/metal_kernels.)")
        return 0
    info = mx.device_info()
    print(f"device: {info.get('device_name', '?')}, bandwidth assumed {args.bandwidth_gbs} GB/s")
    bench_layer(args.repeat, args.bandwidth_gbs)
    if args.model:
        bench_engine(args.model, args.tokens)
    return 0


if __name__ == "__main__":
    sys.exit(main())
