"""HTML split into start tags, end tags and text, in one pass that never looks back.

Why not html.parser: before Python 3.13.4 (and 3.12.11), every "<" without a closing ">" makes it
search to the end of the input again, so 40 KB of "<a" take seconds and 1 MB takes many minutes.
Here each construct is read once from where the previous one ended; a construct the input never
closes runs to the end of the input, as in a browser (a comment or tag cut off at the end is
dropped). Attributes are skipped: the text of a page needs only element names.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator
from html import unescape
from typing import Literal

Event = Literal["start", "end", "text"]

_TAG_NAME = re.compile(r"[^\s/>]*")
_SIMPLE_START = re.compile(r"<([a-zA-Z][^\s/>]*)>")
_ATTRIBUTE_NAME = re.compile(r"[^\s/>][^\s/>=]*")  # "=" may start a name, as in the standard
_SPACE = re.compile(r"\s*")
_SPACE_OR_SLASH = re.compile(r"[\s/]*")
_UNQUOTED_VALUE = re.compile(r"[^\s>]*")
# Elements whose content is not markup: it runs to their own end tag. Only the title's and a
# text area's content are text with character references.
_RAW_TEXT = ("script", "style", "xmp", "iframe", "noembed", "noframes", "noscript")
_ESCAPABLE_RAW_TEXT = ("title", "textarea")
_RAW_END = {
    name: re.compile(rf"</{name}(?=[\s/>])", re.IGNORECASE)
    for name in (*_RAW_TEXT, *_ESCAPABLE_RAW_TEXT)
}


def scan(html: str) -> Iterator[tuple[Event, str]]:
    """("start", name), ("end", name) and ("text", unescaped text), in document order.

    A self-closing tag (<div/>) gives a start and an end. Comments, doctypes, processing
    instructions and CDATA sections give nothing. Element names are lower case.
    """
    pos, n = 0, len(html)
    while pos < n:
        lt = html.find("<", pos)
        if lt < 0:
            lt = n
        if lt > pos:
            text = html[pos:lt]
            yield "text", unescape(text) if "&" in text else text
        pos = lt
        if pos >= n:
            return
        after = html[pos + 1 : pos + 2]
        simple = _SIMPLE_START.match(html, pos)
        if simple is not None:  # most tags: <p>, <td>, <b>; only saves time
            name = simple.group(1).lower()
            yield "start", name
            pos = simple.end()
            if name in _RAW_END:
                pos = yield from _raw_text(html, pos, name)
        elif after.isascii() and after.isalpha():
            tag = _start_tag(html, pos + 1)
            if tag is None:
                return  # the input ends inside the tag
            name, pos, self_closing = tag
            yield "start", name
            if self_closing:
                yield "end", name
            elif name in _RAW_END:
                pos = yield from _raw_text(html, pos, name)
        elif after == "/":
            gt = html.find(">", pos + 2)
            if gt < 0:
                if pos + 2 == n:
                    yield "text", "</"  # a bare "</" at the very end is text, as in a browser
                return
            first = html[pos + 2 : pos + 3]
            if first.isascii() and first.isalpha():
                name_match = _TAG_NAME.match(html, pos + 2)
                assert name_match is not None  # the pattern matches the empty string
                yield "end", name_match.group().lower()
            pos = gt + 1  # "</>" and "</ x>" are ignored, as browsers do
        elif html.startswith("<!--", pos):
            close = html.find("-->", pos + 2)  # from +2, so "<!-->" and "<!--->" close at once
            pos = n if close < 0 else close + 3
        elif after in ("!", "?"):
            gt = html.find(">", pos + 2)  # doctype, CDATA, processing instruction: not text
            pos = n if gt < 0 else gt + 1
        else:
            yield "text", "<"
            pos += 1


def _start_tag(html: str, pos: int) -> tuple[str, int, bool] | None:
    """The tag's name, where the text after it starts, and whether it ended with "/>"."""
    n = len(html)
    name_match = _TAG_NAME.match(html, pos)
    assert name_match is not None
    name, pos = name_match.group().lower(), name_match.end()
    while True:
        after_space = _SPACE_OR_SLASH.match(html, pos)
        assert after_space is not None
        slash = after_space.end() > pos and html[after_space.end() - 1] == "/"
        pos = after_space.end()
        if pos >= n:
            return None
        if html[pos] == ">":
            return name, pos + 1, slash
        attribute = _ATTRIBUTE_NAME.match(html, pos)
        assert attribute is not None  # html[pos] is none of space, "/" or ">"
        pos = _skip(_SPACE, html, attribute.end())
        if not html.startswith("=", pos):
            continue
        pos = _skip(_SPACE, html, pos + 1)
        quote = html[pos : pos + 1]
        if quote in ('"', "'"):
            close = html.find(quote, pos + 1)
            if close < 0:
                return None
            pos = close + 1
        else:
            pos = _skip(_UNQUOTED_VALUE, html, pos)


def _raw_text(html: str, pos: int, name: str) -> Generator[tuple[Event, str], None, int]:
    """The content of a <script>, <title>, ... up to its end tag (or the end of the input); the
    end tag itself is left for `scan`. Returns where the content ends."""
    end_tag = _RAW_END[name].search(html, pos)
    end = end_tag.start() if end_tag else len(html)
    if end > pos:
        content = html[pos:end]
        yield "text", unescape(content) if name in _ESCAPABLE_RAW_TEXT else content
    return end


def _skip(pattern: re.Pattern[str], html: str, pos: int) -> int:
    match = pattern.match(html, pos)
    assert match is not None  # every pattern given here matches the empty string
    return match.end()
