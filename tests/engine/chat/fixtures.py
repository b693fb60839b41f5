"""A synthetic model folder for harmony flows: the real vocabulary size plus a synthetic tokenizer,
written once per test session (shared by the chat and CLI tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine import LoadedModel, ModelArgs
from engine.checkpoint import scan_checkpoint
from engine.testing.scripted import ScriptedSampler
from engine.testing.synthetic import tiny_config, write_checkpoint
from engine.testing.synthetic_tokenizer import synthetic_mergeable_ranks, write_synthetic_tokenizer
from engine.tokenizer import N_VOCAB
from tests.conftest import CheckpointFactory


def chat_model_dir(make_checkpoint: CheckpointFactory) -> Path:
    path = make_checkpoint(vocab_size=N_VOCAB)
    if not (path / "tokenizer.json").is_file():
        write_synthetic_tokenizer(path)
    return path


def text_only_model(path: Path, *, seed: int, **config: int) -> Path:
    """A tiny model at `path` with the real vocabulary size and the synthetic tokenizer, its
    unembedding zero for every id but the tokenizer's text tokens: the random weights then only
    ever pick tokens that decode, so greedy turns are plain text showing every token they hold."""
    write_checkpoint(path, tiny_config(vocab_size=N_VOCAB, **config), seed=seed)
    write_synthetic_tokenizer(path)
    text_ids = len(synthetic_mergeable_ranks())
    head = scan_checkpoint(path, ModelArgs.from_model_dir(path))["lm_head.weight"]
    row = head.shape[1] * 2  # bfloat16
    with open(head.file, "r+b") as f:
        f.seek(head.start + text_ids * row)
        f.write(bytes((head.shape[0] - text_ids) * row))
    return path


def scratch_logprobs(model: LoadedModel, ids: list[int]) -> np.ndarray:
    """Log-softmax of the last position of one full forward pass with no cache."""
    logits = model.logits(ids)[-1].astype(np.float64)
    shifted = logits - logits.max()
    return shifted - np.log(np.exp(shifted).sum())


def fresh_logprobs(model: LoadedModel, ids: list[int]) -> np.ndarray:
    """What a sampler is shown after `ids` are prefilled in one chunk into an empty cache."""
    sampler = ScriptedSampler([0], record=True)
    decoder = model.decoder(model.new_cache(), sampler)
    decoder.feed(ids, sample=True)
    decoder.take()
    return sampler.seen[0]
