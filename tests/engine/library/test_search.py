"""BM25 passage ranking: relevant pages first, one hit per page, any query text is safe."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from engine.library import Library, index_files
from engine.library.query import query_words
from engine.library.search import shorten
from tests.engine.library.documents import filler, write_pdf, write_text


@pytest.fixture
def indexed(library: Library, docs: Path) -> Library:
    pages = [filler(n, 150) for n in range(1, 9)]
    pages[2] += " The saffron otter swims past the lighthouse keeper."
    pages[5] += " An otter."
    write_pdf(docs / "atlas.pdf", pages)
    write_text(docs / "a.md", "# Alpha\n\nThe lighthouse keeper writes a logbook.")
    write_text(docs / "b.md", "# Beta\n\nNothing about that here, only umbrellas.")
    index_files(library, sorted(docs.iterdir()))
    return library


def test_pages_with_more_of_the_rare_words_rank_first(indexed: Library) -> None:
    hits = indexed.search("Where does the otter swim near the lighthouse keeper?")
    assert [(h.document.name, h.page) for h in hits[:3]] == [
        ("atlas.pdf", 3),
        ("a.md", 1),
        ("atlas.pdf", 6),
    ]
    assert hits == sorted(hits, key=lambda h: h.score)


def test_one_hit_per_page(indexed: Library) -> None:
    hits = indexed.search("saffron timber velvet willow", limit=20)
    pages = [(h.document.id, h.page) for h in hits]
    assert len(pages) == len(set(pages)) == 8  # every atlas page has these words


def test_search_can_be_limited_to_some_documents(indexed: Library) -> None:
    b = indexed.document_by_path(next(d.path for d in indexed.documents() if d.name == "b.md"))
    a = next(d for d in indexed.documents() if d.name == "a.md")
    assert b is not None
    assert [h.document.name for h in indexed.search("lighthouse", document_ids=[a.id])] == ["a.md"]
    assert indexed.search("lighthouse", document_ids=[b.id]) == []
    assert indexed.search("umbrellas", document_ids=[a.id, b.id])[0].document.name == "b.md"
    assert indexed.has_searchable([b.id]) and not indexed.has_searchable([9999])


def test_stemming_matches_other_forms_of_a_word(indexed: Library) -> None:
    assert indexed.search("swimming otters")[0].page == 3


@pytest.mark.parametrize(
    "query",
    [
        '"',
        '"unbalanced quote',
        "NEAR(otter lighthouse)",
        "otter AND",
        "OR",
        "*",
        "otter*",
        "^otter",
        "text:otter",
        "' OR 1=1 --",
        "(otter",
        "\x00\x01 otter",
        "🙂 otter 東京",
        "a" * 10_000,
        " ".join(f"w{i}" for i in range(5_000)),
    ],
)
def test_any_query_text_is_safe(indexed: Library, query: str) -> None:
    start = time.perf_counter()
    hits = indexed.search(query)
    assert time.perf_counter() - start < 2
    if "otter" in query:
        assert hits and hits[0].page in (3, 6)


@pytest.mark.parametrize("query", ["", "   ", "!!! ??? ...", "_"])
def test_queries_without_words_find_nothing(indexed: Library, query: str) -> None:
    assert indexed.search(query) == []


def test_query_words_drop_common_words_unless_nothing_else_is_left() -> None:
    assert query_words("What is the snake_case NAME of the thing?") == [
        "snake",
        "case",
        "name",
        "thing",
    ]
    assert query_words("to be or not to be") == ["to", "be", "or", "not"]
    assert len(query_words(" ".join(f"w{i}" for i in range(100)))) == 32


def test_shorten_cuts_at_a_word() -> None:
    assert shorten("short", 10) == "short"
    assert shorten("alpha beta gamma delta", 12) == "alpha beta…"
    assert len(shorten("x" * 50, 10)) == 10
