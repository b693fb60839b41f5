"""The `make demo` model: a real tiny checkpoint whose chat replies are scripted by the decoder
the loader installs for a folder with the demo marker, and only for such a folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from engine import (
    ChatSession,
    HarmonyTokenizer,
    LoadedModel,
    ModelLoadError,
    TurnEvents,
    load_model,
)
from engine.chat.budget import ReasoningBudget
from engine.chat.document_mode import AttachedDocument, DocumentDecision, compose_turn_message
from engine.chat.events import ChannelDelta, PrefillProgress, ReasoningCut, TurnFinished
from engine.documents.extract import extract
from engine.documents.prompt import compose_user_message
from engine.generate import Decoder
from engine.harmony import Channel, ReasoningEffort, Role
from engine.testing.demo import (
    DEMO_LABEL,
    DEMO_MARKER,
    DemoDecoder,
    DemoPrompt,
    demo_reply,
    ensure_demo_model,
    main,
    split_user_message,
    write_demo_model,
)
from engine.testing.scripted import ScriptedSampler
from tests.conftest import CheckpointFactory
from tests.engine.chat.fixtures import chat_model_dir

QUESTION = "Why do rainbows appear?"


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_demo_model(tmp_path_factory.mktemp("demo") / "demo-model")


@pytest.fixture(scope="module")
def demo(demo_dir: Path) -> tuple[LoadedModel, HarmonyTokenizer]:
    return load_model(demo_dir), HarmonyTokenizer.from_model_dir(demo_dir)


def read_turn(turn: TurnEvents, answer_tokens: int = 0) -> tuple[str, str]:
    """(analysis, answer) of a turn, closed after `answer_tokens` answer deltas (0: when the
    answer starts), which keeps these tests to the tokens they need."""
    analysis = answer = ""
    seen = 0
    for event in turn:
        if isinstance(event, ChannelDelta) and event.channel == Channel.FINAL:
            if seen == answer_tokens:
                break
            answer += event.text
            seen += 1
        elif isinstance(event, ChannelDelta):
            analysis += event.text
    turn.close()
    return analysis, answer


def markdown_kinds(text: str) -> set[str]:
    return {t.type for t in MarkdownIt("commonmark").enable("table").parse(text)}


def test_a_demo_turn_answers_in_readable_markdown_parsed_from_harmony(
    demo: tuple[LoadedModel, HarmonyTokenizer],
) -> None:
    model, tok = demo
    assert model.is_demo
    session = ChatSession(model, tok, effort="low")
    events = list(session.send(QUESTION))

    finished = events[-1]
    assert isinstance(finished, TurnFinished) and finished.reason == "stop"
    answer = finished.answer
    assert answer.startswith("## Why do rainbows appear\n")
    assert markdown_kinds(answer) >= {"heading_open", "ordered_list_open", "fence", "table_open"}
    assert "$$\\bar{L}" in answer and "**demo model**, not gpt-oss" in answer
    assert "| rainbows | 8 | 3 |\n| appear | 6 | 3 |" in answer
    assert 'words = ["rainbows", "appear"]' in answer
    # The parsed history: one analysis message, then the final answer, as harmony has them.
    analysis, final = session.messages[-2:]
    assert (analysis.role, analysis.channel) == (Role.ASSISTANT, "analysis")
    assert analysis.text.startswith("The user asks about “Why do rainbows appear”.")
    assert (final.role, final.channel, final.text) == (Role.ASSISTANT, "final", answer)
    stats = finished.stats
    assert stats.answer_tokens > 100 and stats.decode_tokens_per_s > 0


def test_higher_effort_reasons_longer(demo: tuple[LoadedModel, HarmonyTokenizer]) -> None:
    model, tok = demo
    low, _ = read_turn(ChatSession(model, tok, effort="low").send(QUESTION))
    high, _ = read_turn(ChatSession(model, tok, effort="high").send(QUESTION))
    assert low.startswith("The user asks about “Why do rainbows appear”.")
    assert high.startswith(low)
    assert "Row 2: “appear” has 6 letters, 3 of them vowels." in high
    assert len(high) > 2 * len(low)
    medium = demo_reply(DemoPrompt(QUESTION, ReasoningEffort.MEDIUM))[0]
    assert len(low) < len(medium) < len(high)


def test_attached_documents_are_mentioned(
    demo: tuple[LoadedModel, HarmonyTokenizer], tmp_path: Path
) -> None:
    model, tok = demo
    notes = tmp_path / "storm notes.md"
    notes.write_text("# Storms\n\nRain and sun make rainbows.\n", encoding="utf-8")
    message = compose_user_message(QUESTION, [extract(notes)])
    analysis, answer = read_turn(ChatSession(model, tok, effort="low").send(message), 40)
    assert "They attached storm notes.md." in analysis
    assert "You attached **storm notes.md**." in answer


def test_regenerate_reads_the_question_from_the_cache(
    demo: tuple[LoadedModel, HarmonyTokenizer],
) -> None:
    """Regenerate feeds only the prompt's last token: the question lies in the cache already."""
    model, tok = demo
    session = ChatSession(model, tok, effort="low")
    read_turn(session.send("Explain tides"))
    fed: list[int] = []
    first = ""
    turn = session.regenerate()
    for event in turn:
        if isinstance(event, PrefillProgress):
            fed.append(event.total)
        if isinstance(event, ChannelDelta):
            first = event.text
            break
    rest, _ = read_turn(turn)
    assert fed == [1]
    assert (first + rest).startswith("The user asks about “Explain tides”.")


def test_a_reasoning_cut_jumps_to_the_answer(demo: tuple[LoadedModel, HarmonyTokenizer]) -> None:
    """The session ends the analysis itself (budget, loop, Finish now): the answer follows."""
    model, tok = demo
    session = ChatSession(model, tok, effort="low", budget=ReasoningBudget(low=6))
    turn = session.send("Name a prime")
    cuts = []
    for event in turn:
        if isinstance(event, ReasoningCut):
            cuts.append(event.reason)
            break
    analysis, answer = read_turn(turn, 12)
    assert cuts == ["budget"] and analysis == ""
    expected = demo_reply(DemoPrompt("Name a prime", ReasoningEffort.LOW))[1]
    assert answer.startswith("## Name a prime\n") and expected.startswith(answer)


def test_a_folder_without_the_marker_samples_with_the_given_sampler(
    make_checkpoint: CheckpointFactory,
) -> None:
    model = load_model(chat_model_dir(make_checkpoint))
    assert not model.is_demo
    decoder = model.decoder(model.new_cache(), ScriptedSampler([7, 42]))
    assert type(decoder) is Decoder
    decoder.feed([1, 2, 3], sample=True)
    decoder.push(decoder.take().id)
    assert decoder.take().id == 42  # the session's own sampler, not a demo script


def test_the_demo_decoder_is_installed_only_with_a_valid_marker(
    demo: tuple[LoadedModel, HarmonyTokenizer], demo_dir: Path, tmp_path: Path
) -> None:
    model, _ = demo
    assert isinstance(model.decoder(model.new_cache(), ScriptedSampler()), DemoDecoder)
    copy = tmp_path / "copy"
    copy.mkdir()
    for item in demo_dir.iterdir():
        os.symlink(item, copy / item.name)
    (copy / DEMO_MARKER).unlink()
    (copy / DEMO_MARKER).write_text('{"format": 99}', encoding="utf-8")
    with pytest.raises(ModelLoadError, match="not one this version wrote"):
        load_model(copy)
    (copy / DEMO_MARKER).unlink()
    assert not load_model(copy).is_demo


def test_documents_are_found_in_either_kind_of_user_message(tmp_path: Path) -> None:
    report = tmp_path / "report.txt"
    report.write_text("Quarterly numbers.\n", encoding="utf-8")
    doc = extract(report)
    inline = compose_user_message("Summarise it", [doc])
    assert split_user_message(inline) == ("Summarise it", ("report.txt",))
    attached = (AttachedDocument(doc, 5), AttachedDocument(doc, 5))
    browse = compose_turn_message("What changed?", DocumentDecision("browse", "", None, attached))
    assert split_user_message(browse) == ("What changed?", ("report.txt", "report.txt"))
    assert split_user_message("Plain question") == ("Plain question", ())


def test_make_demo_writes_once_and_never_over_other_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "demo"
    main([str(folder)])
    out = capsys.readouterr()
    assert out.out.strip() == str(folder) and DEMO_LABEL in out.err
    marker = json.loads((folder / DEMO_MARKER).read_text(encoding="utf-8"))
    assert marker["format"] == 1
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    main([str(folder)])
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    tok = HarmonyTokenizer.from_model_dir(folder)
    assert len(tok.encode_ordinary(" letters")) == 1  # the demo's words stream whole

    other = tmp_path / "models"
    other.mkdir()
    (other / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ModelLoadError, match="not the demo model"):
        ensure_demo_model(other)
    with pytest.raises(SystemExit, match="not the demo model"):
        main([str(other)])
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]
