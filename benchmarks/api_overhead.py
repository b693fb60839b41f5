"""Decode tokens/s through the OpenAI-compatible server with the official SDK, against the
engine alone, on the same checkpoint and tokens.

Goal: streaming through `/v1/responses` decodes at >= 0.95x the engine's own speed.

    .venv/bin/python -m benchmarks.api_overhead                 # warm-up + 3 runs per side
    .venv/bin/python -m benchmarks.api_overhead --repeat 5 --json results.json

Method:
- The checkpoint of benchmarks/gui_overhead.py (hidden 512, 8 experts top-4, 4 layers, the real
  201,088-token vocabulary, float32 on the CPU, a synthetic tokenizer), written once to
  benchmarks/.cache/gui-small/, and the same scripted reply (a short analysis, then a ~250-token
  Markdown answer): both sides run the real model, KV cache, harmony parser and ChatSession and
  produce exactly the same tokens; only the choice of each token is scripted.
- Engine alone: ChatSession.send iterated on this thread.
- Through the API: the server as `oss-desk-serve` builds it (RunnerThread + create_app on
  uvicorn, on loopback, bearer token) in its own process, and
  `openai.OpenAI().responses.create(stream=True)` in this one, as a real client would be.
- decode tok/s = (answer tokens - 1) / (first answer text seen -> turn finished); the engine
  side sees ChannelDelta events, the SDK side response.output_text.delta and
  response.completed. end-to-end tok/s = generated tokens / (request -> finished).
- One warm-up round, then --repeat rounds of one engine turn and one API turn (alternating, so
  a shared machine's load falls on both alike), each a new conversation; medians. The engine
  prefills the whole prompt each time and the server reuses its system prompt: only decode
  speed is compared.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from benchmarks.gui_overhead import PROMPT, ensure_model, script_ids

GOAL = 0.95
KEY = "benchmark-key-0000"


@dataclass(frozen=True)
class Run:
    answer_tokens: int
    generated_tokens: int
    decode_tok_s: float
    end_to_end_tok_s: float


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def engine_turn(model: Any, tokenizer: Any, ids: list[int]) -> Run:
    from engine import ChannelDelta, ChatSession, TurnFinished
    from engine.testing.scripted import ScriptedSampler

    session = ChatSession(model, tokenizer, sampler=ScriptedSampler(ids))
    start = time.perf_counter()
    first: float | None = None
    for event in session.send(PROMPT):
        if isinstance(event, ChannelDelta) and event.channel == "final" and first is None:
            first = time.perf_counter()
        if isinstance(event, TurnFinished):
            end = time.perf_counter()
            stats = event.stats
    assert first is not None
    return Run(
        stats.answer_tokens,
        stats.generated_tokens,
        (stats.answer_tokens - 1) / (end - first),
        stats.generated_tokens / (end - start),
    )


def api_turn(client: Any, model_id: str) -> Run:
    start = time.perf_counter()
    first: float | None = None
    stream = client.responses.create(model=model_id, input=PROMPT, stream=True)
    for event in stream:
        if event.type == "response.output_text.delta" and first is None:
            first = time.perf_counter()
        if event.type == "response.completed":
            end = time.perf_counter()
            usage = event.response.usage
    assert first is not None
    answer = usage.output_tokens - usage.output_tokens_details.reasoning_tokens
    return Run(
        answer,
        usage.output_tokens,
        (answer - 1) / (end - first),
        usage.output_tokens / (end - start),
    )


class Cycling:
    """A scripted sampler that starts the script again when it ends: each turn samples the
    whole reply, so every request of the benchmark gets the same tokens."""

    def __init__(self, ids: list[int]) -> None:
        from engine.testing.scripted import ScriptedSampler

        self._ids = ids
        self._sampler = ScriptedSampler(ids)

    def __call__(self, logprobs: Any) -> Any:
        if self._sampler.remaining == 0:
            self._sampler.extend(self._ids)
        return self._sampler(logprobs)


def serve(model_dir: Path) -> None:
    """The server side, in its own process (as `oss-desk-serve` runs): prints its port, then
    serves until its stdin closes."""
    import uvicorn

    from engine import HarmonyTokenizer, load_model
    from server.app import create_app
    from server.runner import RunnerThread
    from server.store import ResponseStore

    tokenizer = HarmonyTokenizer.from_model_dir(model_dir)
    sampler = Cycling(script_ids(tokenizer))
    runner = RunnerThread(
        "bench", lambda: (load_model(model_dir), tokenizer), session_options={"sampler": sampler}
    )
    runner.wait_ready()
    with TemporaryDirectory() as tmp:
        app = create_app(runner, api_key=KEY, store=ResponseStore(Path(tmp) / "r.sqlite3"))
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        print(server.servers[0].sockets[0].getsockname()[1], flush=True)
        sys.stdin.read()
        server.should_exit = True
        thread.join(10)
        runner.close()


def measure(model_dir: Path, repeat: int) -> tuple[list[Run], list[Run]]:
    """Engine turns on this thread and API turns against the server process, alternating, so
    the load of a shared machine falls on both sides alike."""
    from openai import OpenAI

    from engine import HarmonyTokenizer, load_model

    command = [sys.executable, "-m", "benchmarks.api_overhead", "--serve", str(model_dir)]
    server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        client = OpenAI(api_key=KEY, base_url=f"http://127.0.0.1:{port}/v1", max_retries=0)
        model, tokenizer = load_model(model_dir), HarmonyTokenizer.from_model_dir(model_dir)
        ids = script_ids(tokenizer)
        engine_runs, api_runs = [], []
        for i in range(repeat + 1):  # the first round is the warm-up
            _log(f"round {i} of {repeat} …")
            engine_run = engine_turn(model, tokenizer, ids)
            api_run = api_turn(client, "bench")
            if i:
                engine_runs.append(engine_run)
                api_runs.append(api_run)
        return engine_runs, api_runs
    finally:
        server.communicate("", timeout=30)


def median(runs: list[Run], name: str) -> float:
    return float(statistics.median(getattr(r, name) for r in runs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the runs and medians here")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)  # the server process
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0
    engine, api = measure(ensure_model(), args.repeat)
    if {r.generated_tokens for r in engine} != {r.generated_tokens for r in api}:
        _log("warning: the two sides generated different numbers of tokens")
    ratio = median(api, "decode_tok_s") / median(engine, "decode_tok_s")
    print(f"{'':24}{'engine alone':>14}{'API + SDK':>14}")
    for label, name in (("decode tok/s", "decode_tok_s"), ("end-to-end tok/s", "end_to_end_tok_s")):
        print(f"{label:24}{median(engine, name):14.2f}{median(api, name):14.2f}")
    print(f"{'answer tokens':24}{engine[0].answer_tokens:14d}{api[0].answer_tokens:14d}")
    rounds = [a.decode_tok_s / e.decode_tok_s for e, a in zip(engine, api, strict=True)]
    print("per-round decode ratios: " + " ".join(f"{r:.3f}" for r in rounds))
    verdict = "meets" if ratio >= GOAL else "misses"
    print(f"decode ratio API/engine: {ratio:.3f}x ({verdict} the {GOAL}x goal)")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": platform.platform(),
                    "engine": [asdict(r) for r in engine],
                    "api": [asdict(r) for r in api],
                    "decode_ratio": ratio,
                    "round_ratios": rounds,
                },
                indent=2,
            )
        )
    return 0 if ratio >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
