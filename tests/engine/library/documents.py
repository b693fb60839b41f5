"""Real documents for the library and browser tests, written by fpdf2 and python-docx."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import docx
from fpdf import FPDF


def write_pdf(path: Path, pages: Sequence[str], *, font_size: int = 10) -> Path:
    """One PDF page per string (the text must fit on it); "" gives a page with only a drawing."""
    pdf = FPDF()
    pdf.set_auto_page_break(False)
    pdf.set_font("Helvetica", size=font_size)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, font_size * 0.45, text)
        else:
            pdf.rect(20, 20, 120, 160, style="F")
    pdf.output(str(path))
    return path


def write_docx(path: Path, paragraphs: Sequence[str], *, heading: str | None = None) -> Path:
    document = docx.Document()
    if heading:
        document.add_heading(heading, level=1)
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    document.save(str(path))
    return path


def write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def touch_later(path: Path, seconds: float = 10.0) -> None:
    """Move a file's modification time forward, as a save a few seconds later would."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + int(seconds * 1e9)))


_WORD_TEXT = (
    "river harbor lantern copper meadow orbit signal violet basalt canyon ember falcon glacier "
    "hollow island juniper kestrel lagoon marble nectar obsidian pepper quartz raven saffron "
    "timber umber velvet willow yarrow zephyr anchor beacon cedar dune fjord grove heron"
)
WORDS = _WORD_TEXT.split()


def filler(seed: int, words: int) -> str:
    """Deterministic prose-like text: sentences of the WORDS list, different for each seed."""
    out = []
    for i in range(words):
        word = WORDS[(seed * 7919 + i * 104729 + (i * i) % 13) % len(WORDS)]
        out.append(word.capitalize() if i % 12 == 0 else word)
        if i % 12 == 11:
            out[-1] += "."
    return " ".join(out)
