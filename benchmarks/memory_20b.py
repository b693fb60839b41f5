"""Memory of gpt-oss-20b, measured on the full 20b shape: ours in each precision profile vs mlx-lm.

    .venv/bin/python -m benchmarks.memory_20b [--profiles full,16gb,compact] [--no-mlxlm]
        [--positions 128] [--gen 16] [--context 8192] [--json out.json]

Builds (once, ~1 minute, 12.8 GiB under benchmarks/.cache) a random-weight checkpoint with the real
20b shapes. Then, each in a fresh subprocess so peaks are their own, with bfloat16 activations (a
Mac's; MLX on this CPU stands in for the unified memory): load, reserve an 8k-token KV cache,
prefill a short prompt and generate 16 tokens. It reports load time (a second load too: lean
profiles convert once, then read the cached conversion), MLX's peak memory while loading and over
the whole run, the process's peak RSS, the planner's prediction beside each measurement, and the
weight bytes read per decoded token. Last, per profile, the logit error and
top-1 agreement against "full" over `--positions` positions (computed with float32 activations,
which this CPU runs several times faster; the profiles' error comes from their weights).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from engine.testing.synthetic import checkpoint_nbytes, hf_config, write_checkpoint

CACHE = Path(__file__).resolve().parent / ".cache"
MODEL_DIR = CACHE / "gpt-oss-20b-synthetic"
GiB = 2**30


def ensure_checkpoint() -> Path:
    config = hf_config()
    marker = MODEL_DIR / "config.json"
    if marker.exists() and json.loads(marker.read_text()) == config:
        return MODEL_DIR
    if MODEL_DIR.exists():
        raise SystemExit(f"{MODEL_DIR} holds another checkpoint; remove it first")
    print(f"writing the 20b-shaped checkpoint ({checkpoint_nbytes(config) / GiB:.1f} GiB)...")
    write_checkpoint(MODEL_DIR, config, seed=0, num_shards=3)
    return MODEL_DIR


def _rss_peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _prompt(n: int) -> list[int]:
    return [int(t) for t in np.random.default_rng(1).integers(0, 199_998, size=n)]


def worker_ours(model: Path, profile: str, context: int, prompt_len: int, gen: int) -> dict:
    import mlx.core as mx

    from engine import GREEDY, Finished, load_model
    from engine.memory import plan_memory
    from engine.memory.planner import weight_bytes_per_token

    mx.reset_peak_memory()
    t0 = time.perf_counter()
    m = load_model(model, dtype="bfloat16", profile=profile, expert_backend="mlx")
    load_s = time.perf_counter() - t0
    loaded, load_peak = mx.get_active_memory(), mx.get_peak_memory()
    rss_load = _rss_peak()
    cache = m.new_cache(capacity=context)
    done = None
    for ev in m.generate(_prompt(prompt_len), settings=GREEDY, max_tokens=gen, cache=cache):
        if isinstance(ev, Finished):
            done = ev
    assert done is not None
    plan = plan_memory(m.args, profile, "bfloat16", context, prefill_chunk=prompt_len)
    return {
        "engine": "ours", "profile": profile, "load_s": load_s,
        "loaded_bytes": loaded, "load_peak": load_peak, "run_peak": mx.get_peak_memory(),
        "rss_after_load": rss_load, "rss_peak": _rss_peak(),
        "predicted_weights": plan.weights, "predicted_total": plan.total,
        "kv_bytes": sum(getattr(c, "nbytes", 0) for c in cache),
        "predicted_kv": plan.components["kv_full_layers"] + plan.components["kv_sliding_layers"],
        "bytes_per_token": weight_bytes_per_token(m.args, profile, "bfloat16"),
        "decode_tps": done.stats.decode_tokens_per_s,
    }  # fmt: skip


def worker_load(model: Path, profile: str) -> dict:
    """A second load: lean profiles then read their converted weights from the on-disk cache."""
    from engine import load_model

    t0 = time.perf_counter()
    load_model(model, dtype="bfloat16", profile=profile, expert_backend="mlx")
    return {"profile": profile, "load_s": time.perf_counter() - t0}


def worker_mlxlm(model: Path, context: int, prompt_len: int, gen: int) -> dict:
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.generate import generate_step
    from mlx_lm.models.cache import KVCache, make_prompt_cache
    from mlx_lm.utils import load_model as lm_load

    from engine import ModelArgs
    from engine.memory.planner import weight_bytes_per_token

    mx.reset_peak_memory()
    t0 = time.perf_counter()
    lm, _ = lm_load(model)
    mx.eval(lm.parameters())
    load_s = time.perf_counter() - t0
    loaded, load_peak = mx.get_active_memory(), mx.get_peak_memory()
    rss_load = _rss_peak()
    cache = make_prompt_cache(lm)
    for c in cache:  # the same 8k of keys and values reserved up front, for a fair peak
        if type(c) is KVCache:
            c.keys = mx.zeros((1, 8, context, 64), mx.bfloat16)
            c.values = mx.zeros((1, 8, context, 64), mx.bfloat16)
    mx.eval([c.keys for c in cache if type(c) is KVCache])
    prompt = mx.array(_prompt(prompt_len), dtype=mx.uint32)
    times = []
    for _ in generate_step(prompt, lm, max_tokens=gen, prompt_cache=cache):
        times.append(time.perf_counter())
    args = ModelArgs.from_model_dir(model)
    flat: list[tuple[str, mx.array]] = tree_flatten(lm.parameters())  # type: ignore[assignment]
    params = sum(v.nbytes for _, v in flat)
    return {
        "engine": "mlx-lm", "profile": "bf16 as stored", "load_s": load_s,
        "loaded_bytes": loaded, "load_peak": load_peak, "run_peak": mx.get_peak_memory(),
        "rss_after_load": rss_load, "rss_peak": _rss_peak(),
        "predicted_weights": params, "predicted_total": None, "kv_bytes": None,
        "predicted_kv": None,
        "bytes_per_token": weight_bytes_per_token(args, "full", "bfloat16"),
        "decode_tps": (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0,
    }  # fmt: skip


def worker_logits(model: Path, profile: str, positions: int, out: Path) -> dict:
    from engine import load_model

    m = load_model(model, dtype="float32", profile=profile, expert_backend="mlx")
    logits = m.logits(_prompt(positions))
    np.save(out, logits.astype(np.float32))
    return {"profile": profile, "file": str(out)}


def _run_worker(argv: list[str]) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.memory_20b", "--worker", *argv]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"worker {argv} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _g(x: float | None) -> str:
    return "-" if x is None else f"{x / GiB:8.3f}"


def report(rows: list[dict], errors: list[dict]) -> str:
    lines = [
        "MLX memory in GiB (bf16 activations, 8k-token KV cache reserved, "
        f"{rows[0].get('gen', 16)} tokens generated)",
        f"{'engine':<8}{'profile':<16}{'load s':>8}{'again':>7}{'loaded':>9}{'planned':>9}{'Δ%':>6}"
        f"{'load pk':>9}{'run pk':>9}{'planned':>9}{'Δ%':>6}{'RSS pk':>9}{'GB/tok':>8}{'tok/s':>7}",
    ]
    for r in rows:
        d_w = 100 * (r["predicted_weights"] / r["loaded_bytes"] - 1) if r["loaded_bytes"] else 0
        d_t = (100 * (r["predicted_total"] / r["run_peak"] - 1)) if r["predicted_total"] else None
        lines.append(
            f"{r['engine']:<8}{r['profile']:<16}{r['load_s']:8.1f}"
            f"{r.get('load_s_again', r['load_s']):7.1f}{_g(r['loaded_bytes'])}"
            f"{_g(r['predicted_weights'])}{d_w:6.1f}{_g(r['load_peak'])}{_g(r['run_peak'])}"
            f"{_g(r['predicted_total'])}{'-' if d_t is None else f'{d_t:6.1f}':>6}"
            f"{_g(r['rss_peak'])}{r['bytes_per_token'] / 1e9:8.2f}{r['decode_tps']:7.2f}"
        )
    if errors:
        lines.append("")
        lines.append("Logits against 'full' (float32 activations)")
        lines.append(f"{'profile':<10}{'mean |Δ| / mean |logit|':>26}{'max |Δ|':>10}{'top-1':>8}")
        for e in errors:
            lines.append(
                f"{e['profile']:<10}{e['rel_error']:26.4f}{e['max_abs']:10.3f}{e['top1']:8.3f}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    p.add_argument("--profiles", default="full,16gb,compact")
    p.add_argument("--no-mlxlm", action="store_true")
    p.add_argument("--positions", type=int, default=128)
    p.add_argument("--gen", type=int, default=16)
    p.add_argument("--prompt-len", type=int, default=16)
    p.add_argument("--context", type=int, default=8192)
    p.add_argument("--json", type=Path)
    p.add_argument("--model", type=Path, help="another checkpoint instead of the 20b-shaped one")
    a = p.parse_args(argv)
    if a.worker:
        kind, *rest = a.worker
        model = Path(rest[0])
        if kind == "ours":
            result = worker_ours(model, rest[1], a.context, a.prompt_len, a.gen)
        elif kind == "mlxlm":
            result = worker_mlxlm(model, a.context, a.prompt_len, a.gen)
        elif kind == "load":
            result = worker_load(model, rest[1])
        else:
            result = worker_logits(model, rest[1], a.positions, Path(rest[2]))
        print(json.dumps(result))
        return 0
    model = a.model or ensure_checkpoint()
    profiles = a.profiles.split(",")
    common = ["--context", str(a.context), "--gen", str(a.gen), "--prompt-len", str(a.prompt_len)]
    rows = []
    for prof in profiles:
        row = _run_worker(["ours", str(model), prof, *common])
        row["load_s_again"] = _run_worker(["load", str(model), prof])["load_s"]
        rows.append(row)
        print(report(rows, []).splitlines()[-1], flush=True)
    if not a.no_mlxlm:
        rows.append(_run_worker(["mlxlm", str(model), *common]))
    errors = []
    if a.positions and "full" in profiles:
        files = {}
        for prof in profiles:
            CACHE.mkdir(exist_ok=True)
            out = CACHE / f"logits-{prof}.npy"
            _run_worker(["logits", str(model), prof, str(out), "--positions", str(a.positions)])
            files[prof] = np.load(out)
        ref = files["full"]
        for prof in profiles:
            if prof == "full":
                continue
            diff = np.abs(files[prof] - ref)
            errors.append({
                "profile": prof, "rel_error": float(diff.mean() / np.abs(ref).mean()),
                "max_abs": float(diff.max()),
                "top1": float((files[prof].argmax(-1) == ref.argmax(-1)).mean()),
            })  # fmt: skip
    text = report(rows, errors)
    print(text)
    if a.json:
        a.json.write_text(json.dumps({"rows": rows, "errors": errors}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
