"""`oss-desk-generate` in process: ids, a harmony chat prompt, and plain text (--raw)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import HarmonyTokenizer, Message
from engine.cli.generate import main
from engine.testing.scripted import ScriptedSampler, reply_ids
from engine.tokenizer import SpecialToken


def scripted(monkeypatch: pytest.MonkeyPatch, tokens: list[int]) -> ScriptedSampler:
    """Makes the model sample `tokens` (LoadedModel.generate builds its sampler from settings)."""
    sampler = ScriptedSampler(tokens)
    monkeypatch.setattr("engine.inference.make_sampler", lambda _settings: sampler)
    return sampler


def test_prompt_ids_prints_ids_and_stats(
    model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--model", str(model_dir), "--prompt-ids", "1,2,3", "--max-tokens", "4"]
    assert main([*args, "--temperature", "0", "--dtype", "float32"]) == 0
    out, err = capsys.readouterr()
    ids = [int(t) for t in out.strip().rstrip(",").split(",")]
    assert len(ids) == 4
    assert "[length] prompt 3 tokens, generated 4" in err


def test_prompt_renders_harmony_and_streams_channels(
    model_dir: Path,
    tok: HarmonyTokenizer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    script = reply_ids(
        tok,
        [Message.assistant("The user greets.", channel="analysis"), Message.assistant("Hello!")],
    )
    scripted(monkeypatch, script)
    args = ["--model", str(model_dir), "--prompt", "Hi", "--reasoning", "low"]
    assert main([*args, "--dtype", "float32"]) == 0
    out, err = capsys.readouterr()
    assert out == "[reasoning] The user greets.\n[answer] Hello!\n"  # not a tty: labels
    assert "[stop] prompt " in err and f"generated {len(script)}" in err


def test_raw_prompt_continues_plain_text(
    model_dir: Path,
    tok: HarmonyTokenizer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # specials print by name; ids the tokenizer does not know print as nothing
    more = tok.encode_ordinary(" and more")
    scripted(monkeypatch, [*more, SpecialToken.END, 150_000])
    n = str(len(more) + 2)
    args = ["--model", str(model_dir), "--prompt", "Some <|end|>", "--raw", "--max-tokens", n]
    assert main([*args, "--dtype", "float32"]) == 0
    out, err = capsys.readouterr()
    assert out == " and more<|end|>\n"
    prompt = tok.encode("Some <|end|>")  # special-token text stays plain text
    assert SpecialToken.END not in prompt
    assert f"[length] prompt {len(prompt)} tokens, generated {n}" in err
