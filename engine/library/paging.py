"""An extracted document cut into the pages the browser opens, and pages into ranked passages.

What a page is:
- PDF: one page per PDF page, numbered as in the file (blank pages stay, so numbers stay true).
- Everything else (text, Markdown, code, Word, HTML, CSV) has no pages of its own, so it is cut
  into sections of about `SECTION_CHARS` characters, a printed page or so: big enough that a
  citation lands in a readable place, small enough that `find` and a view of 1,024 tokens cover a
  useful share of it. A section starts at a Markdown heading when one comes after
  `SECTION_MIN_CHARS`, else at a blank line, else at a line break; only a single line longer than
  a section is cut inside.
A passage is a window of `PASSAGE_LINES` wrapped lines within one page; passages never cross
pages, so every search hit names one page and a line range on it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from engine.documents import ExtractedDocument
from engine.library.lines import clean_page_text, wrap_lines

SECTION_CHARS = 4000
SECTION_MIN_CHARS = 1500
PASSAGE_LINES = 12
PASSAGE_STRIDE = 12

# ExtractedDocument puts a "--- Page N ---" line before each PDF page's own text.
_NEXT_PAGE_MARKER = re.compile(r"\n*--- Page \d+ ---\n?\Z")
_HEADING = re.compile(r"#{1,6} ")


@dataclass(frozen=True)
class PageText:
    number: int  # 1-based
    text: str  # cleaned: safe to show in the browser


@dataclass(frozen=True)
class Passage:
    first_line: int  # wrapped-line numbers on the page, inclusive
    last_line: int
    text: str  # the lines joined by newlines


def split_pages(doc: ExtractedDocument) -> tuple[list[PageText], bool]:
    """The document's pages and whether they are real (PDF) pages rather than sections."""
    if doc.pages and len(doc.page_offsets) == doc.pages:
        return _pdf_pages(doc.text, doc.page_offsets), True
    sections = split_sections(doc.text)
    return [PageText(n, clean_page_text(s)) for n, s in enumerate(sections, start=1)], False


def _pdf_pages(text: str, offsets: tuple[int, ...]) -> list[PageText]:
    pages = []
    ends = (*offsets[1:], len(text))
    for n, (start, end) in enumerate(zip(offsets, ends, strict=True), start=1):
        page = _NEXT_PAGE_MARKER.sub("", text[start:end])
        pages.append(PageText(n, clean_page_text(page.strip("\n"))))
    return pages


def split_sections(
    text: str, size: int = SECTION_CHARS, minimum: int = SECTION_MIN_CHARS
) -> list[str]:
    """`text` cut into sections of at most about `size` characters (see the module docstring)."""
    if not 0 < minimum < size:
        raise ValueError(f"need 0 < minimum < size, got {minimum=} {size=}")
    sections: list[str] = []
    lines: list[str] = []
    used = 0  # characters in `lines`, newlines included
    cut_after = -1  # index of the last blank line worth cutting after
    used_at_cut = 0

    def flush(upto: int) -> None:
        nonlocal lines, used, cut_after
        body = "\n".join(lines[:upto]).strip("\n")
        if body.strip():
            sections.append(body)
        lines = lines[upto:]
        used = sum(len(line) + 1 for line in lines)
        cut_after = -1

    for line in _bounded_lines(text, size):
        if lines and used >= minimum and _HEADING.match(line):
            flush(len(lines))
        elif lines and used + len(line) + 1 > size:
            flush(cut_after + 1 if cut_after >= 0 and used_at_cut >= minimum else len(lines))
        lines.append(line)
        used += len(line) + 1
        if not line.strip():
            cut_after, used_at_cut = len(lines) - 1, used
    flush(len(lines))
    return sections or [text]


def _bounded_lines(text: str, size: int) -> Iterator[str]:
    """Source lines, with any line longer than `size` cut at a space (or hard) into pieces."""
    for line in text.split("\n"):
        while len(line) > size:
            cut = line.rfind(" ", size // 2, size)
            cut = cut + 1 if cut > 0 else size
            yield line[:cut]
            line = line[cut:]
        yield line


def passages(
    lines: list[str], size: int = PASSAGE_LINES, stride: int = PASSAGE_STRIDE
) -> list[Passage]:
    """Windows of `size` lines every `stride` lines; blank-only windows are left out."""
    if size < 1 or not 0 < stride <= size:
        raise ValueError(f"need size >= 1 and 0 < stride <= size, got {size=} {stride=}")
    found = []
    for first in range(0, max(1, len(lines) - size + stride), stride):
        window = lines[first : first + size]
        text = "\n".join(window)
        if text.strip():
            found.append(Passage(first, first + len(window) - 1, text))
    return found


def page_passages(
    text: str, size: int = PASSAGE_LINES, stride: int = PASSAGE_STRIDE
) -> list[Passage]:
    return passages(wrap_lines(text), size, stride)
