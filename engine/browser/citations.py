"""Citations `【cursor†L9-L11】` in an answer, resolved to a document, a page and a line range.

A citation names lines of the page shown at `cursor`. On a document page those are the lines.
On a results page they are lines of the list, so they are followed to what the cited item points
at: a search result to its passage, a find match to the matched lines of the searched page.
Anything else (no such cursor, lines past the page, a file that is gone) points nowhere: None.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.browser.page import Page
from engine.browser.urls import parse_page_url

CITATION = re.compile(r"【(\d+)†L(\d+)(?:-L(\d+))?】")
_LINK_START = re.compile(r"【(\d+)†")


@dataclass(frozen=True)
class Citation:
    cursor: int
    first_line: int
    last_line: int
    start: int  # the citation's span in the answer text
    end: int


@dataclass(frozen=True)
class CitedLines:
    """Lines `first_line`..`last_line` (inclusive, as the browser numbers them) of one page."""

    path: Path
    url: str
    title: str
    page: int  # 1-based PDF page, or section for documents without pages
    first_line: int
    last_line: int
    text: str  # the cited lines, joined by newlines


def find_citations(text: str) -> list[Citation]:
    found = []
    for m in CITATION.finditer(text):
        first = int(m.group(2))
        last = int(m.group(3)) if m.group(3) else first
        found.append(Citation(int(m.group(1)), first, last, m.start(), m.end()))
    return found


def resolve(
    stack: list[Page], cursor: int, first: int, last: int, fetch: Callable[[str], Page | None]
) -> CitedLines | None:
    """Where lines `first`-`last` of the page at `cursor` point; `fetch` gets a page by URL."""
    if not 0 <= cursor < len(stack) or not 0 <= first <= last:
        return None
    page = stack[cursor]
    if page.kind == "document":
        return _lines_of(page, first, last)
    if page.snippets is None or first >= len(page.lines):
        return None
    link, link_line = _item_at(page.lines, first)
    snippet = page.snippets.get(link) if link is not None else None
    if snippet is None or snippet.line_idx is None:
        return None
    target = fetch(page.urls.get(link or "", snippet.url))
    if target is None:
        return None
    if page.kind == "find":
        # A match's lines follow its heading line, in the searched page's order.
        shown_first = link_line + 1
        start = snippet.line_idx + max(0, first - shown_first)
        end = snippet.line_idx + max(0, last - shown_first)
        if snippet.line_end is not None:
            end = min(end, snippet.line_end)
        return _lines_of(target, start, max(start, end))
    end = snippet.line_end if snippet.line_end is not None else snippet.line_idx
    return _lines_of(target, snippet.line_idx, end)


def _item_at(lines: list[str], line: int) -> tuple[str | None, int]:
    """The link id of the results item that `line` belongs to, and the line where it starts."""
    for n in range(min(line, len(lines) - 1), -1, -1):
        starts = _LINK_START.findall(lines[n])
        if starts:
            return starts[-1], n
    return None, 0


def _lines_of(page: Page, first: int, last: int) -> CitedLines | None:
    address = parse_page_url(page.url)
    lines = page.lines
    # A file deleted since cannot be shown to the user: the citation points nowhere.
    if address is None or first >= len(lines) or not address.path.is_file():
        return None
    last = min(last, len(lines) - 1)
    return CitedLines(
        path=address.path,
        url=page.url,
        title=page.title,
        page=address.number,
        first_line=first,
        last_line=last,
        text="\n".join(lines[first : last + 1]),
    )
