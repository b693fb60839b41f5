"""The browser tool for a chat whose answers come from a server: the browser's functions offered
as function tools, each call run here on a real BrowserSession over a real indexed PDF, and the
answer's citations resolved to it. Against OSS Desk's own server on loopback (the real engine on
the tiny model with scripted tokens, both APIs) and against fake Chat Completions servers that
stream tool calls as vLLM (`reasoning`) and llama.cpp (`reasoning_content`) do."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from pytestqt.qtbot import QtBot
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from app.attachments import AttachmentTray
from app.document_library import DocumentLibrary
from app.engine_requests import Loader
from app.remote_backend import RemoteModelInfo, connect
from app.remote_client import RemoteError, ServerConfig, probe
from app.remote_session import EstimatingTokenizer, RemoteSession
from app.remote_tools import function_tools
from engine import (
    AttachedDocument,
    BrowserSession,
    ChannelDelta,
    CitationsResolved,
    DocumentDecision,
    Library,
    ToolStep,
    TurnFinished,
    answer_now_text,
    browser_for,
    extract,
    index_for_browsing,
)
from engine.harmony.builtin_tools import browser_namespace
from tests.app.conftest import MakeWindow
from tests.app.test_chat_flow import last_answer, send
from tests.app.test_documents import drop, wait_read
from tests.engine.library.documents import filler, write_pdf
from tests.server.conftest import KEY, MODEL_ID, Served

# The offscreen platform's notices when a window is shown and raised; nothing of ours.
pytestmark = pytest.mark.qt_log_ignore(
    "This plugin does not support propagateSizeHints", "This plugin does not support raise"
)

PAGES = 12
FACT_PAGE = 9
FACT = "The Halvorsen turbine was commissioned in 1987 at the Kestrel Bay plant."
QUESTION = "When was the Halvorsen turbine commissioned?"
SEARCH = '{"query": "Halvorsen turbine commissioned"}'


@dataclass
class Report:
    pdf: Path
    library: Library
    ids: list[int]

    def browser(self) -> BrowserSession:
        return browser_for(self.library, self.ids, EstimatingTokenizer())


@pytest.fixture
def report(tmp_path: Path) -> Iterator[Report]:
    pages = [filler(n, 120) for n in range(1, PAGES + 1)]
    pages[FACT_PAGE - 1] = f"{filler(101, 60)} {FACT} {filler(102, 40)}"
    pdf = write_pdf(tmp_path / "report.pdf", pages)
    library = Library(tmp_path / "library.sqlite3")
    ids, failed = index_for_browsing(library, [extract(pdf)])
    assert failed == {} and len(ids) == 1
    yield Report(pdf, library, ids)
    library.close()


def split(events: list[Any]) -> tuple[str, str, list[ToolStep], list[CitationsResolved]]:
    analysis = "".join(
        e.text for e in events if isinstance(e, ChannelDelta) and e.channel != "final"
    )
    answer = "".join(e.text for e in events if isinstance(e, ChannelDelta) and e.channel == "final")
    steps = [e for e in events if isinstance(e, ToolStep)]
    cited = [e for e in events if isinstance(e, CitationsResolved)]
    return analysis, answer, steps, cited


@pytest.mark.parametrize("responses", [True, False], ids=["responses", "chat"])
def test_a_remote_turn_searches_opens_and_cites_the_document_through_function_calls(
    own_server: Served, report: Report, responses: bool
) -> None:
    own_server.reply(analysis="Search the report.", call=("browser_search", SEARCH))
    own_server.reply(analysis="Open the first result.", call=("browser_open", '{"id": 0}'))
    answer = "It was commissioned in 1987 【1†L1-L2】."
    own_server.reply(answer, analysis="I have it.")
    config = ServerConfig(own_server.base_url, KEY, MODEL_ID)
    session = RemoteSession(config, responses=responses, reasoning_field="reasoning")
    session.use_browser(report.browser())
    events = list(session.send(QUESTION))

    analysis, streamed, steps, cited = split(events)
    assert analysis == "Search the report.Open the first result.I have it."
    assert streamed == answer
    assert [(s.kind, s.recipient, s.number, s.ok) for s in steps] == [
        ("search", "browser.search", 1, True),
        ("open", "browser.open", 2, True),
    ]
    assert steps[0].summary.startswith("searched: Halvorsen turbine commissioned (")
    assert steps[1].summary.startswith(f"opened report.pdf p. {FACT_PAGE}, lines ")
    # The answer's citation resolves to the page the model opened, just before the turn ends.
    assert isinstance(events[-2], CitationsResolved) and cited == [events[-2]]
    (citation,) = cited[0].citations
    assert citation.target is not None and citation.target.path == report.pdf.resolve()
    assert citation.target.page == FACT_PAGE
    finished = events[-1]
    assert isinstance(finished, TurnFinished) and finished.reason == "stop"
    assert finished.answer == answer
    # The model read the functions, the browser's citation rules, and the page it opened (as the
    # function's output), with its own reasoning before each call kept in the turn.
    read = own_server.prompt_text()
    assert "browser_search" in read and "Cite information from the tool" in read
    assert "turbine was commissioned in 1987 at" in read and "the Kestrel Bay plant." in read
    assert read.count("Search the report.") == 1 and read.count("Open the first result.") == 1
    assert [m.role for m in session.messages] == ["user", "assistant", "assistant"]


def test_the_functions_carry_the_builtin_browser_descriptions_and_schemas(report: Report) -> None:
    builtin = {t.name: t for t in browser_namespace().tools}
    flat = function_tools(report.browser(), responses=True)
    nested = function_tools(report.browser(), responses=False)
    assert [t["name"] for t in flat] == ["browser_search", "browser_open", "browser_find"]
    for tool, wrapped in zip(flat, nested, strict=True):
        assert wrapped == {
            "type": "function",
            "function": {k: tool[k] for k in tool if k != "type"},
        }
        origin = builtin[tool["name"].removeprefix("browser_")]
        assert tool["description"] == origin.description
        assert tool["parameters"] == origin.parameters


# -- fake Chat Completions servers that stream tool calls ---------------------------------------


@dataclass
class ToolFake:
    """Replays scripted turns: each a reasoning text and either a browser call (name, JSON
    arguments, streamed in pieces) or an answer. `tools` False: refuses any request with tools."""

    flavour: str  # "vllm" (`reasoning`) or "llamacpp" (`reasoning_content`)
    turns: list[tuple[str, tuple[str, str] | str]] = field(default_factory=list)
    tools: bool = True
    probe_reasoning: bool = True  # False: the probe's generation shows no reasoning field
    stall_s: float = 0.0  # silence after the reasoning
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    @property
    def config(self) -> ServerConfig:
        return ServerConfig(self.url + "/v1", "t", "openai/gpt-oss-20b", read_timeout_s=5.0)

    @property
    def field_name(self) -> str:
        return "reasoning_content" if self.flavour == "llamacpp" else "reasoning"


def tool_app(fake: ToolFake) -> Starlette:
    async def models(request: Request) -> Response:
        data = [{"id": "openai/gpt-oss-20b", "object": "model", "created": 0, "owned_by": "x"}]
        return JSONResponse({"object": "list", "data": data})

    async def chat(request: Request) -> Response:
        body = await request.json()
        if body.get("tools") and not fake.tools:
            error = {"message": "tools are not supported; start the server with --jinja"}
            return JSONResponse({"error": error}, status_code=400)
        fake.requests.append(body)
        n = len(fake.requests)
        probing = "max_tokens" in body  # the probe's small generation: not a scripted turn
        reasoning, then = fake.turns.pop(0) if fake.turns and not probing else ("Hm.", "Hi.")

        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            head = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m"}
            return "data: " + json.dumps(head | {"choices": [choice]}) + "\n\n"

        async def events() -> AsyncIterator[str]:
            yield chunk({"role": "assistant", "content": ""})
            for word in reasoning.split(" ") if fake.probe_reasoning or not probing else ():
                yield chunk({fake.field_name: word + " "})
            await asyncio.sleep(0 if probing else fake.stall_s)
            if isinstance(then, str):
                yield chunk({"content": then})
                yield chunk({}, "stop")
            else:
                name, arguments = then
                opened = {"index": 0, "id": f"call_{n}", "type": "function"}
                yield chunk(
                    {"tool_calls": [opened | {"function": {"name": name, "arguments": ""}}]}
                )
                middle = len(arguments) // 2
                for piece in (arguments[:middle], arguments[middle:]):
                    yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                yield chunk({}, "tool_calls")
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def responses(request: Request) -> Response:
        return JSONResponse({"error": "not found"}, status_code=404)

    return Starlette(
        routes=[
            Route("/v1/models", models),
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/responses", responses, methods=["POST"]),
        ]
    )


def serve_app(app: Starlette) -> Iterator[str]:
    """Serves `app` on a loopback port; yields its URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(400):
        if server.started:
            break
        threading.Event().wait(0.025)
    assert server.started
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)


def run_tool_fake(fake: ToolFake) -> Iterator[ToolFake]:
    for url in serve_app(tool_app(fake)):
        fake.url = url
        yield fake


@pytest.mark.parametrize("flavour", ["vllm", "llamacpp"])
def test_streamed_tool_call_deltas_run_the_browser_and_go_back_with_the_reasoning(
    report: Report, flavour: str
) -> None:
    turns: list[tuple[str, tuple[str, str] | str]] = [
        ("Search it.", ("browser_search", SEARCH)),
        ("Now answer.", "In 1987 【0†L1】."),
    ]
    for fake in run_tool_fake(ToolFake(flavour, turns)):
        found = probe(fake.config)
        assert (found.responses, found.tools, found.reasoning_field) == (
            False,
            True,
            fake.field_name,
        )
        session = RemoteSession.from_probe(fake.config, found)
        session.use_browser(report.browser())
        events = list(session.send(QUESTION))
        _, answer, steps, cited = split(events)
        assert answer == "In 1987 【0†L1】."
        assert [s.summary.split(" (")[0] for s in steps] == [
            "searched: Halvorsen turbine commissioned"
        ]
        assert [c.citation.cursor for c in cited[0].citations] == [0]
        first, second = fake.requests[-2:]
        offered = [t["function"]["name"] for t in first["tools"]]
        assert offered == ["browser_search", "browser_open", "browser_find"]
        assert "【{cursor}†L{line_start}(-L{line_end})?】" in first["messages"][0]["content"]
        call, output = second["messages"][-2:]
        assert call == {
            "role": "assistant",
            "content": "",
            fake.field_name: "Search it. ",
            "tool_calls": [
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "browser_search", "arguments": SEARCH},
                }
            ],
        }
        assert output["role"] == "tool" and output["tool_call_id"] == "call_2"
        assert "report.pdf" in output["content"] and "Halvorsen" in output["content"]
        # The browser was for that turn; the next one offers no tools.
        list(session.send("Thanks."))
        assert "tools" not in fake.requests[-1]


def test_the_call_limit_asks_for_the_answer_then_stops_a_model_that_keeps_calling(
    report: Report,
) -> None:
    turns: list[tuple[str, tuple[str, str] | str]] = [
        ("Search again.", ("browser_search", SEARCH)) for _ in range(4)
    ]
    for fake in run_tool_fake(ToolFake("vllm", turns)):
        session = RemoteSession(
            fake.config, responses=False, reasoning_field="reasoning", max_calls=2
        )
        session.use_browser(report.browser())
        events = list(session.send(QUESTION))
        _, _, steps, cited = split(events)
        assert [(s.kind, s.number, s.ok) for s in steps] == [
            ("search", 1, True),
            ("search", 2, True),
            ("limit", 3, False),
            ("limit", 4, False),
        ]
        assert steps[2].summary.startswith("not run: 2 tool calls is the limit")
        assert steps[3].summary.startswith("stopped: the model kept calling browser.search")
        assert len(fake.requests) == 4  # the fourth call is not answered
        told = fake.requests[3]["messages"][-1]
        assert told == {"role": "tool", "tool_call_id": "call_3", "content": answer_now_text(2)}
        finished = events[-1]
        assert isinstance(finished, TurnFinished) and finished.reason == "tool_call"
        assert cited == []


def test_a_server_without_tools_keeps_the_text_path_and_says_what_to_do_with_long_documents(
    report: Report, tmp_path: Path
) -> None:
    for fake in run_tool_fake(ToolFake("vllm", tools=False)):
        found = probe(fake.config)
        assert (found.tools, found.reasoning_field) == (False, "reasoning")
        session = RemoteSession.from_probe(fake.config, found)
        documents = DocumentLibrary(tmp_path / "library.sqlite3")
        attached = (AttachedDocument(extract(report.pdf), 200_000),)
        decision = DocumentDecision("browse", "too long", None, attached)
        with pytest.raises(RemoteError) as caught:
            documents.tool_loop(session, decision, EstimatingTokenizer(), threading.Event())
        assert str(caught.value).startswith(
            "Attach a shorter part of report.pdf: it is too long to send to 127.0.0.1 whole,"
        )
        # Documents that fit go as text, without tools, as before.
        assert documents.tool_loop(session, None, EstimatingTokenizer(), threading.Event()) is None
        list(session.send("Hi"))
        assert "tools" not in fake.requests[-1]
        documents.close()


def test_the_document_library_gives_a_remote_session_the_browser_for_its_browse_turn(
    report: Report, tmp_path: Path
) -> None:
    for fake in run_tool_fake(ToolFake("vllm", [("Answer.", "Done.")])):
        session = RemoteSession(fake.config, responses=False, reasoning_field="reasoning")
        documents = DocumentLibrary(tmp_path / "library.sqlite3")
        attached = (AttachedDocument(extract(report.pdf), 200_000),)
        decision = DocumentDecision("browse", "too long", None, attached)
        loop = documents.tool_loop(session, decision, EstimatingTokenizer(), threading.Event())
        assert loop is None  # the session runs the calls itself
        list(session.send(QUESTION))
        assert fake.requests[-1]["tools"][0]["function"]["name"] == "browser_search"
        documents.close()


def remote_loader(config: ServerConfig, context_tokens: int) -> Loader:
    """Loads "the model" as a server (the probe, as Settings › Model › Use a server does), with
    a small context so that a short PDF does not fit and is searched."""

    def load(path: str, profile: str, progress: Any) -> Any:
        model, tokenizer, info = connect(config)
        return model, tokenizer, replace(info, context_tokens=context_tokens)

    return load


def test_the_window_shows_a_remote_browsed_answer_like_a_local_one(
    qtbot: QtBot, make_window: MakeWindow, own_server: Served, report: Report
) -> None:
    config = ServerConfig(own_server.base_url, KEY, MODEL_ID)
    window = make_window(loader=remote_loader(config, 2000))
    assert isinstance(window.engine.model, RemoteModelInfo)
    drop(window, [report.pdf])
    wait_read(qtbot, window, 1)
    tray = window.composer.tray
    assert isinstance(tray, AttachmentTray)
    qtbot.waitUntil(
        lambda: (
            [c.label.text() for c in tray.chips()]
            == [f"report.pdf · {PAGES} pages · will be searched"]
        )
    )
    own_server.reply(analysis="Search the report.", call=("browser_search", SEARCH))
    own_server.reply(analysis="Open the first result.", call=("browser_open", '{"id": 0}'))
    answer = "It was commissioned in 1987 【1†L1-L2】."
    own_server.reply(answer, analysis="I have it.")
    result = send(qtbot, window, QUESTION)
    assert result.status == "complete" and result.answer == answer
    widget = last_answer(window)
    search, opened = widget.thinking.steps
    assert search.startswith("searched: Halvorsen turbine commissioned (")
    assert opened.startswith(f"opened report.pdf p. {FACT_PAGE}, lines ")
    assert result.citations is not None
    (cited,) = result.citations.citations
    assert cited.target is not None and cited.target.path == report.pdf.resolve()
    assert cited.target.page == FACT_PAGE
    shown = "".join(label.text() for label in widget.answer.prose_labels())
    assert '<a href="cite:1:1:2" style="text-decoration: none"><sup>[1]</sup></a>' in shown
    # The server read the note naming the searchable document, not the document itself.
    read = own_server.prompt_text()
    assert "Attached (too long to include, searchable with the browser tool): report.pdf" in read
    assert "the Kestrel Bay plant." in read  # in the page the model opened
    assert filler(1, 120)[:80] not in read  # a page it did not open
