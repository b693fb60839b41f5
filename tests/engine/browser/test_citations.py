"""Citations `【cursor†Lx-Ly】` resolved to a document, a page and the cited lines."""

from __future__ import annotations

import pytest

from engine.browser import BrowserSession, Citation, LibraryBackend, find_citations
from engine.library import Library
from engine.tokenizer import HarmonyTokenizer


@pytest.fixture
def session(library: Library, o200k: HarmonyTokenizer) -> BrowserSession:
    return BrowserSession(LibraryBackend(library), o200k)


def test_citations_are_found_in_an_answer() -> None:
    answer = "A【6†L9-L11】 b 【8†L3】 c 【3†L9-】 【x†L1】 【3†9】 【12†L0-L0】"
    spans = [(answer.index(c), answer.index(c) + len(c)) for c in ("【6†", "【8†", "【12†")]
    ends = [answer.index("】", start) + 1 for start, _ in spans]
    assert find_citations(answer) == [
        Citation(6, 9, 11, spans[0][0], ends[0]),
        Citation(8, 3, 3, spans[1][0], ends[1]),
        Citation(12, 0, 0, spans[2][0], ends[2]),
    ]


def test_a_document_page_citation(session: BrowserSession, library: Library) -> None:
    atlas = next(d for d in library.documents() if d.name == "atlas.pdf")
    shown = session.open(id=f"{atlas.path.as_uri()}#page=3")
    assert shown.cursor == 0
    page = session.pages[0]
    cited = session.resolve_citation(0, 2, 4)
    assert cited is not None
    assert (cited.path, cited.page, cited.first_line, cited.last_line) == (atlas.path, 3, 2, 4)
    assert cited.text == "\n".join(page.lines[2:5])
    assert cited.title == "atlas.pdf, page 3"
    # A range running past the page is cut to it; one starting past it points nowhere.
    last = len(page.lines) - 1
    clipped = session.resolve_citation(0, last, last + 50)
    assert clipped is not None and clipped.last_line == last
    assert session.resolve_citation(0, last + 1, last + 2) is None
    assert session.resolve_citation(1, 0, 0) is None
    assert session.resolve_citation(-1, 0, 0) is None
    assert session.resolve_citation(0, 5, 4) is None


def test_a_search_result_citation_points_at_its_passage(session: BrowserSession) -> None:
    results = session.search("xylophone")
    lines = session.pages[0].lines
    item = next(n for n, line in enumerate(lines) if "【2†" in line)
    # Any line of the item (its link line or a wrapped snippet line) cites the same passage.
    for n in (item, item + 1):
        cited = session.resolve_citation(0, n, n)
        assert cited is not None
        assert cited.title == "atlas.pdf, page 3" and cited.page == 3
        assert "xylophone" in cited.text
    assert session.resolve_citation(0, 0, 0) is None  # the "# Search Results" heading
    assert results.cursor == 0


def test_a_find_citation_points_at_the_matched_lines(session: BrowserSession) -> None:
    session.search("xylophone")
    session.open(id=1)  # notes.md section 2
    source = session.pages[1]
    session.find("section")
    find_page = session.pages[2]
    header = next(n for n, line in enumerate(find_page.lines) if line.startswith("# 【0†"))
    match_line = int(find_page.lines[header].split("match at L")[1].rstrip("】"))
    cited = session.resolve_citation(2, header, header + 2)
    assert cited is not None
    assert cited.url == source.url
    assert (cited.first_line, cited.last_line) == (match_line, match_line + 1)
    assert cited.text == "\n".join(source.lines[match_line : match_line + 2])
    assert cited.text == "\n".join(find_page.lines[header + 1 : header + 3])


def test_resolving_every_citation_of_an_answer(session: BrowserSession) -> None:
    session.search("xylophone")
    session.open(id=0)
    answer = "Budget【1†L9】, nowhere【7†L1-L2】."
    resolved = session.resolve_citations(answer)
    assert [c.cursor for c, _ in resolved] == [1, 7]
    assert resolved[0][1] is not None and resolved[0][1].text == "The xylophone budget."
    assert resolved[1][1] is None
