"""Cache reuse when the KV cache is 8-bit (the 16 GB profile): rewinding and snapshots must work
on quantized full-attention caches too."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine import HarmonyTokenizer, Message, load_model
from engine.testing.synthetic_tokenizer import write_synthetic_tokenizer
from engine.tokenizer import N_VOCAB
from tests.conftest import CheckpointFactory

from .fixtures import fresh_logprobs
from .test_session import expected_prompt, finish, make_session, reply

# Keys and values are quantized per token, so a rewound cache and a one-chunk prefill hold the
# same 8-bit values; only the attention's summation order could differ (measured: 0.0).
ATOL = 1e-5


def test_turn_two_on_an_8bit_cache_reuses_it_and_matches_a_fresh_prefill(
    make_checkpoint: CheckpointFactory,
) -> None:
    path: Path = make_checkpoint(
        vocab_size=N_VOCAB, head_dim=32, num_attention_heads=4, num_key_value_heads=1
    )
    if not (path / "tokenizer.json").is_file():
        write_synthetic_tokenizer(path)
    model = load_model(path, dtype="float32", profile="16gb")
    assert model.profile.kv_bits == 8
    tok = HarmonyTokenizer.from_model_dir(path)
    first = reply(tok, "Hello there.", analysis="The user asks.")
    session, sampler = make_session(model, tok, first + reply(tok, "Four.", analysis="Add."))
    finish(session.send("Hi"))
    _, done = finish(session.send("What is 2 + 2?"))
    prompt1 = expected_prompt(tok, Message.user("Hi"))
    prompt2 = expected_prompt(
        tok,
        Message.user("Hi"),
        Message.assistant("The user asks.", channel="analysis"),
        Message.assistant("Hello there."),
        Message.user("What is 2 + 2?"),
    )
    assert done.stats.reused_tokens == len(prompt1)
    assert done.stats.prefill_tokens == len(prompt2) - len(prompt1)
    diff = np.abs(sampler.seen[len(first)] - fresh_logprobs(model, prompt2)).max()
    assert diff < ATOL
