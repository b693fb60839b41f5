"""gpt-oss split across 1, 2 and 4 processes (MLX ring backend over 127.0.0.1): memory and logits.

    .venv/bin/python -m benchmarks.distributed [--models tiny,120b-2L] [--processes 1,2,4]
        [--vocab 32768] [--tokens 4] [--json out.json] [--no-latency]

First, the latency of one all_sum of a hidden state (2,880 float32 values, what each layer's two
all-sums move per decoded token) between 2 ranks: 200 calls after 20 warm-up calls, min, p10,
median and p90 (tensor parallel does 2 per layer: 72 per token for 120b).

Models (written once under benchmarks/.cache, reused while their config.json matches):
- tiny: tests' tiny synthetic gpt-oss (hidden 64, 8 experts, 2 kv heads, 4 layers);
- 120b-2L: gpt-oss-120b's widths (hidden 2880, 64 query and 8 kv heads, 128 experts, top-4) with
  2 layers (3.8 GB); its vocabulary is cut to --vocab (real: 201,088) so four float32 copies of
  the embedding fit beside the other engineers' work on this machine; the layers are full size.

Each configuration runs engine.distributed.check with float32 activations: rank 0 computes the
logits of a 20-token prompt and generates --tokens greedy tokens, and each rank reports MLX's peak
memory. Printed per rank: the planner's share (engine.memory.planner.plan_distributed: weights,
KV cache and activations at the prompt's context, without its allowance for MLX's runtime, which
MLX's peak does not count) against the measured peaks, and per run the
largest logit difference from 1 process and whether the greedy tokens agree. The 1-process run is
the same code with a group of one (no ring), i.e. the engine's ordinary forward pass.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.config import ModelArgs
from engine.distributed.local import run_local
from engine.memory.planner import plan_distributed
from engine.testing.synthetic import checkpoint_nbytes, hf_config, tiny_config, write_checkpoint

CACHE = Path(__file__).resolve().parent / ".cache"
PROMPT = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4]
MiB = 2**20


def model_config(name: str, vocab: int) -> dict[str, Any]:
    if name == "tiny":
        return tiny_config()
    if name == "120b-2L":
        return hf_config(num_hidden_layers=2, num_local_experts=128, vocab_size=vocab)
    raise SystemExit(f"unknown model {name!r}: use tiny or 120b-2L")


def ensure_checkpoint(name: str, config: dict[str, Any]) -> Path:
    folder = CACHE / f"distributed-{name}"
    marker = folder / "config.json"
    if marker.exists() and json.loads(marker.read_text()) == config:
        return folder
    if folder.exists():
        for f in folder.iterdir():
            f.unlink()
    print(f"writing {name} ({checkpoint_nbytes(config) / 2**30:.2f} GiB) to {folder}", flush=True)
    write_checkpoint(folder, config, seed=0)
    return folder


def run(folder: Path, processes: int, tokens: int, out: Path) -> dict[str, Any]:
    ids = ",".join(map(str, PROMPT))
    args = ["engine.distributed.check", str(folder), str(out), "--prompt-ids", ids]
    t0 = time.perf_counter()
    done = run_local(processes, [*args, "--tokens", str(tokens)], timeout=1800)
    if done.returncode != 0 or not (out / "tokens.json").exists():
        raise SystemExit(f"{processes} processes failed:\n{done.stderr[-3000:]}")
    return {
        "seconds": time.perf_counter() - t0,
        "logits": np.load(out / "logits.npy"),
        "tokens": json.loads((out / "tokens.json").read_text()),
        "ranks": [json.loads((out / f"rank{r}.json").read_text()) for r in range(processes)],
    }


def all_sum_latency_rank(calls: int = 200) -> None:
    """One rank of the latency run (launched by `all_sum_latency`); rank 0 prints the result."""
    import mlx.core as mx

    from engine.distributed.group import init_group

    group = init_group()
    x = mx.ones((2880,), dtype=mx.float32)
    for _ in range(20):
        mx.eval(mx.distributed.all_sum(x, group=group))
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        mx.eval(mx.distributed.all_sum(x, group=group))
        times.append(time.perf_counter() - t0)
    if group.rank() == 0:
        ms = np.percentile(np.array(times) * 1e3, [0, 10, 50, 90])
        print(
            json.dumps(
                dict(zip(("min", "p10", "median", "p90"), ms.round(3).tolist(), strict=True))
            )
        )


def all_sum_latency() -> None:
    done = run_local(2, ["benchmarks.distributed", "--latency-rank"], timeout=300)
    if done.returncode != 0:
        raise SystemExit(f"the all_sum latency run failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        "all_sum of 2,880 float32 between 2 ranks (ms): "
        + ", ".join(f"{k} {v:.3f}" for k, v in result.items())
    )
    print(
        f"  x 72 per token (120b): {72 * result['min']:.1f} ms at best, "
        f"{72 * result['median']:.1f} ms at the median"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="tiny,120b-2L")
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--vocab", type=int, default=32768)
    parser.add_argument("--tokens", type=int, default=4)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--no-latency", dest="latency", action="store_false")
    parser.add_argument("--latency-rank", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.latency_rank:
        all_sum_latency_rank()
        return
    if opts.latency:
        all_sum_latency()
    counts = [int(n) for n in opts.processes.split(",")]
    report: list[dict[str, Any]] = []
    for name in opts.models.split(","):
        config = model_config(name, opts.vocab)
        folder = ensure_checkpoint(name, config)
        args = ModelArgs.from_dict(config)
        context = len(PROMPT) + opts.tokens
        reference: dict[str, Any] | None = None
        print(f"\n{name}: prompt {len(PROMPT)} tokens, {opts.tokens} greedy tokens, float32")
        print(
            f"{'procs':>5} {'rank':>4} {'plan weights':>12} {'load peak':>10} {'plan run':>10} "
            f"{'peak':>10} {'peak/plan':>9} {'max |dlogit|':>13} {'tokens':>7} "
            f"{'decode tok/s':>12} {'s':>6}   (MiB)"
        )
        for n in counts:
            with tempfile.TemporaryDirectory(prefix="oss-desk-dist-") as tmp:
                result = run(folder, n, opts.tokens, Path(tmp))
            reference = reference or result
            diff = float(np.abs(result["logits"] - reference["logits"]).max())
            same = result["tokens"] == reference["tokens"]
            plans = plan_distributed(args, n, dtype="float32", context=context, prefill_chunk=32)
            for r, rank in enumerate(result["ranks"]):
                # MLX's peak counts arrays only: the planner's runtime allowance is left out
                planned = plans[r].total - plans[r].components["runtime"]
                run_columns = ["", "", "", ""]
                if r == 0:
                    run_columns = [
                        f"{diff:.2e}",
                        "same" if same else "DIFFER",
                        f"{rank.get('decode_tokens_per_s', 0.0):.2f}",
                        f"{result['seconds']:.1f}",
                    ]
                print(
                    f"{n if r == 0 else '':>5} {r:>4} {plans[r].weights / MiB:>12.1f} "
                    f"{rank['load_peak_bytes'] / MiB:>10.1f} {planned / MiB:>10.1f} "
                    f"{rank['peak_bytes'] / MiB:>10.1f} "
                    f"{rank['peak_bytes'] / planned:>9.3f} {run_columns[0]:>13} "
                    f"{run_columns[1]:>7} {run_columns[2]:>12} {run_columns[3]:>6}",
                    flush=True,
                )
                report.append(
                    {
                        "model": name,
                        "processes": n,
                        "rank": r,
                        "planned_bytes": planned,
                        "planned_weight_bytes": plans[r].weights,
                        "load_peak_bytes": rank["load_peak_bytes"],
                        "peak_bytes": rank["peak_bytes"],
                        "max_logit_difference": diff,
                        "tokens_agree": same,
                        "decode_tokens_per_s": rank.get("decode_tokens_per_s"),
                    }
                )
    if opts.json:
        opts.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
