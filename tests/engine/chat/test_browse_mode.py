"""Per turn, attached documents are read whole or searched with the browser tool: the decision,
the message it composes, the system message it declares (checked against openai-harmony), and a
whole browse turn from a real extracted PDF to a cited answer."""

from __future__ import annotations

from pathlib import Path

import openai_harmony as oh
import pytest

from engine import ChatSession, HarmonyTokenizer, LoadedModel
from engine.chat import (
    AttachedDocument,
    CitationsResolved,
    ToolLoop,
    ToolStep,
    TurnFinished,
    browser_for,
    compose_turn_message,
    decide_document_mode,
    index_for_browsing,
    with_browser,
)
from engine.chat.prompt import build_prompt
from engine.documents.document import ExtractedDocument
from engine.documents.extract import extract
from engine.documents.prompt import attachment_block
from engine.library import Library
from engine.testing.scripted import ScriptedSampler
from engine.tokenizer import SpecialToken
from tests.engine.library.documents import filler, write_pdf

from .test_tool_loop import FACT, FACT_PAGE, answer, browser_call, report_pages


def doc(name: str, pages: int | None = None, kind: str = "pdf") -> ExtractedDocument:
    return ExtractedDocument(
        name=name,
        path=Path("/docs") / name,
        kind=kind,  # type: ignore[arg-type]
        text=f"text of {name}",
        pages=pages,
        page_offsets=(),
        sha256="0" * 64,
        size_bytes=100,
    )


def test_documents_that_fit_are_read_whole() -> None:
    attached = [AttachedDocument(doc("notes.pdf", 3), 4_200)]
    decision = decide_document_mode(attached, prompt_tokens=1_000, context_budget=120_000)
    assert decision.mode == "full_text"
    assert decision.note == "notes.pdf is read whole (4,200 tokens)."
    assert decision.fit is not None and decision.fit.fits
    message = compose_turn_message("Summarise it.", decision)
    assert message == f"{attachment_block(attached[0].document)}\n\nSummarise it."


def test_a_document_too_long_for_the_context_is_searched() -> None:
    attached = [AttachedDocument(doc("report.pdf", 1_000), 812_000)]
    decision = decide_document_mode(attached, prompt_tokens=0, context_budget=120_000)
    assert decision.mode == "browse"
    assert decision.note == (
        "report.pdf is too long to read whole (812,000 tokens): the model will search it."
    )
    message = compose_turn_message("What does chapter 3 say?", decision)
    assert message.startswith(
        "Attached (too long to include, searchable with the browser tool): "
        "report.pdf (pdf, 1,000 pages). Search them, open what you need, and cite the lines"
    )
    assert message.endswith("\n\nWhat does chapter 3 say?")
    assert "text of report.pdf" not in message  # the text itself is not in the message


def test_a_document_that_fits_alone_but_not_next_to_the_chat_is_searched() -> None:
    attached = [AttachedDocument(doc("a.md", kind="markdown"), 60_000)]
    decision = decide_document_mode(attached, prompt_tokens=70_000, context_budget=120_000)
    assert decision.mode == "browse"
    assert decision.note == (
        "a.md does not fit next to this conversation (60,000 tokens): the model will search it."
    )


def test_several_documents_are_decided_together() -> None:
    attached = [
        AttachedDocument(doc("a.pdf", 10), 50_000),
        AttachedDocument(doc("b.pdf", 20), 50_000),
        AttachedDocument(doc("c.txt", kind="text"), 30_000),
    ]
    decision = decide_document_mode(attached, prompt_tokens=0, context_budget=120_000)
    assert decision.mode == "browse" and decision.names == ("a.pdf", "b.pdf", "c.txt")
    assert decision.note == (
        "a.pdf, b.pdf and c.txt are too long to read whole (130,000 tokens together): "
        "the model will search them."
    )
    assert "a.pdf (pdf, 10 pages); b.pdf (pdf, 20 pages); c.txt (text)" in (
        compose_turn_message("", decision)
    )
    both = decide_document_mode(attached[:2], prompt_tokens=0, context_budget=120_000)
    assert both.mode == "full_text" and both.note == "2 documents are read whole (100,000 tokens)."


def test_the_user_can_ask_to_search_instead() -> None:
    attached = [AttachedDocument(doc("small.pdf", 1), 300)]
    decision = decide_document_mode(
        attached, prompt_tokens=0, context_budget=120_000, search_requested=True
    )
    assert decision.mode == "browse"
    assert decision.note == "The model will search small.pdf instead of reading them whole."
    library = decide_document_mode([], prompt_tokens=0, context_budget=100, search_requested=True)
    assert library.mode == "browse" and library.fit is None
    assert compose_turn_message("Where is the invoice?", library) == (
        "Search my document library with the browser tool to answer.\n\nWhere is the invoice?"
    )
    plain = decide_document_mode([], prompt_tokens=0, context_budget=100)
    assert (plain.mode, plain.note, compose_turn_message("Hi", plain)) == ("full_text", "", "Hi")


def test_the_system_message_declares_the_browser_as_harmony_renders_it(
    model: LoadedModel, real_tok: HarmonyTokenizer, tmp_path: Path
) -> None:
    with Library(tmp_path / "library.sqlite") as library:
        session = ChatSession(model, real_tok)
        before = session.prompt_ids(follow_up=True)
        session.set_system(with_browser(session.system, browser_for(library, [], real_tok)))
        ids = session.prompt_ids(follow_up=True)
    harmony = oh.load_harmony_encoding(oh.HarmonyEncodingName.HARMONY_GPT_OSS)
    reference = oh.ToolNamespaceConfig.browser()
    assert reference.description.endswith("sources=web (default: web)")
    ours = oh.ToolNamespaceConfig(
        name="browser",
        description=reference.description.replace("web", "local_documents"),
        tools=reference.tools,
    )
    content = oh.SystemContent.new().with_tools(ours)
    expected = harmony.render(oh.Message.from_role_and_content(oh.Role.SYSTEM, content))
    assert ids[: len(expected)] == expected, real_tok.decode(ids[: len(expected)])
    assert ids[len(expected)] == SpecialToken.START
    without = harmony.render(
        oh.Message.from_role_and_content(oh.Role.SYSTEM, oh.SystemContent.new())
    )
    assert before[: len(without)] == without and len(expected) > len(without)
    assert "## browser\n\n// Tool for browsing." in real_tok.decode(expected)


@pytest.fixture
def report(tmp_path: Path) -> Path:
    return write_pdf(tmp_path / "report.pdf", report_pages())


def test_a_long_attached_pdf_is_indexed_and_answered_through_the_browser(
    model: LoadedModel, real_tok: HarmonyTokenizer, tmp_path: Path, report: Path
) -> None:
    extracted = extract(report)
    assert extracted.pages == 30
    tokens = len(real_tok.encode_ordinary(attachment_block(extracted)))
    attached = [AttachedDocument(extracted, tokens)]
    decision = decide_document_mode(attached, prompt_tokens=500, context_budget=4_000)
    assert decision.mode == "browse" and tokens > 4_000
    assert decision.note == (
        f"report.pdf is too long to read whole ({tokens:,} tokens): the model will search it."
    )
    other = write_pdf(tmp_path / "other.pdf", [f"{filler(9, 50)} {FACT}"])
    with Library(tmp_path / "library.sqlite") as library:
        index_for_browsing(library, [extract(other)])  # in the library, not in this chat
        gone = ExtractedDocument(**{**vars(doc("gone.pdf", 1)), "path": tmp_path / "gone.pdf"})
        ids, failed = index_for_browsing(library, [extracted, gone])
        assert len(ids) == 1 and library.document(ids[0]).name == "report.pdf"  # type: ignore[union-attr]
        assert list(failed) == [(tmp_path / "gone.pdf").resolve()]
        assert "could not be found" in failed[(tmp_path / "gone.pdf").resolve()]

        script = [
            browser_call("search", '{"query": "Halvorsen turbine"}'),
            answer("In 1987 【0†L2-L3】."),
        ]
        sampler = ScriptedSampler(
            [t for part in script for t in real_tok.encode(part, allowed_special="all")]
        )
        session = ChatSession(model, real_tok, sampler=sampler)
        browser = browser_for(library, ids, real_tok, view_tokens=400)
        session.set_system(with_browser(session.system, browser))
        loop = ToolLoop(session, browser)
        events = list(loop.send(compose_turn_message("When was the turbine built?", decision)))
    finished = events[-1]
    assert isinstance(finished, TurnFinished) and finished.answer == "In 1987 【0†L2-L3】."
    (step,) = [e for e in events if isinstance(e, ToolStep)]
    assert step.summary == "searched: Halvorsen turbine (2 results)"  # pages 17 and 23
    assert loop.browser is not None
    results = loop.browser.pages[0].text
    assert "report.pdf, page 17" in results and "other.pdf" not in results  # not attached
    (cited,) = [e for e in events if isinstance(e, CitationsResolved)]
    (citation,) = cited.citations
    assert citation.target is not None
    assert (citation.target.path, citation.target.page) == (report.resolve(), FACT_PAGE)
    assert "Halvorsen" in citation.target.text
    prompt = real_tok.decode(build_prompt(real_tok, session.conversation()).ids)
    assert "<|start|>user<|message|>Attached (too long to include, searchable with the " in prompt
    assert "report.pdf (pdf, 30 pages)." in prompt
    assert "sources=local_documents" in prompt
    assert FACT not in prompt.split("<|start|>browser.search")[0]  # the text came by search
