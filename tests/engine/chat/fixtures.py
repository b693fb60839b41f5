"""A synthetic model folder for harmony flows: the real vocabulary size plus a synthetic tokenizer,
written once per test session (shared by the chat and CLI tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine import LoadedModel
from engine.testing.scripted import ScriptedSampler
from engine.testing.synthetic_tokenizer import write_synthetic_tokenizer
from engine.tokenizer import N_VOCAB
from tests.conftest import CheckpointFactory


def chat_model_dir(make_checkpoint: CheckpointFactory) -> Path:
    path = make_checkpoint(vocab_size=N_VOCAB)
    if not (path / "tokenizer.json").is_file():
        write_synthetic_tokenizer(path)
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
