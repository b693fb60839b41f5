"""HTML pages with beautifulsoup4: readable text with headings, list items and paragraph breaks."""

from __future__ import annotations

import re

from bs4 import BeautifulSoup, NavigableString

from engine.documents.document import Body, markdown_table
from engine.documents.text import reject_binary

# Never visible as text, or code the model should not read as the page's content. Not <head>:
# html.parser nests the whole body inside an unclosed <head>.
_DROP = ["script", "style", "noscript", "template", "svg", "canvas", "iframe", "object", "title"]
_HEADINGS = ["h1", "h2", "h3", "h4", "h5", "h6"]
_BLOCKS = [
    *("p", "div", "section", "article", "main", "header", "footer", "aside", "nav", "blockquote"),
    *("ul", "ol", "dl", "dt", "dd", "figure", "figcaption", "form", "fieldset"),
    *("address", "details", "summary", "hr"),
]
_FENCE = "```"
_SPACE = re.compile(r"\s+")
_SPACES = re.compile(r" {2,}")


def read_html(data: bytes, name: str) -> Body:
    """Pass bytes so beautifulsoup honours the page's own <meta charset> before guessing."""
    reject_binary(data, name)
    soup = BeautifulSoup(data, "html.parser")
    title = _title(soup)
    for tag in soup(_DROP):
        tag.decompose()
    _collapse_whitespace(soup)
    _mark_structure(soup)
    text = _tidy(soup.get_text())
    if title and text and not text.startswith(f"# {title}\n") and text != f"# {title}":
        text = f"# {title}\n\n{text}"
    return Body(text=text)


def _title(soup: BeautifulSoup) -> str:
    tag = soup.find("title")
    return _SPACE.sub(" ", tag.get_text()).strip() if tag is not None else ""


def _collapse_whitespace(soup: BeautifulSoup) -> None:
    # Source line breaks are layout of the HTML file, not of the page; <pre> is the exception.
    # Exact type: Doctype and Comment subclass NavigableString and must stay invisible.
    for string in soup.find_all(string=True):
        if type(string) is NavigableString and string.find_parent("pre") is None:
            string.replace_with(_SPACE.sub(" ", str(string)))


def _mark_structure(soup: BeautifulSoup) -> None:
    # Innermost tables first, so an outer table sees a nested one as plain text in its cell.
    for table in reversed(soup("table")):
        rows = [
            [cell.get_text(" ", strip=True) for cell in row.find_all(["td", "th"], recursive=False)]
            for row in table.find_all("tr")
        ]
        table.replace_with(f"\n\n{markdown_table([r for r in rows if any(r)])}\n\n")
    for br in soup("br"):
        br.replace_with("\n")
    for pre in soup("pre"):
        pre.insert_before(f"\n\n{_FENCE}\n")
        pre.insert_after(f"\n{_FENCE}\n\n")
    for heading in soup(_HEADINGS):
        level = int(heading.name[1])
        heading.insert_before("\n\n" + "#" * level + " ")
        heading.insert_after("\n\n")
    for item in soup("li"):
        item.insert_before("\n- ")
    for block in soup(_BLOCKS):
        block.insert_before("\n\n")
        block.insert_after("\n\n")


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
