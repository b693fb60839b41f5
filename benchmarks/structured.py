"""What a JSON-schema constraint costs per token at gpt-oss's vocabulary (engine.chat.structured).

    .venv/bin/python -m benchmarks.structured              # ~1 min
    .venv/bin/python -m benchmarks.structured --rounds 3   # a quick look

The real o200k_harmony vocabulary (201,088 ids, rebuilt offline from quicktok's data) drives a
tiny random-weight gpt-oss with the same vocabulary, so every logits row is 20b-sized. Printed:

- the mask alone, per token, while a random walk writes JSON the schema allows: the grammar's
  bitmask (llguidance), and applying it to a logits row in MLX (where + log-softmax);
- decode with and without the constraint on the same model, the same Decoder and the same
  sampler, side by side, per token, and the difference as a share of plain decode (target < 5%);
- that difference against ~25 ms per token, gpt-oss-20b's decode on a Mac.

Plain and constrained decodes alternate in short rounds and medians are reported, so that load
from other processes on a shared machine falls on both alike.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import mlx.core as mx
import numpy as np

from engine.chat.structured import END_TOKEN, CompiledSchema, FinalChannelConstraint, compile_schema
from engine.inference import LoadedModel, load_model
from engine.sampling import SamplingSettings, make_sampler
from engine.testing.real_vocab import build_real_vocab
from engine.testing.synthetic import tiny_config, write_checkpoint
from engine.tokenizer import N_VOCAB, HarmonyTokenizer

SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 40},
        "year": {"type": "integer", "minimum": 1900, "maximum": 2100},
        "rating": {"type": "number", "minimum": 0, "maximum": 10},
        "genres": {"type": "array", "items": {"enum": ["drama", "comedy", "sci-fi"]}},
        "cast": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                "required": ["name"],
            },
        },
    },
    "required": ["title", "year", "rating", "genres", "cast"],
}
MAC_20B_MS_PER_TOKEN = 25.0


def mask_alone(compiled: CompiledSchema, tokens: int, seed: int) -> tuple[list[float], list[float]]:
    """Per token: ms for the grammar's mask as a 0/-inf row, ms to add it to logits in MLX."""
    rng = random.Random(seed)
    logprobs = mx.random.normal((1, compiled.n_vocab))
    mx.eval(logprobs)
    grammar_ms: list[float] = []
    apply_ms: list[float] = []
    constraint = FinalChannelConstraint(compiled)
    constraint.begin()
    while len(grammar_ms) < tokens:
        t0 = time.perf_counter()
        bias = constraint.bias()
        t1 = time.perf_counter()
        mx.eval(logprobs + mx.array(bias))
        t2 = time.perf_counter()
        grammar_ms.append((t1 - t0) * 1e3)
        apply_ms.append((t2 - t1) * 1e3)
        token = int(rng.choice(np.flatnonzero(bias == 0)))
        if token == END_TOKEN:
            constraint = FinalChannelConstraint(compiled)
            constraint.begin()
        else:
            constraint.consume(token)
    return grammar_ms, apply_ms


def decode_ms(
    model: LoadedModel, prompt: list[int], compiled: CompiledSchema | None, tokens: int
) -> list[float]:
    """ms per decode step (take, grammar, feed back), restarting the answer when JSON ends."""
    steps: list[float] = []
    while len(steps) < tokens:
        sampler = make_sampler(SamplingSettings(seed=len(steps)))
        constraint = FinalChannelConstraint(compiled) if compiled else None
        if constraint is not None:
            constraint.begin()
            sampler = constraint.wrap(sampler)
        decoder = model.decoder(model.new_cache(), sampler)
        decoder.feed(prompt, sample=True)
        decoder.take()  # the first sample comes with the prompt, which is not decode
        decoder.push(prompt[-1])
        while len(steps) < tokens:
            t0 = time.perf_counter()
            token = decoder.take().id
            if token == END_TOKEN:
                break
            if constraint is not None:
                constraint.consume(token)
            decoder.push(token)
            steps.append((time.perf_counter() - t0) * 1e3)
    return steps


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _timed(label: str, fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    print(f"{label}: {seconds * 1e3:.1f} ms")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=50, help="decode tokens per round")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--vocab-dir", type=Path, default=Path(".cache/o200k"))
    args = parser.parse_args()

    tokenizer = HarmonyTokenizer.from_tiktoken_file(build_real_vocab(args.vocab_dir).tiktoken_file)
    with tempfile.TemporaryDirectory() as folder:
        write_checkpoint(Path(folder), tiny_config(vocab_size=N_VOCAB), seed=0)
        model = load_model(folder, dtype="float32")
    print(f"vocabulary: {tokenizer.n_vocab:,} ids; logits rows: {model.args.vocab_size:,}")
    compiled: list[CompiledSchema] = []
    _timed(
        "compile (first: builds the vocabulary)",
        lambda: compiled.append(compile_schema(tokenizer, SCHEMA, N_VOCAB)),
    )
    _timed("compile (cached)", lambda: compile_schema(tokenizer, SCHEMA, N_VOCAB))

    grammar, apply = mask_alone(compiled[0], args.tokens * args.rounds, seed=0)
    print(
        f"mask alone per token: grammar's mask as a 0/-inf row median {_median(grammar):.3f} ms, "
        f"mean {statistics.fmean(grammar):.3f} ms, p99 {np.percentile(grammar, 99):.3f} ms; "
        f"apply in MLX median {_median(apply):.3f} ms"
    )

    prompt = tokenizer.encode(
        "<|start|>user<|message|>Describe a film.<|end|>", allowed_special="all"
    )
    plain: list[float] = []
    constrained: list[float] = []
    decode_ms(model, prompt, None, 8)  # warm-up
    for _ in range(args.rounds):
        plain += decode_ms(model, prompt, None, args.tokens)
        constrained += decode_ms(model, prompt, compiled[0], args.tokens)
    p, c = _median(plain), _median(constrained)
    print(f"{'decode per token':<28}{'plain':>10}{'constrained':>14}")
    print(f"{'median ms':<28}{p:>10.3f}{c:>14.3f}")
    print(f"{'mean ms':<28}{statistics.fmean(plain):>10.3f}{statistics.fmean(constrained):>14.3f}")
    print(f"{'tokens/s (median)':<28}{1e3 / p:>10.1f}{1e3 / c:>14.1f}")
    extra = c - p
    print(f"constraint's cost: {extra:.3f} ms per token = {extra / p:.1%} of this decode (< 5%?)")
    whole = _median([g + a for g, a in zip(grammar, apply, strict=True)])
    print(
        f"mask alone ({whole:.3f} ms) against a 20b decode on a Mac "
        f"({MAC_20B_MS_PER_TOKEN:.0f} ms): {whole / MAC_20B_MS_PER_TOKEN:.1%}"
    )


if __name__ == "__main__":
    main()
