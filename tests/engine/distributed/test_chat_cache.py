"""A chat on a model split across two processes reuses its KV cache across turns as one process
does, including rewinds across sliding-window layers (regenerate, edit), which restore snapshots
that every process must take and restore alike (engine.distributed.runtime)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from engine import HarmonyTokenizer, load_model
from engine.distributed.local import run_local
from tests.engine.chat.fixtures import text_only_model
from tests.engine.distributed.chat_ranks import STEPS, chat_turns

WINDOW = 8  # far shorter than any prompt: a rewind restores a snapshot instead of trimming


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Greedy turns of plain text that run to the token caps (text_only_model)."""
    return text_only_model(tmp_path_factory.mktemp("chat-model"), seed=7, sliding_window=WINDOW)


def test_two_processes_reuse_the_chat_cache_across_turns_and_rewinds_as_one_does(
    chat_model: Path, tmp_path: Path
) -> None:
    run = run_local(2, ["tests.engine.distributed.chat_ranks", str(chat_model), str(tmp_path)], 60)
    error, turns = tmp_path / "error.txt", tmp_path / "turns.json"
    # mlx.launch exits 0 even when a rank failed: its files say how rank 0's chat went
    assert not error.exists(), error.read_text()
    assert run.returncode == 0 and turns.exists(), run.stderr
    split = json.loads(turns.read_text())
    one = load_model(chat_model, dtype="float32")
    alone = chat_turns(one, HarmonyTokenizer.from_model_dir(chat_model), tmp_path / "one-cache")

    assert [t["step"] for t in split] == list(STEPS)
    *chat, reopened = split
    assert chat == alone[:-1]  # every turn's tokens, and the same prefix reused
    for turn in split:
        assert turn["reason"] == "length"  # real turns that ran to the token caps
        assert turn["prefill_tokens"] == turn["prompt_tokens"] - turn["reused_tokens"]
    assert chat[0]["reused_tokens"] == 0
    for before, turn in itertools.pairwise(chat):
        # only past a prefix the cache held: and it held more than that prefix (the last answer
        # or its analysis), which a sliding window without slack can only go back to through a
        # snapshot
        assert turn["prompt_tokens"] > turn["prefill_tokens"] > 0
        assert len(before["tokens"]) > turn["reused_tokens"]
        assert turn["tokens"][: turn["reused_tokens"]] == before["tokens"][: turn["reused_tokens"]]

    # A saved cache would hold rank 0's slice only: the split chat prefills again instead.
    assert alone[-1]["saved"] and alone[-1]["restored"] and alone[-1]["reused_tokens"] > 0
    assert not reopened["saved"] and not reopened["restored"]
    assert reopened["reused_tokens"] == 0
    assert reopened["tokens"] == alone[-1]["tokens"]
    assert not (tmp_path / "prompt-cache").exists() or not any(
        (tmp_path / "prompt-cache").iterdir()
    )
