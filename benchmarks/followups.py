"""Time to first token of a follow-up with a 4,000-token document in the chat: (a) in the open
chat, (b) after switching away and back, (c) after restarting the process, and (d) with no saved
cache (what (b) and (c) cost before issue 12). Also the prompt cache's save and restore cost, its
bytes per 1,000 tokens, and the full gpt-oss-20b figure computed from the measured tensors.

    .venv/bin/python -m benchmarks.followups [--shape small|20b-2L] [--tokens 4000]
        [--repeat 3] [--json out.json]

The checkpoint is synthetic (random weights, synthetic tokenizer with the real vocabulary size),
written once under benchmarks/.cache: `small` is hidden 512, 4 layers, head_dim 64 (the 20b's),
float32 on this CPU; `20b-2L` has the real 20b widths and 2 layers (slow here: minutes per
prefill). The model's tokens are scripted (random weights write garbage); the model, cache and
session run for real. TTFT of (b) and (c) includes reading the file and rebuilding the cache; (c)
runs in a fresh process (the file is then in the page cache, as it is on a Mac after a restart
with enough memory; a cold read adds the file's size divided by the disk's read rate), which
first runs one short forward pass: MLX's one-time warm-up is paid by any first turn after a
restart, with or without a saved cache. (a) can be measured once per first turn (the 4,000-token
prefill is the slow part); (b) and (c) are repeated and their median reported, so compare them
with (a) knowing that the CPU is shared (the header prints the load average).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CACHE = Path(__file__).resolve().parent / ".cache"
SHAPES: dict[str, dict[str, Any]] = {
    "small": {},
    "20b-2L": {"hidden_size": 2880, "intermediate_size": 2880, "num_attention_heads": 64,
               "num_key_value_heads": 8, "num_local_experts": 32, "num_hidden_layers": 2},
}  # fmt: skip
FOLLOW_UP = "Summarize the document in one sentence."
# gpt-oss-20b: 24 layers alternating sliding/full, 8 KV heads of 64; bf16 activations on a Mac.
GPT_OSS_20B = {"full_layers": 12, "sliding_layers": 12, "kv_heads": 8, "window_kept": 127}


def ensure_checkpoint(shape: str) -> Path:
    from engine.testing.synthetic import small_config, write_checkpoint
    from engine.testing.synthetic_tokenizer import write_synthetic_tokenizer

    config = small_config(**SHAPES[shape])
    folder = CACHE / f"followups-{shape}"
    marker = folder / "config.json"
    if not (marker.exists() and json.loads(marker.read_text()) == config):
        print(f"writing the {shape} checkpoint to {folder} ...", flush=True)
        write_checkpoint(folder, config, seed=0)
    if not (folder / "tokenizer.json").is_file():
        write_synthetic_tokenizer(folder)
    return folder


def document(tok: Any, tokens: int) -> str:
    sentence = "The quarterly report lists revenue, costs and the plans for next year. "
    n = max(1, tokens // max(1, len(tok.encode(sentence))))
    return "Please read this document.\n\n" + sentence * n


def history(doc: str) -> list[Any]:
    from engine import Message

    return [Message.user(doc), Message.assistant("Reading it.", channel="analysis"),
            Message.assistant("I have read it.")]  # fmt: skip


def scripted(tok: Any) -> Any:
    from engine import Message
    from engine.testing.scripted import ScriptedSampler, reply_ids

    answer = [Message.assistant("Thinking.", channel="analysis"), Message.assistant("Done.")]
    return ScriptedSampler(reply_ids(tok, history("")[1:]) + reply_ids(tok, answer) * 2)


def follow_up_ttft(session: Any) -> tuple[float, int, int]:
    """Seconds to the first sampled token of the follow-up, tokens reused, prompt tokens."""
    from engine import TurnFinished

    for event in session.send(FOLLOW_UP):
        if isinstance(event, TurnFinished):
            s = event.stats
            return s.ttft_s, s.reused_tokens, s.prompt_tokens
    raise RuntimeError("no TurnFinished")


def restart_child(model_dir: str, folder: str, tokens: int) -> None:
    """(c): a fresh process loads the model, then restores and answers the follow-up."""
    from engine import ChatSession, HarmonyTokenizer, PromptCache, load_model

    model = load_model(model_dir, dtype="float32")
    tok = HarmonyTokenizer.from_model_dir(model_dir)
    model.logits([1, 2, 3, 4])  # MLX's one-time warm-up, paid by any first turn
    store = PromptCache(model, tok, Path(folder))
    session = ChatSession.from_messages(model, tok, history(document(tok, tokens)),
                                        sampler=scripted(tok))  # fmt: skip
    t0 = time.perf_counter()
    restored = store.restore("chat", session)
    restore_s = time.perf_counter() - t0
    ttft, reused, prompt = follow_up_ttft(session)
    print(json.dumps({"restore_s": restore_s, "ttft_s": restore_s + ttft, "reused": reused,
                      "prompt": prompt, "restored": restored.tokens}))  # fmt: skip


def table_split(path: Path) -> dict[str, int]:
    """Bytes of the file's tensors by kind: full layers (grow with the chat), windows, snapshots."""
    from engine.chat.cache_file import read_manifest

    manifest, table, _ = read_manifest(path)
    kinds = {i: layer["kind"] for i, layer in enumerate(manifest["layers"])}
    out = {"full": 0, "window": 0, "snapshots": 0}
    for name, entry in table.items():
        size = entry["data_offsets"][1] - entry["data_offsets"][0]
        if name.startswith("snap"):
            out["snapshots"] += size
        elif kinds[int(name.split(".")[0].removeprefix("layer"))] == "sliding":
            out["window"] += size
        else:
            out["full"] += size
    return out


def full_20b_per_1000(path: Path, args: Any) -> float:
    """MB per 1,000 tokens of gpt-oss-20b's saved cache (bf16 on a Mac) from the measured
    per-token tensors: same head_dim, so only layer and head counts and float width change."""
    from engine.chat.cache_file import read_manifest

    manifest, table, _ = read_manifest(path)
    n = len(manifest["tokens"])
    per_head_token = 0.0
    first_full = next(i for i, layer in enumerate(manifest["layers"]) if layer["kind"] != "sliding")
    for name, entry in table.items():
        if name.startswith(f"layer{first_full}."):
            size = entry["data_offsets"][1] - entry["data_offsets"][0]
            scale = 0.5 if entry["dtype"] == "F32" else 1.0  # fp32 here, bf16 on a Mac
            per_head_token += size * scale / (n * args.num_key_value_heads)
    full = GPT_OSS_20B["full_layers"] * GPT_OSS_20B["kv_heads"]
    return per_head_token * full * 1000 / 1e6


def median(runs: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    """The run with the median first value."""
    return sorted(runs)[len(runs) // 2]


def prefill_rate(model: Any, chunk: int, n: int = 1024) -> float:
    """Tokens/s of a prefill in chunks of `chunk` (the cost of Stop's 64-token granularity)."""
    from engine.testing.scripted import ScriptedSampler

    decoder = model.decoder(model.new_cache(), ScriptedSampler([0]))
    ids = [(i * 7919) % 199_000 + 1 for i in range(n)]
    t0 = time.perf_counter()
    for start in range(0, n, chunk):
        decoder.feed(ids[start : start + chunk], sample=False)
    return n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="small")
    parser.add_argument("--tokens", type=int, default=4000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        restart_child(opts.child[0], opts.child[1], int(opts.child[2]))
        return

    from engine import ChatSession, HarmonyTokenizer, PromptCache, load_model

    model_dir = ensure_checkpoint(opts.shape)
    model = load_model(model_dir, dtype="float32")
    tok = HarmonyTokenizer.from_model_dir(model_dir)
    doc = document(tok, opts.tokens)
    print(f"load average {os.getloadavg()[0]:.2f}; {opts.shape}; document "
          f"{len(tok.encode(doc)):,} tokens", flush=True)  # fmt: skip
    results: dict[str, Any] = {"shape": opts.shape}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store = PromptCache(model, tok, folder)

        def first_turn() -> Any:
            session = ChatSession(model, tok, sampler=scripted(tok))
            for _ in session.send(doc):
                pass
            return session

        session = first_turn()
        held = len(session.context.tokens)
        saved = store.save("chat", session)
        split = table_split(store.path("chat"))
        # (d) no saved cache: the whole prompt again
        cold = ChatSession.from_messages(model, tok, history(doc), sampler=scripted(tok))
        results["d_no_cache"] = follow_up_ttft(cold)
        # (b) switch away and back: a new session restored from the file
        runs = []
        for _ in range(opts.repeat):
            back = ChatSession.from_messages(model, tok, history(doc), sampler=scripted(tok))
            t0 = time.perf_counter()
            restored = store.restore("chat", back)
            restore_s = time.perf_counter() - t0
            ttft, reused, prompt = follow_up_ttft(back)
            runs.append((restore_s + ttft, reused, prompt, restore_s))
        results["b_switch"] = median(runs)[:3]
        restore_s = median(runs)[3]
        # (a) the open chat
        results["a_open"] = follow_up_ttft(session)
        # (c) restart
        children = []
        for _ in range(opts.repeat):
            child = subprocess.run(
                [sys.executable, "-m", "benchmarks.followups", "--child", str(model_dir),
                 str(folder), str(opts.tokens)],
                capture_output=True, text=True, check=True, cwd=Path(__file__).parents[1],
            )  # fmt: skip
            c = json.loads(child.stdout.strip().splitlines()[-1])
            children.append((c["ttft_s"], c["reused"], c["prompt"], c["restore_s"]))
        c_ttft, c_reused, c_prompt, c_restore = median(children)
        results["c_restart"] = (c_ttft, c_reused, c_prompt)
        mb = saved.bytes / 1e6
        results["save"] = {"tokens": held, "MB": mb, "ms": saved.seconds * 1e3,
                           "MB_per_1k": 1000 * split["full"] / held / 1e6,
                           "fixed_MB": (split["window"] + split["snapshots"]) / 1e6,
                           "ms_per_1k": saved.seconds * 1e6 / held}  # fmt: skip
        results["restore"] = {"ms": restore_s * 1e3, "ms_per_1k": restore_s * 1e6 / held,
                              "restart_ms": c_restore * 1e3, "tokens": restored.tokens}  # fmt: skip
        results["20b_full_MB_per_1k"] = full_20b_per_1000(store.path("chat"), model.args)
        # the 16 GB Mac's profile keeps the KV cache in 8 bits: measure its tensors too
        lean = load_model(model_dir, dtype="float32", profile="16gb")
        lean_store = PromptCache(lean, tok, folder / "16gb")
        lean_session = ChatSession(lean, tok, sampler=scripted(tok))
        for _ in lean_session.send(document(tok, 1000)):
            pass
        lean_store.save("chat", lean_session)
        results["20b_16gb_MB_per_1k"] = full_20b_per_1000(lean_store.path("chat"), lean.args)
    results["prefill_tps_chunk512"] = prefill_rate(model, 512)
    results["prefill_tps_chunk64"] = prefill_rate(model, 64)
    results["load_average_end"] = os.getloadavg()[0]
    report(results)
    if opts.json:
        opts.json.write_text(json.dumps(results, indent=1))


def report(r: dict[str, Any]) -> None:
    a = r["a_open"][0]
    print(f"{'follow-up':28} {'TTFT s':>8} {'vs (a)':>7} {'reused':>7} {'prompt':>7}")
    for key, label in (
        ("a_open", "(a) open chat"),
        ("b_switch", "(b) switch away and back"),
        ("c_restart", "(c) after a restart"),
        ("d_no_cache", "(d) no saved cache"),
    ):
        ttft, reused, prompt = r[key]
        print(f"{label:28} {ttft:8.3f} {ttft / a:6.2f}x {reused:7,} {prompt:7,}")  # fmt: skip
    s, re_ = r["save"], r["restore"]
    print(f"save: {s['MB']:.1f} MB for {s['tokens']:,} tokens in {s['ms']:.0f} ms "
          f"({s['ms_per_1k']:.1f} ms and {s['MB_per_1k']:.2f} MB per 1,000 tokens, plus "
          f"{s['fixed_MB']:.2f} MB of windows and snapshots)")  # fmt: skip
    print(
        f"restore: {re_['ms']:.0f} ms in process, {re_['restart_ms']:.0f} ms after a "
        f"restart ({re_['ms_per_1k']:.1f} ms per 1,000 tokens); {re_['tokens']:,} tokens kept"
    )
    print(f"gpt-oss-20b from the measured per-token tensors: {r['20b_16gb_MB_per_1k']:.1f} MB "
          f"per 1,000 tokens with the 16gb profile (8-bit KV), {r['20b_full_MB_per_1k']:.1f} MB "
          "with the full profile (bf16); plus about 3 MB per window state (12 layers x 127 "
          "tokens x 8 heads x 64 x K,V x bf16), 6 states per file")  # fmt: skip
    print(f"load average at the end {r['load_average_end']:.2f}")
    print(f"prefill tokens/s in 512-token chunks {r['prefill_tps_chunk512']:.0f}, in 64-token "
          f"chunks (Stop's granularity) {r['prefill_tps_chunk64']:.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
