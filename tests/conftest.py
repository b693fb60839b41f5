"""Session-wide fixtures: synthetic checkpoints are written once and shared by all tests."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import pytest
from mlx.utils import tree_flatten

from engine.testing.fake_hub import FakeHub, write_tiny_repo
from engine.testing.real_vocab import RealVocabFiles, build_real_vocab
from engine.testing.synthetic import tiny_config, write_checkpoint
from engine.tokenizer import HarmonyTokenizer

CheckpointFactory = Callable[..., Path]

# Qt tests need no display: the offscreen platform, whoever runs pytest.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def param_bytes(module: nn.Module) -> int:
    """Bytes of every array a module holds."""
    flat: list[tuple[str, mx.array]] = tree_flatten(module.parameters())  # type: ignore[assignment]
    return sum(v.nbytes for _, v in flat)


@pytest.fixture(scope="session", autouse=True)
def _converted_weights_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Weights that precision profiles convert are cached here, not in the user's cache."""
    os.environ["OSS_DESK_CONVERTED_DIR"] = str(tmp_path_factory.mktemp("converted"))


@pytest.fixture(scope="session")
def make_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> CheckpointFactory:
    """Writes (once per distinct arguments) a synthetic checkpoint with tiny_config(**overrides)."""
    made: dict[str, Path] = {}

    def make(seed: int = 0, num_shards: int = 1, **overrides: Any) -> Path:
        key = json.dumps([seed, num_shards, overrides], sort_keys=True)
        if key not in made:
            name = "ckpt-" + hashlib.sha1(key.encode()).hexdigest()[:10]
            path = tmp_path_factory.mktemp(name)
            write_checkpoint(path, tiny_config(**overrides), seed=seed, num_shards=num_shards)
            made[key] = path
        return made[key]

    return make


@pytest.fixture(scope="session")
def tiny_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny gpt-oss repository (weights, tokenizer, and files the app must skip) to serve."""
    return write_tiny_repo(tmp_path_factory.mktemp("hub-repo"))


@pytest.fixture
def hub(tiny_repo: Path) -> Iterator[FakeHub]:
    """The repository served by a real HTTP server on loopback (HF_ENDPOINT points at it)."""
    with FakeHub(tiny_repo) as served:
        yield served


@pytest.fixture(scope="session")
def tiny_checkpoint(make_checkpoint: CheckpointFactory) -> Path:
    return make_checkpoint()


@pytest.fixture(scope="session")
def real_vocab(request: pytest.FixtureRequest) -> RealVocabFiles:
    """The real o200k vocabulary (`o200k_base.tiktoken` and a full-size `tokenizer.json`), rebuilt
    offline once and kept in pytest's cache; openai-harmony reads it from the same folder."""
    folder = build_real_vocab(request.config.cache.mkdir("o200k-real-vocab"))
    os.environ["TIKTOKEN_ENCODINGS_BASE"] = str(folder.folder)
    return folder


@pytest.fixture(scope="session")
def real_tok(real_vocab: RealVocabFiles) -> HarmonyTokenizer:
    """The o200k_harmony tokenizer on the real vocabulary."""
    return HarmonyTokenizer.from_tiktoken_file(real_vocab.tiktoken_file)
