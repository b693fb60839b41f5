"""The browser session's own behaviour: argument checking, scope, errors as text, state."""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from pathlib import Path

import pytest

from engine.browser import BrowserSession, LibraryBackend
from engine.library import Library, index_files
from engine.tokenizer import HarmonyTokenizer
from tests.engine.library.documents import filler, write_text


def _session(
    library: Library, tokenizer: HarmonyTokenizer, document_ids: Collection[int] | None = None
) -> BrowserSession:
    return BrowserSession(LibraryBackend(library, document_ids), tokenizer)


@pytest.mark.parametrize(
    ("function", "arguments", "expected"),
    [
        ("search", "not json", '{"error": "Invalid function arguments"}'),
        ("search", "[1, 2]", '{"error": "Invalid function arguments"}'),
        ("search", " ", '{"error": "Invalid function arguments"}'),
        ("browse", "{}", '{"error": "Unknown function: browse"}'),
        ("search", "", "Invalid arguments for `browser.search`: `query` is required."),
        ("search", '{"query": 5}', "`query` should be a string, not `int`"),
        ("search", '{"query": "x", "topn": "5"}', "`topn` should be an integer, not `str`"),
        ("search", '{"query": "x", "source": 3}', "`source` should be a string, not `int`"),
        ("open", '{"id": null}', "`id` should be an integer or a URL, not `NoneType`"),
        ("open", '{"id": [1]}', "`id` should be an integer or a URL, not `list`"),
        ("open", '{"loc": "10"}', "`loc` should be an integer, not `str`"),
        ("open", '{"cursor": 1.5}', "`cursor` should be an integer, not `float`"),
        ("open", '{"num_lines": true}', "`num_lines` should be an integer, not `bool`"),
        ("open", '{"view_source": "yes"}', "`view_source` should be true or false, not `str`"),
        ("find", "{}", "Invalid arguments for `browser.find`: `pattern` is required."),
        ("find", '{"pattern": ["a"]}', "`pattern` should be a string, not `list`"),
        ("open", "", "No pages to access!"),
        ("find", '{"pattern": 2024}', "No pages to access!"),
    ],
)
def test_bad_calls_are_answered_with_text(
    library: Library, o200k: HarmonyTokenizer, function: str, arguments: str, expected: str
) -> None:
    session = _session(library, o200k)
    out = session.call(function, arguments)
    assert out.error and out.cursor is None
    assert expected in out.text
    assert session.pages == []


def test_a_good_call_through_json(library: Library, o200k: HarmonyTokenizer) -> None:
    session = _session(library, o200k)
    # Unknown keys are ignored; the recipient may come with its namespace.
    out = session.call("browser.search", json.dumps({"query": "xylophone", "recency": 3}))
    assert not out.error and out.cursor == 0 and out.text.startswith("[0] xylophone\n")
    out = session.call("open", json.dumps({"id": 2, "num_lines": 2}))
    assert out.cursor == 1 and out.text.count("\nL") == 2
    assert "sources=local_documents" in (session.namespace().description or "")


def test_topn_is_honoured_up_to_the_maximum(tmp_path: Path, o200k: HarmonyTokenizer) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    paths = [write_text(docs / f"n{i:02}.md", f"Shared word. {filler(i, 20)}") for i in range(25)]
    with Library(tmp_path / "lib.sqlite3") as library:
        index_files(library, paths)
        session = _session(library, o200k)
        assert session.search("shared", topn=1).text.count("  * 【") == 1
        assert session.search("shared").text.count("  * 【") == 10
        assert session.search("shared", topn=500).text.count("  * 【") == 20
        assert session.search("shared", topn=-3).text.count("  * 【") == 1


def test_an_old_search_cursor_keeps_its_own_results(
    library: Library, o200k: HarmonyTokenizer
) -> None:
    session = _session(library, o200k)
    session.search("xylophone")
    session.search("tab-indented body lookup")
    first = session.open(id=0, cursor=0)
    assert "xylophone" in first.text.lower()


def test_nothing_to_search(tmp_path: Path, o200k: HarmonyTokenizer, library: Library) -> None:
    with Library(tmp_path / "empty.sqlite3") as empty:
        out = _session(empty, o200k).search("anything")
    assert out.error
    assert out.text == (
        "Error during search for `anything`: the document library is empty: the user has not "
        "added any documents"
    )
    out = _session(library, o200k, document_ids=[]).search("xylophone")
    assert out.text.endswith("no documents attached to this chat can be searched yet")


def test_a_chat_sees_only_its_documents(library: Library, o200k: HarmonyTokenizer) -> None:
    memo = next(d for d in library.documents() if d.name == "memo.docx")
    atlas = next(d for d in library.documents() if d.name == "atlas.pdf")
    session = _session(library, o200k, document_ids=[memo.id])
    results = session.search("xylophone").text
    assert "memo.docx" in results and "atlas.pdf" not in results
    out = session.open(id=f"{atlas.path.as_uri()}#page=3")
    assert out.error and "atlas.pdf is not among the documents available" in out.text


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/",
        "http://localhost:8080/admin",
        "ftp://example.com/file.txt",
        "javascript:alert(1)",
        "view-source:https://example.com/",
        "file://otherhost/etc/hosts",
        "file:///etc/hosts",
        "/etc/hosts",
        "file:///no/such/file.pdf#page=1",
        "file:///etc/hosts#page=abc",
        "",
        "x" * 100_000,
    ],
)
def test_only_indexed_documents_can_be_opened(
    library: Library, o200k: HarmonyTokenizer, url: str
) -> None:
    session = _session(library, o200k)
    start = time.perf_counter()
    out = session.open(id=url)
    assert time.perf_counter() - start < 2
    assert out.error and out.text.startswith("Error fetching URL `")
    assert len(out.text) < 2_200  # the URL and the reason are cut to 1,024 characters each
    assert session.pages == []


@pytest.mark.parametrize(
    ("function", "kwargs"),
    [
        ("open", {"loc": 10**18}),
        ("open", {"cursor": 10**18}),
        ("open", {"cursor": -(10**18)}),
        ("open", {"id": 10**18}),
        ("open", {"num_lines": 10**18}),
        ("find", {"pattern": "(.*" * 1000}),
        ("find", {"pattern": "e" * 200_000}),
        ("search", {"query": 'NEAR(a b) OR "x AND *' * 500}),
    ],
)
def test_hostile_arguments_are_answered_quickly(
    library: Library, o200k: HarmonyTokenizer, function: str, kwargs: dict[str, object]
) -> None:
    session = _session(library, o200k)
    session.search("xylophone")
    session.open(id=0)
    start = time.perf_counter()
    out = getattr(session, function)(**kwargs)
    assert time.perf_counter() - start < 2
    assert out.text


def test_a_deleted_document_cannot_be_opened(tmp_path: Path, o200k: HarmonyTokenizer) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    gone = write_text(docs / "gone.md", "The axolotl page.")
    kept = write_text(docs / "kept.md", "Another axolotl page.")
    with Library(tmp_path / "lib.sqlite3") as library:
        index_files(library, [gone, kept])
        session = _session(library, o200k)
        opened = session.open(id=gone.as_uri())
        assert not opened.error
        gone.unlink()
        results = session.search("axolotl").text
        assert "kept.md" in results and "gone.md" not in results
        out = session.open(id=gone.as_uri())
        assert out.error and "gone.md was deleted or moved after it was indexed" in out.text
        assert session.resolve_citation(opened.cursor or 0, 0, 0) is None


def test_the_session_survives_a_restart(library: Library, o200k: HarmonyTokenizer) -> None:
    session = _session(library, o200k)
    session.search("xylophone")
    session.open(id=2)
    session.find("xylophone")
    state = json.loads(json.dumps(session.to_state()))
    restored = BrowserSession.from_state(state, LibraryBackend(library), o200k)
    assert [p.to_dict() for p in restored.pages] == [p.to_dict() for p in session.pages]
    assert restored.open(cursor=1, loc=2).text == session.open(cursor=1, loc=2).text
    assert restored.resolve_citation(2, 0, 1) == session.resolve_citation(2, 0, 1)
    assert restored.resolve_citation(2, 0, 1) is not None
