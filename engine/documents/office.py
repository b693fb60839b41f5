"""Word (.docx) files with python-docx: paragraphs in order, headings as #, tables as Markdown."""

from __future__ import annotations

import io
import re

from docx import Document
from docx.table import Table
from docx.text.paragraph import Paragraph

from engine.documents.document import Body, markdown_table

_HEADING = re.compile(r"^Heading (\d)$")


def read_docx(data: bytes, name: str) -> Body:
    """Body text in reading order; headers, footers, comments and text boxes are left out."""
    document = Document(io.BytesIO(data))
    blocks: list[str] = []
    for item in document.iter_inner_content():
        if isinstance(item, Paragraph):
            line = _paragraph(item)
            if line:
                blocks.append(line)
        elif isinstance(item, Table):
            table = _table(item)
            if table:
                blocks.append(table)
    return Body(text="\n\n".join(blocks))


def _paragraph(paragraph: Paragraph) -> str:
    text = paragraph.text.strip()
    if not text:
        return ""
    style = (paragraph.style.name if paragraph.style is not None else None) or ""
    if style == "Title":
        return f"# {text}"
    heading = _HEADING.match(style)
    if heading:
        # Markdown stops at six levels; Word goes to nine.
        return "#" * min(int(heading.group(1)), 6) + " " + text
    if style.startswith("List Number"):
        return f"1. {text}"
    if style.startswith("List"):
        return f"- {text}"
    return text


def _table(table: Table) -> str:
    rows = [[cell.text for cell in row.cells] for row in table.rows]
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    return markdown_table(rows)
