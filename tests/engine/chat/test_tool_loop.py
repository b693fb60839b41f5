"""The browser tool loop through a real ChatSession: the tiny synthetic checkpoint computes, the
scripted sampler writes gpt-oss's calls in the real vocabulary, and the browser serves a real
30-page fpdf2 PDF from a real on-disk SQLite library."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from engine import ChatSession, HarmonyTokenizer, LoadedModel, SystemContent
from engine.browser import LOCAL_SOURCE, BrowserSession
from engine.chat import (
    CitationsResolved,
    LoopEvent,
    PrefillProgress,
    ReasoningCut,
    ToolCallRequested,
    ToolLoop,
    ToolStep,
    TurnFinished,
    browser_for,
    with_browser,
)
from engine.chat.prompt import build_prompt
from engine.chat.tool_loop import ANSWER_NOW_TOKENS, DEFAULT_MAX_CALLS, answer_now_text
from engine.harmony import Role
from engine.library import Library, index_files, wrap_lines
from engine.testing.scripted import ScriptedSampler
from tests.engine.library.documents import filler, write_pdf

PAGES = 30
FACT_PAGE = 17
FACT = "The Halvorsen turbine was commissioned in 1987 at the Kestrel Bay plant."
SOURCE_PAGE = 23
SOURCE = "Turbine spare parts are listed in the Halvorsen maintenance annex."
VIEW_TOKENS = 400  # small views keep the prompts (and the test) short


def report_pages() -> list[str]:
    pages = [filler(n, 120) for n in range(1, PAGES + 1)]
    pages[FACT_PAGE - 1] = f"{filler(101, 60)} {FACT} {filler(102, 40)}"
    pages[SOURCE_PAGE - 1] = f"{filler(103, 50)} {SOURCE} {filler(104, 30)}"
    return pages


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(report.pdf, library database) indexed once; tests open their own connection."""
    folder = tmp_path_factory.mktemp("browse")
    pdf = write_pdf(folder / "report.pdf", report_pages())
    db = folder / "library.sqlite"
    with Library(db) as library:
        report = index_files(library, [pdf])
        assert report.indexed == (pdf.resolve(),) and not report.failed
    return pdf, db


@pytest.fixture
def library(indexed: tuple[Path, Path]) -> Iterator[Library]:
    with Library(indexed[1]) as lib:
        yield lib


def page_lines(library: Library, number: int) -> list[str]:
    (doc,) = library.documents()
    page = library.page(doc.id, number)
    assert page is not None
    return wrap_lines(page.text)


def line_of(lines: list[str], words: str) -> int:
    return next(i for i, line in enumerate(lines) if words in line)


def browser_call(function: str, arguments: str, channel: str = "analysis") -> str:
    return f"<|channel|>{channel} to=browser.{function} code<|message|>{arguments}<|call|>"


def answer(text: str, thinking: str = "I have what I need.") -> str:
    return (
        f"<|channel|>analysis<|message|>{thinking}<|end|>"
        f"<|start|>assistant<|channel|>final<|message|>{text}<|return|>"
    )


def browsing(
    model: LoadedModel,
    tok: HarmonyTokenizer,
    library: Library,
    script: Iterable[str],
    *,
    max_calls: int = DEFAULT_MAX_CALLS,
    answer_now_tokens: int = ANSWER_NOW_TOKENS,
) -> tuple[ToolLoop, ScriptedSampler]:
    ids = [t for part in script for t in tok.encode(part, allowed_special="all")]
    sampler = ScriptedSampler(ids)
    browser = browser_for(library, None, tok, view_tokens=VIEW_TOKENS)
    session = ChatSession(model, tok, sampler=sampler)
    session.set_system(with_browser(session.system, browser))
    loop = ToolLoop(session, browser, max_calls=max_calls, answer_now_tokens=answer_now_tokens)
    return loop, sampler


def run_turn(loop: ToolLoop, text: str) -> tuple[list[LoopEvent], TurnFinished]:
    events = list(loop.send(text))
    finished = events[-1]
    assert isinstance(finished, TurnFinished)
    assert sum(isinstance(e, TurnFinished) for e in events) == 1
    return events, finished


def steps(events: Iterable[LoopEvent]) -> list[ToolStep]:
    return [e for e in events if isinstance(e, ToolStep)]


def tool_messages(session: ChatSession) -> list[tuple[str, str | None, str]]:
    return [
        (m.author.name or "", m.channel, m.text) for m in session.messages if m.role is Role.TOOL
    ]


def test_search_open_find_and_a_cited_answer(
    model: LoadedModel, real_tok: HarmonyTokenizer, library: Library, indexed: tuple[Path, Path]
) -> None:
    lines = page_lines(library, FACT_PAGE)
    fact_line = line_of(lines, "Halvorsen")
    reply = (
        f"It was commissioned in 1987 【1†L{fact_line}-L{fact_line + 1}】, as the find shows "
        "【2†L1-L2】; the annex 【7†L3】 is not something I opened."
    )
    loop, sampler = browsing(
        model,
        real_tok,
        library,
        [
            "<|channel|>analysis<|message|>Search the report.<|end|><|start|>assistant",
            browser_call("search", '{"query": "Halvorsen turbine commissioned"}'),
            browser_call("open", '{"id": 0}'),
            browser_call("find", '{"pattern": "commissioned"}'),
            answer(reply),
        ],
    )
    events, finished = run_turn(loop, "When was the Halvorsen turbine commissioned?")
    assert finished.reason == "stop" and finished.answer == reply
    assert sampler.remaining == 0

    search, opened, found = steps(events)
    assert (search.kind, search.ok, search.number, search.cursor) == ("search", True, 1, 0)
    assert search.summary.startswith("searched: Halvorsen turbine commissioned (")
    assert "result" in search.summary
    assert loop.browser is not None
    page_1 = loop.browser.pages[0]
    assert f"report.pdf, page {FACT_PAGE}" in page_1.text.split("\n")[2]  # result 0 is the page
    assert opened.ok and opened.cursor == 1
    assert opened.summary.startswith(f"opened report.pdf p. {FACT_PAGE}, lines ")
    assert found.ok and found.summary == (
        f"found 'commissioned' in report.pdf p. {FACT_PAGE}: 1 match"
    )

    # Each result went back to the model as harmony expects: from browser.<fn>, to the assistant,
    # on the call's channel (the reference chat loop copies the call's channel).
    results = tool_messages(loop.session)
    assert [(name, channel) for name, channel, _ in results] == [
        ("browser.search", "analysis"),
        ("browser.open", "analysis"),
        ("browser.find", "analysis"),
    ]
    assert results[1][2].startswith(f"[1] report.pdf, page {FACT_PAGE} (file://")
    assert f"L{fact_line}: " in results[1][2] and "Halvorsen" in results[1][2]
    assert results[2][2].startswith("[2] Find results for text: `commissioned`")
    rendered = real_tok.decode(build_prompt(real_tok, loop.session.conversation()).ids)
    assert "<|start|>browser.open to=assistant<|channel|>analysis<|message|>[1] report" in rendered

    (cited,) = [e for e in events if isinstance(e, CitationsResolved)]
    assert events.index(cited) == len(events) - 2  # just before TurnFinished
    first, via_find, nowhere = cited.citations
    assert first.target is not None and via_find.target is not None
    assert first.target.path == indexed[0].resolve() and first.target.page == FACT_PAGE
    assert (first.target.first_line, first.target.last_line) == (fact_line, fact_line + 1)
    assert "Halvorsen" in first.target.text
    # The find result's lines lead back to the matched lines of the page itself.
    assert via_find.target.page == FACT_PAGE and "commissioned" in via_find.target.text
    assert nowhere.target is None and cited.dangling == (nowhere,)


@pytest.mark.parametrize(
    ("call", "model_reads", "user_reads"),
    [
        (
            browser_call("search", '{"query": "Halvorsen'),
            '{"error": "Invalid function arguments"}',
            "browser.search was called with malformed arguments",
        ),
        (
            browser_call("search", '["Halvorsen"]'),
            '{"error": "Invalid function arguments"}',
            "browser.search was called with malformed arguments",
        ),
        (
            browser_call("serch", '{"query": "Halvorsen"}'),
            '{"error": "Unknown function: serch"}',
            "not run: the browser has no function 'browser.serch'",
        ),
        (
            browser_call("open", '{"id": 3}'),
            "No pages to access!",
            "could not open: No pages to access!",
        ),
        (
            browser_call("open", '{"id": "file:///nowhere/secret.pdf#page=2"}'),
            "Error fetching URL `file:///nowhere/secret.pdf#page=2`: secret.pdf is not among "
            "the documents available",
            "could not open: secret.pdf is not among the documents available",
        ),
        (
            browser_call("open", '{"id": "https://example.com/"}'),
            "Error fetching URL `https://example.com/`: only the user's documents",
            "could not open: only the user's documents",
        ),
    ],
)
def test_a_call_that_cannot_run_gives_the_model_the_error_and_the_user_a_note(
    model: LoadedModel,
    real_tok: HarmonyTokenizer,
    library: Library,
    call: str,
    model_reads: str,
    user_reads: str,
) -> None:
    loop, sampler = browsing(model, real_tok, library, [call, answer("I could not read it.")])
    events, finished = run_turn(loop, "When was the turbine commissioned?")
    assert finished.reason == "stop" and finished.answer == "I could not read it."
    ((_, _, result),) = tool_messages(loop.session)
    assert result.startswith(model_reads)
    (step,) = steps(events)
    assert not step.ok and step.summary.startswith(user_reads)
    assert sampler.remaining == 0


def test_an_unknown_link_id_after_a_search(
    model: LoadedModel, real_tok: HarmonyTokenizer, library: Library
) -> None:
    script = [
        browser_call("search", '{"query": "Halvorsen"}'),
        browser_call("open", '{"id": 42}'),
        answer("Only the search worked."),
    ]
    loop, _ = browsing(model, real_tok, library, script)
    events, finished = run_turn(loop, "Open result 42.")
    assert finished.answer == "Only the search worked."
    assert tool_messages(loop.session)[1][2] == "Invalid link id `42`."
    assert [s.ok for s in steps(events)] == [True, False]
    assert steps(events)[1].summary == "could not open: Invalid link id `42`."


def test_an_empty_library_is_a_tool_error(
    model: LoadedModel, real_tok: HarmonyTokenizer, tmp_path: Path
) -> None:
    with Library(tmp_path / "empty.sqlite") as empty:
        script = [browser_call("search", '{"query": "turbine"}'), answer("Nothing to search.")]
        loop, _ = browsing(model, real_tok, empty, script)
        events, finished = run_turn(loop, "Search my files.")
    assert finished.answer == "Nothing to search."
    (step,) = steps(events)
    assert step.summary == (
        "search for 'turbine' failed: the document library is empty: the user has not added "
        "any documents"
    )
    assert tool_messages(loop.session)[0][2].startswith("Error during search for `turbine`: ")


def test_a_document_deleted_from_disk_cannot_be_opened_or_cited(
    model: LoadedModel, real_tok: HarmonyTokenizer, indexed: tuple[Path, Path], tmp_path: Path
) -> None:
    pdf = shutil.copy(indexed[0], tmp_path / "gone.pdf")
    with Library(tmp_path / "library.sqlite") as library:
        index_files(library, [pdf])
        script = [
            browser_call("search", '{"query": "Halvorsen turbine"}'),
            browser_call("open", '{"id": 0}'),
            answer("It was deleted 【0†L2】."),
        ]
        loop, sampler = browsing(model, real_tok, library, script)
        events = []
        for event in loop.send("When was the turbine commissioned?"):
            events.append(event)
            if isinstance(event, ToolStep) and event.kind == "search":
                Path(pdf).unlink()  # deleted while the model reads the search results
    assert sampler.remaining == 0
    search, opened = (m[2] for m in tool_messages(loop.session))
    assert "gone.pdf, page 17" in search
    assert opened.endswith(
        "gone.pdf was deleted or moved after it was indexed, so it cannot be opened"
    )
    assert [s.summary for s in steps(events)][1] == (
        "could not open: gone.pdf was deleted or moved after it was indexed, so it cannot be opened"
    )
    (cited,) = [e for e in events if isinstance(e, CitationsResolved)]
    assert [c.target for c in cited.citations] == [None]  # shown as pointing nowhere
    assert isinstance(events[-1], TurnFinished) and events[-1].answer == "It was deleted 【0†L2】."


def test_the_call_cap_asks_for_an_answer_and_the_budget_forces_it(
    model: LoadedModel, real_tok: HarmonyTokenizer, library: Library
) -> None:
    header = real_tok.encode("<|channel|>analysis<|message|>", allowed_special="all")
    thinking = " maybe one more search would help" * 20
    script = [
        browser_call("search", '{"query": "Halvorsen"}'),
        browser_call("search", '{"query": "Kestrel Bay"}'),
        browser_call("search", '{"query": "maintenance annex"}'),
    ]
    loop, sampler = browsing(
        model, real_tok, library, script, max_calls=2, answer_now_tokens=len(header) + 5
    )
    thinking_ids = real_tok.encode(thinking)
    assert len(thinking_ids) > 5
    sampler.extend([*header, *thinking_ids[:5]])
    sampler.extend(real_tok.encode("In 1987.<|return|>", allowed_special="all"))
    budget = loop.session.budget
    events, finished = run_turn(loop, "When?")
    assert finished.reason == "stop" and finished.answer == "In 1987."
    assert [e for e in events if isinstance(e, ReasoningCut)] == [
        ReasoningCut("budget", len(header) + 5)
    ]
    first, second, capped = steps(events)
    assert first.ok and second.ok and not capped.ok
    assert (capped.kind, capped.number) == ("limit", 3)
    assert capped.summary.startswith("not run: 2 tool calls is the limit")
    assert tool_messages(loop.session)[2][2] == answer_now_text(2)
    assert loop.browser is not None and len(loop.browser.pages) == 2  # the third never ran
    assert loop.session.budget == budget  # the tight budget held for that one run only


def test_a_model_that_keeps_calling_past_the_cap_is_stopped(
    model: LoadedModel, real_tok: HarmonyTokenizer, library: Library
) -> None:
    script = [browser_call("search", json.dumps({"query": f"turbine {n}"})) for n in range(3)]
    loop, sampler = browsing(model, real_tok, library, script, max_calls=1)
    events, finished = run_turn(loop, "When?")
    assert finished.reason == "tool_call" and sampler.remaining == 0
    assert [s.kind for s in steps(events)] == ["search", "limit", "limit"]
    assert steps(events)[-1].summary.startswith("stopped: the model kept calling browser.search")
    assert isinstance(events[-2], ToolStep)
    assert [e.arguments for e in events if isinstance(e, ToolCallRequested)][-1] == {
        "query": "turbine 2"
    }
    assert len(tool_messages(loop.session)) == 2
    # The session is idle again: the next message starts a new turn.
    assert loop.session.pending_tool_call is not None


def test_stop_during_the_loop_ends_the_turn_cleanly(
    model: LoadedModel, real_tok: HarmonyTokenizer, library: Library
) -> None:
    script = [browser_call("search", '{"query": "Halvorsen"}'), answer("Never written.")]
    loop, sampler = browsing(model, real_tok, library, script)
    cancel = threading.Event()
    events = []
    for event in loop.send("When?", cancel):
        events.append(event)
        if isinstance(event, ToolStep):
            cancel.set()  # the user pressed Stop while the search ran
    finished = events[-1]
    assert isinstance(finished, TurnFinished) and finished.reason == "cancel"
    assert len(tool_messages(loop.session)) == 1  # the result is kept for the next turn
    assert sampler.remaining == len(
        real_tok.encode(answer("Never written."), allowed_special="all")
    )
    # Closing the loop's iterator half-way leaves the session idle too.
    sampler.discard_remaining()
    sampler.extend(real_tok.encode(script[0], allowed_special="all"))
    partial = loop.send("Again?")
    assert isinstance(next(partial), PrefillProgress)
    partial.close()
    loop.session.reset()  # would raise if a turn were still running


def test_a_call_to_no_tool_is_answered_and_a_function_call_is_left_to_the_app(
    model: LoadedModel, real_tok: HarmonyTokenizer, library: Library
) -> None:
    script = [
        "<|channel|>commentary to=python<|message|>print(1)<|call|>",
        "<|channel|>commentary to=functions.lookup <|constrain|>json<|message|>{}<|call|>",
    ]
    loop, _ = browsing(model, real_tok, library, script)
    events, finished = run_turn(loop, "Run it.")
    assert finished.reason == "tool_call"
    (step,) = steps(events)
    assert step.kind == "other" and step.summary.startswith("not run: The message to `python`")
    assert loop.session.pending_tool_call is not None
    assert loop.session.pending_tool_call.recipient == "functions.lookup"


def test_the_browser_namespace_is_added_once(real_tok: HarmonyTokenizer, library: Library) -> None:
    browser = BrowserSession(browser_for(library, None, real_tok).backend, real_tok)
    system = with_browser(SystemContent(), browser)
    assert [ns.name for ns in system.tools] == ["browser"]
    assert with_browser(system, browser) is system
    assert system.tools[0].description is not None
    assert f"sources={LOCAL_SOURCE}" in system.tools[0].description
