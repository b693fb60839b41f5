"""HTML pages: readable text with headings, list items, tables and paragraph breaks.

One pass over the tags (engine.documents.markup) that writes text as elements open and close, in
time linear in the page. Nothing is built and then edited: edits of a beautifulsoup tree cost time
proportional to the depth of the tree or the number of siblings, which made 40 KB of unclosed <b>
take half a minute. Elements nest as beautifulsoup's html.parser builder nests them: an end tag
closes the innermost open element of its name and those opened inside it; an end tag with no open
element of its name is ignored; nothing is closed implicitly.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from typing import Literal

from engine.documents.document import Body, markdown_table, normalize_newlines
from engine.documents.markup import scan
from engine.documents.text import bom_encoding, decode_text, reject_binary

# Never visible as text, or code the model should not read as the page's content. Not <head>:
# a page may leave <head> unclosed, and then everything would be inside it.
_DROP = frozenset(
    ["script", "style", "noscript", "template", "svg", "canvas", "iframe", "object", "title"]
)
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_BLOCKS = frozenset(
    [
        *("p", "div", "section", "article", "main", "header", "footer", "aside", "nav"),
        *("blockquote", "ul", "ol", "dl", "dt", "dd", "figure", "figcaption", "form"),
        *("fieldset", "address", "details", "summary", "hr"),
    ]
)
# Elements without content or end tag (as beautifulsoup's html.parser builder knows them).
_VOID = frozenset(
    [
        *("area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link"),
        *("menuitem", "meta", "param", "source", "track", "wbr", "basefont", "bgsound"),
        *("command", "frame", "image", "isindex", "nextid", "spacer"),
    ]
)
_FENCE = "```"
_SPACE = re.compile(r"\s+")
_SPACES = re.compile(r" {2,}")
# The HTML standard's pre-scan looks for the declaration in the first 1024 bytes.
_PRESCAN_BYTES = 1024
_META_CHARSET = re.compile(
    rb"<meta[^>]{0,512}?charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]{1,40})", re.I
)
# Labels the HTML standard reads as another encoding: Latin-1 and ASCII pages are Windows-1252,
# and a page that could state UTF-16 in ASCII bytes is not UTF-16.
_LABEL_ALIASES = {"iso8859-1": "cp1252", "ascii": "cp1252", "utf-16": "utf-8"}

Role = Literal["plain", "drop", "pre", "title", "table", "row", "cell", "marked"]


def read_html(data: bytes, name: str) -> Body:
    """The page's own <meta charset> wins; without one, the text rules of engine.documents.text."""
    html, warnings = _decode(data, name)
    page = _PageText()
    for event, value in scan(html):
        if event == "text":
            page.text(value)
        elif event == "start":
            page.start(value)
        else:
            page.end(value)
    page.finish()
    text = _tidy(page.result())
    title = page.title
    if title and text and not text.startswith(f"# {title}\n") and text != f"# {title}":
        text = f"# {title}\n\n{text}"
    return Body(text=text, warnings=warnings)


def _decode(data: bytes, name: str) -> tuple[str, tuple[str, ...]]:
    if bom_encoding(data) is None:
        declared = declared_charset(data)
        if declared is not None:
            reject_binary(data, name)
            return normalize_newlines(data.decode(declared, errors="replace")), ()
    return decode_text(data, name)


def declared_charset(data: bytes) -> str | None:
    """The Python codec a page's <meta charset> or http-equiv Content-Type names, if it is one."""
    match = _META_CHARSET.search(data, 0, _PRESCAN_BYTES)
    if match is None:
        return None
    try:
        codec = codecs.lookup(match.group(1).decode("ascii")).name
    except LookupError:
        return None
    return _LABEL_ALIASES.get(codec.removesuffix("-le").removesuffix("-be"), codec)


# A cell's stripped strings; a table nested in the cell adds its own cells as one nested list, so
# that each level costs O(1) instead of copying all the text below it (1 MB of nested tables).
_Pieces = list["str | _Pieces"]


@dataclass
class _Table:
    rows: list[list[_Pieces]] = field(default_factory=list)
    cell: _Pieces | None = None  # the open cell


@dataclass
class _Open:
    """An open element and what its end tag does."""

    name: str
    role: Role
    suffix: str = ""
    row: list[_Pieces] | None = None  # for a <tr>: the row its cells go into


class _PageText:
    """The page's text, written as elements open (`start`), close (`end`) and hold `text`."""

    def __init__(self) -> None:
        self._out: list[str] = []
        self._stack: list[_Open] = []
        self._open_names: dict[str, int] = {}  # how many of each are open, for end tags in O(1)
        self._tables: list[_Table] = []
        self._drop = 0  # open elements whose content is never text
        self._pre = 0
        self._title: list[str] | None = None  # the first <title>'s strings, while it is open
        self._title_seen = False
        self.title = ""

    def result(self) -> str:
        return "".join(self._out)

    def start(self, tag: str) -> None:
        element = self._open(tag)
        if tag in _VOID:
            self._close(element)
            return
        self._stack.append(element)
        self._open_names[tag] = self._open_names.get(tag, 0) + 1

    def end(self, tag: str) -> None:
        if not self._open_names.get(tag):
            return
        while True:
            element = self._pop()
            if element.name == tag:
                return

    def text(self, data: str) -> None:
        if self._title is not None:
            self._title.append(data)
        self._text(data if self._pre else _SPACE.sub(" ", data))

    def finish(self) -> None:
        while self._stack:  # elements never closed end with the page
            self._pop()

    def _pop(self) -> _Open:
        element = self._stack.pop()
        self._open_names[element.name] -= 1
        self._close(element)
        return element

    def _open(self, tag: str) -> _Open:
        table = self._tables[-1] if self._tables else None
        if tag in _DROP:
            self._drop += 1
            if tag == "title" and not self._title_seen:
                self._title_seen = True
                self._title = []
                return _Open(tag, "title")
            return _Open(tag, "drop")
        if tag == "table":
            self._tables.append(_Table())
            return _Open(tag, "table")
        if table is not None and table.cell is None:
            # Inside a table but outside its cells only rows and cells count.
            parent = self._stack[-1] if self._stack else None
            if tag == "tr":
                row: list[_Pieces] = []
                table.rows.append(row)
                return _Open(tag, "row", row=row)
            if tag in ("td", "th") and parent is not None and parent.role == "row":
                table.cell = []
                return _Open(tag, "cell", row=parent.row)
            return _Open(tag, "plain")
        if tag == "pre":
            self._marker(f"\n\n{_FENCE}\n")
            self._pre += 1
            return _Open(tag, "pre", suffix=f"\n{_FENCE}\n\n")
        if tag == "br":
            self._marker("\n")
        elif tag in _HEADINGS:
            self._marker("\n\n" + "#" * _HEADINGS[tag] + " ")
            return _Open(tag, "marked", suffix="\n\n")
        elif tag == "li":
            self._marker("\n- ")
        elif tag in _BLOCKS:
            self._marker("\n\n")
            return _Open(tag, "marked", suffix="\n\n")
        return _Open(tag, "plain")

    def _close(self, element: _Open) -> None:
        role = element.role
        if role in ("drop", "title"):
            self._drop -= 1
            if role == "title" and self._title is not None:
                self.title = _SPACE.sub(" ", "".join(self._title)).strip()
                self._title = None
        elif role == "table":
            self._close_table(self._tables.pop())
        elif role == "cell":
            table = self._tables[-1]
            if element.row is not None and table.cell is not None:
                element.row.append(table.cell)
            table.cell = None
        elif role == "pre":
            self._pre -= 1
            self._marker(element.suffix)
        elif element.suffix:
            self._marker(element.suffix)

    def _close_table(self, table: _Table) -> None:
        outer = self._tables[-1] if self._tables else None
        if outer is not None:
            # A table inside a cell reads as its cells' words (a table cannot sit in a cell).
            if outer.cell is not None and not self._drop:
                outer.cell.append([cell for row in table.rows for cell in row])
            return
        rows = [[_joined(cell) for cell in row] for row in table.rows]
        self._text(f"\n\n{markdown_table([row for row in rows if any(row)])}\n\n")

    def _text(self, text: str) -> None:
        if self._drop:
            return
        if not self._tables:
            self._out.append(text)
            return
        cell = self._tables[-1].cell
        if cell is not None and (stripped := text.strip()):
            cell.append(stripped)  # a cell reads as its strings joined by spaces

    def _marker(self, text: str) -> None:
        # Markup inside a table cell is flattened away: a cell holds one line of text.
        if not self._drop and not self._tables:
            self._out.append(text)


def _joined(pieces: _Pieces) -> str:
    """A cell's strings, nested tables included, joined by spaces (without recursion: 1 MB of
    nested tables is 50,000 levels)."""
    words: list[str] = []
    stack = [iter(pieces)]
    while stack:
        piece = next(stack[-1], None)
        if piece is None:
            stack.pop()
        elif isinstance(piece, str):
            words.append(piece)
        else:
            stack.append(iter(piece))
    return " ".join(words)


def _tidy(raw: str) -> str:
    """Strip the spaces markup leaves around lines; keep at most one blank line between blocks."""
    lines: list[str] = []
    in_fence = False
    for line in raw.split("\n"):
        if line.strip() == _FENCE:
            in_fence = not in_fence
            lines.append(_FENCE)
            continue
        # Neighbouring strings ("a " + " b") can still leave double spaces outside <pre>.
        line = line.rstrip() if in_fence else _SPACES.sub(" ", line.strip())
        if line or in_fence:
            lines.append(line)
        elif lines and lines[-1] != "":
            lines.append("")
    return "\n".join(lines).strip()
