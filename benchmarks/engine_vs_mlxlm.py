"""Our engine against mlx-lm's gpt_oss on the same synthetic checkpoints, side by side.

Measures load time, prefill tokens/s, decode tokens/s and peak memory for both engines at the same
activation dtype (float32, bfloat16) and at each one's default (ours float32 on the CPU, mlx-lm the
checkpoint's bfloat16), and prints a table with the ratios ours / mlx-lm plus one verdict per goal:
decode and prefill >= 1.0x mlx-lm, peak memory <= 1.0x.

    .venv/bin/python -m benchmarks.engine_vs_mlxlm              # both models
    .venv/bin/python -m benchmarks.engine_vs_mlxlm --quick      # small model only
    .venv/bin/python -m benchmarks.engine_vs_mlxlm --repeat 3 --json results.json

Run time on 2 x86-64 CPU cores (MLX 0.32.4, mlx-lm 0.32.2), checkpoints cached: default 4.4 min
(6.9 min while other jobs shared the CPU), --quick 1.1 min; --repeat N multiplies that by N. Writing
the checkpoints the first time (0.4 + 3.3 GB) took another 30 s.

Method, the same for both engines:
- Each (engine, dtype) runs in a fresh subprocess, so peak memory is its own: MLX's
  mx.get_peak_memory() (reset after loading, so "load" and "generate" peaks are separate) and the
  process's peak RSS (getrusage ru_maxrss, which also counts the Python interpreter and imports).
- Same prompt ids, same prompt length, same number of generated tokens, greedy sampling, the same
  prefill chunk size (ours' prefill_step, mlx-lm's prefill_step_size), and one warm-up generation of
  the same prompt length (other ids, 2 tokens) before the measured one.
- Timing is taken outside both generators: prefill = prompt tokens / time to the first token;
  decode = (generated - 1) / (time from the first to the last token). mlx-lm's stream_generate
  divides N tokens by N - 1 intervals instead; we do not, for either engine.
- Load time is the wall time of the load call plus evaluating every parameter (mlx-lm converts to
  float32 with model.set_dtype after loading the stored bfloat16, as its own tests do).
- The checkpoint files are read once before the runs, so every load starts from a warm page cache;
  with --repeat, every other repeat runs the workers in reverse order.
- Each engine prefills its own way: mlx-lm evaluates only the KV caches of the first P - 1 tokens
  and then runs the last token alone; ours runs all P tokens and keeps the last position's logits.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from engine.testing.synthetic import checkpoint_nbytes, hf_config, small_config, write_checkpoint

CACHE_DIR = Path(__file__).resolve().parent / ".cache"
ENGINES = ("ours", "mlxlm")
DTYPES = ("float32", "bfloat16")
DEFAULT_DTYPE = {"ours": "float32", "mlxlm": "bfloat16"}  # ours on the CPU; mlx-lm keeps bf16
PREFILL_STEP = 512
WARMUP_TOKENS = 2
MiB = 1 << 20


@dataclass(frozen=True)
class Bench:
    name: str
    description: str
    config: dict[str, Any]
    prompt_len: int
    gen: int


def benches(quick: bool) -> list[Bench]:
    small = Bench(
        "small",
        "hidden 512, 8 experts, 4 layers, real vocab",
        small_config(),
        prompt_len=128,
        gen=32,
    )
    # MLX's CPU MXFP4 matmuls take ~1 s per token per layer at these widths: keep it short.
    wide = Bench("20b-2L", "real 20b widths, 2 layers", hf_config(num_hidden_layers=2), 32, 8)
    return [small] if quick else [small, wide]


# --- checkpoints ----------------------------------------------------------------------------


def ensure_checkpoint(bench: Bench) -> Path:
    """The bench's checkpoint under benchmarks/.cache/, written once and reused while it matches."""
    out = CACHE_DIR / bench.name
    config_file = out / "config.json"
    if config_file.is_file() and (out / "model.safetensors").is_file():
        if json.loads(config_file.read_text()) == bench.config:
            return out
        shutil.rmtree(out)  # an older config under the same name
    size_gb = checkpoint_nbytes(bench.config) / 1e9
    _log(f"writing {bench.name} checkpoint ({size_gb:.2f} GB) to {out}")
    tmp = CACHE_DIR / f"{bench.name}.partial"
    if tmp.exists():
        shutil.rmtree(tmp)
    write_checkpoint(tmp, bench.config, seed=0)
    tmp.replace(out)
    return out


def warm_page_cache(model_dir: Path) -> None:
    for f in sorted(model_dir.glob("*.safetensors")):
        with f.open("rb") as fh:
            while fh.read(64 * MiB):
                pass


# --- the worker: one engine, one dtype, one process -----------------------------------------


@dataclass
class Timing:
    ttft_s: float
    decode_s: float
    tokens: list[int]


def time_generation(tokens: Iterator[int], start: float) -> Timing:
    ids: list[int] = []
    t_first = t_last = start
    for tok in tokens:
        t_last = time.perf_counter()
        if not ids:
            t_first = t_last
        ids.append(tok)
    return Timing(t_first - start, t_last - t_first, ids)


Generate = Callable[[list[int], int], Iterator[int]]


def _ours(model_dir: Path, dtype: str, reported: dict[str, Any]) -> tuple[str, Generate]:
    """Loads with our engine (weights evaluated inside); returns its dtype and a generator.

    The engine's own GenerationStats land in `reported`, to cross-check the outside timing.
    """
    from dataclasses import asdict

    from engine import GREEDY, Finished, Token, load_model

    model = load_model(model_dir, dtype=dtype)

    def generate(prompt: list[int], n: int) -> Iterator[int]:
        for ev in model.generate(prompt, settings=GREEDY, max_tokens=n, prefill_step=PREFILL_STEP):
            if isinstance(ev, Token):
                yield ev.id
            elif isinstance(ev, Finished):
                reported.update(asdict(ev.stats))

    return model.dtype, generate


def _mlxlm(model_dir: Path, dtype: str, reported: dict[str, Any]) -> tuple[str, Generate]:
    """Loads with mlx-lm, cast to `dtype` and evaluated; returns its float dtypes, a generator."""
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.generate import generate_step
    from mlx_lm.sample_utils import make_sampler
    from mlx_lm.utils import load_model

    model, _ = load_model(model_dir)
    if dtype != "bfloat16":
        model.set_dtype(getattr(mx, dtype))
    params: Any = tree_flatten(model.parameters())
    mx.eval([v for _, v in params])
    floats = {
        str(v.dtype).removeprefix("mlx.core.")
        for _, v in params
        if mx.issubdtype(v.dtype, mx.floating)
    }
    greedy = make_sampler(temp=0.0)

    def generate(prompt: list[int], n: int) -> Iterator[int]:
        steps = generate_step(
            mx.array(prompt, dtype=mx.uint32),
            model,
            max_tokens=n,
            sampler=greedy,
            prefill_step_size=PREFILL_STEP,
        )
        return (int(tok) for tok, _ in steps)

    return ",".join(sorted(floats)), generate


def run_worker(
    engine: str, model_dir: Path, dtype: str, prompt_len: int, gen: int
) -> dict[str, Any]:
    import mlx.core as mx

    load_avg = os.getloadavg()[0]
    rss_start = _peak_rss()
    reported: dict[str, Any] = {}
    mx.reset_peak_memory()
    t0 = time.perf_counter()
    loaded_dtype, generate = (_ours if engine == "ours" else _mlxlm)(model_dir, dtype, reported)
    load_s = time.perf_counter() - t0
    peak_load = mx.get_peak_memory()
    rss_load = _peak_rss()

    config = json.loads((model_dir / "config.json").read_text())
    rng = np.random.default_rng(0)
    warmup, prompt = rng.integers(0, config["vocab_size"], size=(2, prompt_len)).tolist()
    mx.reset_peak_memory()
    warm = time_generation(generate(warmup, WARMUP_TOKENS), time.perf_counter())
    reported.clear()
    timing = time_generation(generate(prompt, gen), time.perf_counter())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    if len(timing.tokens) != gen:
        raise RuntimeError(f"{engine} generated {len(timing.tokens)} tokens, not {gen}")
    return {
        "engine": engine,
        "dtype": dtype,
        "loaded_dtype": loaded_dtype,
        "device": str(mx.default_device()),
        "prompt_tokens": prompt_len,
        "generated_tokens": gen,
        "load_s": load_s,
        "warmup_s": warm.ttft_s + warm.decode_s,
        "ttft_s": timing.ttft_s,
        "prefill_tps": prompt_len / timing.ttft_s,
        "decode_tps": (gen - 1) / timing.decode_s if gen > 1 else float("nan"),
        "mx_peak_load_bytes": peak_load,
        "mx_peak_generate_bytes": mx.get_peak_memory(),
        "rss_before_load_bytes": rss_start,
        "rss_after_load_bytes": rss_load,
        "rss_peak_bytes": _peak_rss(),
        "tokens": timing.tokens,
        "engine_reported_stats": reported,  # ours only; mlx-lm's generate_step reports none
        "cpu_s": usage.ru_utime + usage.ru_stime,
        # 1-minute load average at start and end; above the core count, others shared the CPU.
        "load_avg": [load_avg, os.getloadavg()[0]],
    }


def _peak_rss() -> int:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return kib if sys.platform == "darwin" else kib * 1024


# --- the driver -----------------------------------------------------------------------------


def spawn_worker(engine: str, model_dir: Path, dtype: str, bench: Bench) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", engine]
    cmd += ["--model", str(model_dir), "--dtype", dtype]
    cmd += ["--prompt-len", str(bench.prompt_len), "--gen", str(bench.gen)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {engine} {dtype} failed ({proc.returncode}):\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["model"] = bench.name
    result["wall_s"] = time.perf_counter() - t0
    return result


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    scale: float = 1.0
    fmt: str = "{:.2f}"


METRICS = (
    Metric("load_s", "load s"),
    Metric("prefill_tps", "prefill tok/s", fmt="{:.1f}"),
    Metric("decode_tps", "decode tok/s"),
    Metric("mx_peak_load_bytes", "MLX peak, load MiB", 1 / MiB, "{:.0f}"),
    Metric("mx_peak_generate_bytes", "MLX peak, generate MiB", 1 / MiB, "{:.0f}"),
    Metric("rss_peak_bytes", "peak RSS MiB", 1 / MiB, "{:.0f}"),
)
# (label, ours dtype, mlx-lm dtype)
PAIRINGS = (
    ("same: float32", "float32", "float32"),
    ("same: bfloat16", "bfloat16", "bfloat16"),
    ("defaults", DEFAULT_DTYPE["ours"], DEFAULT_DTYPE["mlxlm"]),
)
# (goal, metric key, higher is better); "mx_peak" is the larger of the load and generate peaks.
GOALS = (
    ("decode tok/s >= 1.0x mlx-lm", "decode_tps", True),
    ("prefill tok/s >= 1.0x mlx-lm", "prefill_tps", True),
    ("MLX peak memory (load and generate) <= 1.0x mlx-lm", "mx_peak", False),
    ("peak RSS <= 1.0x mlx-lm", "rss_peak_bytes", False),
)


def median(runs: list[dict[str, Any]], model: str, engine: str, dtype: str, key: str) -> float:
    values = [
        float(
            max(r["mx_peak_load_bytes"], r["mx_peak_generate_bytes"])
            if key == "mx_peak"
            else r[key]
        )
        for r in runs
        if (r["model"], r["engine"], r["dtype"]) == (model, engine, dtype)
    ]
    return statistics.median(values)


def summarize(runs: list[dict[str, Any]], models: Sequence[Bench]) -> list[dict[str, Any]]:
    rows = []
    for bench in models:
        for label, ours_dt, theirs_dt in PAIRINGS:
            for m in METRICS:
                ours = median(runs, bench.name, "ours", ours_dt, m.key)
                theirs = median(runs, bench.name, "mlxlm", theirs_dt, m.key)
                rows.append(
                    {
                        "model": bench.name,
                        "pairing": label,
                        "ours_dtype": ours_dt,
                        "mlxlm_dtype": theirs_dt,
                        "metric": m.key,
                        "ours": ours,
                        "mlxlm": theirs,
                        "ratio": ours / theirs,
                    }
                )
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    metrics = {m.key: m for m in METRICS}
    header = ("model", "dtype (ours / mlx-lm)", "metric", "ours", "mlx-lm", "ours/mlx-lm")
    lines = [header]
    for r in rows:
        m = metrics[r["metric"]]
        dt = f"{r['pairing']} ({r['ours_dtype']} / {r['mlxlm_dtype']})"
        values = (m.fmt.format(r["ours"] * m.scale), m.fmt.format(r["mlxlm"] * m.scale))
        lines.append((r["model"], dt, m.label, *values, f"{r['ratio']:.2f}x"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    right = {3, 4, 5}
    out = []
    for j, line in enumerate(lines):
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
        if j == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def verdicts(runs: list[dict[str, Any]], models: Sequence[Bench]) -> list[str]:
    lines = []
    for goal, key, higher in GOALS:
        cases = []
        for bench in models:
            for label, ours_dt, theirs_dt in PAIRINGS:
                ours = median(runs, bench.name, "ours", ours_dt, key)
                ratio = ours / median(runs, bench.name, "mlxlm", theirs_dt, key)
                met = ratio >= 1.0 if higher else ratio <= 1.0
                cases.append((met, ratio, f"{bench.name} {label.removeprefix('same: ')}"))
        missed = [f"{name} {ratio:.3f}x" for met, ratio, name in cases if not met]
        if missed:
            lines.append(f"{goal}: NOT MET in {len(missed)}/{len(cases)} ({'; '.join(missed)})")
        else:
            _, ratio, name = (min if higher else max)(cases, key=lambda c: c[1])
            lines.append(f"{goal}: MET in {len(cases)}/{len(cases)} (closest: {name} {ratio:.3f}x)")
    return lines


def token_agreement(runs: list[dict[str, Any]], models: Sequence[Bench]) -> list[str]:
    """Greedy tokens of both engines at the same dtype: equal work is only sure if they agree."""
    lines = []
    for bench in models:
        for dtype in DTYPES:
            ours = next(
                r["tokens"]
                for r in runs
                if (r["model"], r["engine"], r["dtype"]) == (bench.name, "ours", dtype)
            )
            theirs = next(
                r["tokens"]
                for r in runs
                if (r["model"], r["engine"], r["dtype"]) == (bench.name, "mlxlm", dtype)
            )
            first = next(
                (i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b), None
            )
            same = "identical" if first is None else f"first differ at token {first}"
            lines.append(f"{bench.name} {dtype}: greedy tokens {same} ({len(ours)} generated)")
    lines.append(
        "(ours applies YaRN unrounded as the config says, mlx-lm rounds its range: logits differ "
        "by ~1e-2, so near-ties on a random model can pick different tokens; the work per token "
        "is the same)"
    )
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="the small model only")
    p.add_argument("--repeat", type=int, default=1, help="processes per (engine, dtype); medians")
    p.add_argument("--json", type=Path, help="save every run and the summary here")
    p.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    p.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--dtype", choices=DTYPES, help=argparse.SUPPRESS)
    p.add_argument("--prompt-len", type=int, help=argparse.SUPPRESS)
    p.add_argument("--gen", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        result = run_worker(args.worker, args.model, args.dtype, args.prompt_len, args.gen)
        print(json.dumps(result))
        return

    t_start = time.perf_counter()
    models = benches(args.quick)
    runs: list[dict[str, Any]] = []
    for bench in models:
        model_dir = ensure_checkpoint(bench)
        warm_page_cache(model_dir)
        for rep in range(args.repeat):
            order = [(e, d) for d in DTYPES for e in ENGINES]
            for engine, dtype in order if rep % 2 == 0 else order[::-1]:
                r = spawn_worker(engine, model_dir, dtype, bench)
                _log(
                    f"{bench.name} {engine:5} {dtype:8} run {rep + 1}/{args.repeat}: "
                    f"prefill {r['prefill_tps']:.1f} tok/s, decode {r['decode_tps']:.2f} tok/s, "
                    f"{r['wall_s']:.0f} s"
                )
                runs.append(r)
    elapsed = time.perf_counter() - t_start

    print(
        f"engine vs mlx-lm {version('mlx-lm')} on MLX {version('mlx')}, {runs[0]['device']}, "
        f"{platform.machine()} x {os.cpu_count()}; median of {args.repeat} process(es) per cell"
    )
    load = [x for r in runs for x in r["load_avg"]]
    # A worker alone keeps the load near 1-2; clearly above the core count, others were running.
    busy = " (others shared the CPU: noisy)" if max(load) > (os.cpu_count() or 1) + 1 else ""
    print(f"  1-min load average during the runs: {min(load):.1f} to {max(load):.1f}{busy}")
    for bench in models:
        print(
            f"  {bench.name}: {bench.description}; prompt {bench.prompt_len} tokens, "
            f"{bench.gen} generated, prefill chunk {PREFILL_STEP}, greedy, 1 warm-up"
        )
    print()
    rows = summarize(runs, models)
    print(format_table(rows))
    print()
    for line in verdicts(runs, models) + token_agreement(runs, models):
        print(line)
    print(f"\ntotal run time {elapsed / 60:.1f} min")
    if args.json:
        payload = {"argv": sys.argv, "elapsed_s": elapsed, "runs": runs, "summary": rows}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
