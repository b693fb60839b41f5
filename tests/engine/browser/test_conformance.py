"""Our browser's text is byte for byte what OpenAI's reference SimpleBrowserTool shows.

Both tools get the same pages (the reference through a Backend subclass serving ours) and the
same calls; every result, page or error, must match exactly, with the real o200k tokenizer
sizing the views (ours counts with the engine's HarmonyTokenizer, the reference with tiktoken).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.browser import LibraryBackend
from engine.library import Library
from engine.tokenizer import HarmonyTokenizer
from tests.engine.browser.reference import Pair


def _check(pair: Pair, function: str, **kwargs: Any) -> str:
    ours, reference = pair.call(function, **kwargs)
    assert ours == reference, f"{function}({kwargs})"
    return ours


def test_a_session_of_calls_matches_the_reference(
    library: Library, o200k: HarmonyTokenizer
) -> None:
    pair = Pair(LibraryBackend(library), o200k, view_tokens=1024)
    atlas = next(d for d in library.documents() if d.name == "atlas.pdf").path.as_uri()
    notes = next(d for d in library.documents() if d.name == "notes.md").path.as_uri()

    assert _check(pair, "find", pattern="x") == "No pages to access!"
    assert _check(pair, "open", id=0) == "No pages to access!"
    results = _check(pair, "search", query="xylophone")  # cursor 0
    assert results.startswith("[0] xylophone\n**viewing lines [0 - ") and "【2†" in results
    page = _check(pair, "open", id=0)  # cursor 1: scrolled to the passage
    assert "xylophone" in page
    _check(pair, "open", loc=0)  # cursor 2: the same page from the top
    _check(pair, "open", loc=3, num_lines=5)
    _check(pair, "open", loc=10_000)  # past the end: error, nothing pushed
    _check(pair, "find", pattern="XYLOPHONE")  # one match
    _check(pair, "open", id=0)  # back to the match
    _check(pair, "find", pattern="e")  # fifty matches at most
    _check(pair, "find", pattern="no such words anywhere")
    _check(pair, "open", cursor=0, id=1)  # the second result of the first search
    _check(pair, "open", cursor=0, id=2, loc=2)
    _check(pair, "open", cursor=0, id=99)  # no such link
    _check(pair, "open", cursor=42)  # no such cursor
    _check(pair, "open", cursor=-2)  # counted back from the top, as in Python
    _check(pair, "find", pattern="the", cursor=0)  # refused on results
    _check(pair, "open", id=f"{atlas}#page=3")  # a URL typed by the model
    _check(pair, "open", id=f"{atlas}#page=2")  # the blank page
    _check(pair, "open", id=f"{atlas}#page=1")  # longer than one view
    assert "**viewing lines [0 - " in _check(pair, "open", loc=0)
    _check(pair, "open", id=f"{atlas}#page=77")  # no such page
    _check(pair, "open", id="https://example.com/page")  # no network
    _check(pair, "open", id=f"{notes}#section=2", loc=5)
    _check(pair, "open", view_source=True)
    _check(pair, "open", id=f"{notes}#section=2", view_source=True, loc=1, num_lines=2)
    _check(pair, "find", pattern="東京タワー")
    _check(pair, "find", pattern="😀")
    _check(pair, "search", query="zzqqx nothing matches this")
    _check(pair, "search", query="tab-indented body lookup")
    _check(pair, "open", id=0)
    _check(pair, "find", pattern="\tyield")


@pytest.mark.parametrize("view_tokens", [16, 100, 333, 1024])
def test_views_split_long_pages_where_the_reference_does(
    library: Library, o200k: HarmonyTokenizer, view_tokens: int
) -> None:
    """Scroll every document page top to bottom, one view at a time."""
    pair = Pair(LibraryBackend(library), o200k, view_tokens=view_tokens)
    most_views = 0
    for document in library.documents():
        for number in range(1, document.pages_done + 1):
            suffix = f"#page={number}" if document.paged else f"#section={number}"
            url = document.path.as_uri() + (suffix if document.pages_done > 1 else "")
            text = _check(pair, "open", id=url)
            total = int(text.split("\n")[1].rsplit(" of ", 1)[1].rstrip("*"))
            views = 1
            while (last := int(text.split("\n")[1].split(" - ")[1].split("]")[0])) < total:
                text = _check(pair, "open", loc=last + 1)
                views += 1
            most_views = max(most_views, views)
    assert most_views > 1  # some page is longer than one view, even at 1,024 tokens


_PATTERNS = st.sampled_from(["", "e", "the", "xylophone", "café", "東京", "zz-nothing", "L1:"])


def _steps() -> st.SearchStrategy[list[tuple[str, dict[str, Any]]]]:
    search = st.tuples(st.just("search"), st.fixed_dictionaries({"query": st.just("xylophone")}))
    opened = st.tuples(
        st.just("open"),
        st.fixed_dictionaries(
            {},
            optional={
                "id": st.integers(-1, 12),
                "cursor": st.integers(-3, 8),
                "loc": st.integers(-2, 120),
                "num_lines": st.sampled_from([-1, 0, 1, 3, 40]),
                "view_source": st.booleans(),
            },
        ),
    )
    find = st.tuples(
        st.just("find"),
        st.fixed_dictionaries({"pattern": _PATTERNS}, optional={"cursor": st.integers(-2, 8)}),
    )
    return st.lists(st.one_of(search, opened, opened, find), min_size=1, max_size=10)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=_steps(), view_tokens=st.sampled_from([64, 1024]))
def test_random_call_sequences_match_the_reference(
    library: Library,
    o200k: HarmonyTokenizer,
    steps: list[tuple[str, dict[str, Any]]],
    view_tokens: int,
) -> None:
    # One query per sequence: the reference keys pages by URL, and every search page's URL is
    # "", so after two different searches its old search cursors show the newest results.
    pair = Pair(LibraryBackend(library), o200k, view_tokens=view_tokens)
    for function, kwargs in steps:
        _check(pair, function, **kwargs)
