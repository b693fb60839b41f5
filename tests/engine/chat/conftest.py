from __future__ import annotations

from pathlib import Path

import pytest

from engine import HarmonyTokenizer, LoadedModel, load_model
from tests.conftest import CheckpointFactory

from .fixtures import chat_model_dir


@pytest.fixture(scope="session")
def model_dir(make_checkpoint: CheckpointFactory) -> Path:
    return chat_model_dir(make_checkpoint)


@pytest.fixture(scope="session")
def model(model_dir: Path) -> LoadedModel:
    return load_model(model_dir, dtype="float32")


@pytest.fixture(scope="session")
def tok(model_dir: Path) -> HarmonyTokenizer:
    return HarmonyTokenizer.from_model_dir(model_dir)
