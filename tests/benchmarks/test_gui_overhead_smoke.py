"""benchmarks/gui_overhead.py on the tiny chat checkpoint, a few scripted tokens per side: the
engine turn, the window turn and the report run and agree. No timing is asserted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from benchmarks import gui_overhead as bench
from engine import HarmonyTokenizer
from tests.conftest import CheckpointFactory
from tests.engine.chat.fixtures import chat_model_dir

# The offscreen platform's own notice when a window is shown; nothing of ours.
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


def few_ids(tokenizer: Any) -> list[int]:
    return bench.script_ids(tokenizer, analysis=None, answer="Hi!")


@pytest.fixture(scope="module")
def model_dir(make_checkpoint: CheckpointFactory) -> Path:
    return chat_model_dir(make_checkpoint)


def test_the_engine_and_the_window_do_the_same_turn(
    qtbot: QtBot, model_dir: Path, tmp_path: Path
) -> None:
    model, tokenizer = bench.load(model_dir)
    ids = few_ids(tokenizer)
    engine = bench.engine_turn(model, tokenizer, ids, prompt="Hello")
    assert engine.generated_tokens == len(ids) and engine.answer_tokens >= 1
    assert engine.stall_max_ms == 0.0

    window, sessions = bench.open_window(model_dir, tmp_path / "data", few_ids)
    try:
        gui = bench.gui_turn(window, bench.Heartbeat(), prompt="Hello")
    finally:
        bench.close_window(window)
    assert len(sessions) == 1
    bench.check_same_work([engine], [gui])  # same prompt, tokens and answer text
    table, _ok = bench.report([engine], [gui])
    assert "decode tok/s" in table and "UI stall, longest ms" in table
    assert table.splitlines()[-1].startswith("verdict: ")


def test_the_scripted_answer_has_markdown_worth_rendering(model_dir: Path) -> None:
    tokenizer = HarmonyTokenizer.from_model_dir(model_dir)
    assert "```python" in bench.ANSWER and "|---|" in bench.ANSWER
    assert len(bench.script_ids(tokenizer)) > 200
