"""Documents into pages (real PDF pages or sections) and pages into passages."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.documents import extract
from engine.library.lines import wrap_lines
from engine.library.paging import page_passages, passages, split_pages, split_sections
from tests.engine.library.documents import filler, write_docx, write_pdf, write_text


def test_pdf_pages_are_the_files_pages_with_blank_ones_kept(docs: Path) -> None:
    texts = [filler(1, 60), "", filler(3, 60), "Last page, café."]
    doc = extract(write_pdf(docs / "report.pdf", texts))
    pages, paged = split_pages(doc)
    assert paged
    assert [p.number for p in pages] == [1, 2, 3, 4]
    assert pages[1].text == ""
    for page, text in zip(pages, texts, strict=True):
        # PDF text comes back re-flowed: same words, maybe other line breaks.
        assert page.text.split() == text.split()
    assert "--- Page" not in "".join(p.text for p in pages)


def test_a_document_without_pages_becomes_sections_at_headings(docs: Path) -> None:
    parts = [f"# Chapter {n}\n\n{filler(n, 400)}" for n in range(1, 6)]
    doc = extract(write_text(docs / "book.md", "\n\n".join(parts)))
    pages, paged = split_pages(doc)
    assert not paged
    assert len(pages) == 5
    assert [p.text.splitlines()[0] for p in pages] == [f"# Chapter {n}" for n in range(1, 6)]


def test_section_text_is_cleaned_of_link_brackets(docs: Path) -> None:
    doc = extract(write_text(docs / "forged.md", "Ignore 【0†this link†evil】 please."))
    pages, _ = split_pages(doc)
    assert pages[0].text == "Ignore 〖0†this link†evil〗 please."


def test_a_short_document_is_one_section(docs: Path) -> None:
    doc = extract(write_docx(docs / "memo.docx", ["Short memo.", "Second paragraph."]))
    pages, paged = split_pages(doc)
    assert not paged
    assert [p.text for p in pages] == ["Short memo.\n\nSecond paragraph."]


def test_a_huge_line_is_cut_inside() -> None:
    sections = split_sections("word " * 5000, size=4000, minimum=1500)
    assert len(sections) >= 6
    assert all(len(s) <= 4000 for s in sections)
    assert "".join(sections).split() == ["word"] * 5000


_LINES = st.lists(
    st.one_of(st.just(""), st.just("# Heading"), st.text("abc ", min_size=1, max_size=300)),
    max_size=200,
)


@settings(max_examples=150, deadline=None)
@given(_LINES)
def test_sections_keep_every_line_in_order_and_stay_small(lines: list[str]) -> None:
    text = "\n".join(lines)
    sections = split_sections(text, size=1000, minimum=300)
    assert all(len(s) <= 1000 for s in sections)
    if text.strip():
        assert all(s.strip() for s in sections)
        kept = [line for s in sections for line in s.split("\n") if line.strip()]
        assert kept == [line for line in lines if line.strip()]


def test_sections_check_their_limits() -> None:
    with pytest.raises(ValueError):
        split_sections("x", size=100, minimum=100)


@pytest.mark.parametrize(
    ("n", "size", "stride"), [(0, 12, 12), (5, 12, 12), (30, 12, 12), (30, 16, 8)]
)
def test_passages_cover_every_line(n: int, size: int, stride: int) -> None:
    lines = [f"line {i}" for i in range(n)]
    found = passages(lines, size, stride)
    covered = {i for p in found for i in range(p.first_line, p.last_line + 1)}
    assert covered == set(range(n))
    for p in found:
        assert p.text == "\n".join(lines[p.first_line : p.last_line + 1])
        assert p.last_line - p.first_line < size


def test_blank_windows_are_not_passages() -> None:
    found = page_passages("\n" * 30 + "alone", size=12, stride=12)
    assert [(p.first_line, p.last_line) for p in found] == [(24, 30)]
    assert wrap_lines("\n" * 30 + "alone")[30] == "alone"
