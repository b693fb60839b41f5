"""`browser.find`: case-insensitive substring search in one page, as a page of numbered matches.

Each match shows `FIND_SHOWN_LINES` lines from the matching line, under a link `【i†match at
L{n}】` that `open(id=i)` follows back to that spot; scanning resumes after the lines shown, and
stops at `MAX_FIND_RESULTS`. Link markup is stripped first, so a pattern cannot match it.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from engine.browser.page import Page, Snippet

MAX_FIND_RESULTS = 50
FIND_SHOWN_LINES = 4

_LEADING_PART = re.compile(r"^[^【】]*】")  # a link's tail cut off by the start of the text
_TRAILING_PART = re.compile(r"【\d*(?:†(?P<content>[^†】]*)(?:†[^†】]*)?)?$")
_LINK = re.compile(r"【\d+†(?P<content>[^†】]+)(?:†[^†】]+)?】")


def strip_links(text: str) -> str:
    """Links (whole, or cut off at either end of `text`) replaced by their visible text."""
    text = _LEADING_PART.sub("", text)
    text = _TRAILING_PART.sub(lambda m: m.group("content") or "", text)
    return _LINK.sub(lambda m: m.group("content"), text)


def find_in_page(page: Page, pattern: str) -> Page:
    """The results page for `pattern` (compared in lower case) in `page`."""
    pattern = pattern.lower()
    lines = strip_links("\n".join(page.lines)).split("\n")
    chunks: list[str] = []
    snippets: dict[str, Snippet] = {}
    n = 0
    while n < len(lines) and len(chunks) < MAX_FIND_RESULTS:
        if pattern not in lines[n].lower():
            n += 1
            continue
        shown = "\n".join(lines[n : n + FIND_SHOWN_LINES])
        i = len(chunks)
        chunks.append(f"# 【{i}†match at L{n}】\n{shown}")
        snippets[str(i)] = Snippet(
            url=page.url,
            text=shown,
            title=f"#{i}",
            line_idx=n,
            line_end=min(n + FIND_SHOWN_LINES, len(lines)) - 1,
        )
        n += FIND_SHOWN_LINES
    text = "\n\n".join(chunks) if chunks else f"No `find` results for pattern: `{pattern}`"
    return Page(
        url=f"{page.url}/find?pattern={quote(pattern)}",
        title=f"Find results for text: `{pattern}` in `{page.title}`",
        text=text,
        kind="find",
        urls={str(i): page.url for i in range(len(chunks))},
        snippets=snippets,
    )
