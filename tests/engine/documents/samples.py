"""Real documents for the tests, written by the real libraries (fpdf2, pypdf, python-docx)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import docx
from fpdf import FPDF
from pypdf import PdfReader, PdfWriter


def pdf_bytes(pages: Sequence[str]) -> bytes:
    """One PDF page per string; an empty string gives a page with only a drawing, like a scan."""
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 8, text)
        else:
            pdf.rect(20, 20, 120, 160, style="F")
    return bytes(pdf.output())


def write_pdf(
    path: Path,
    pages: Sequence[str],
    *,
    user_password: str | None = None,
    owner_password: str | None = None,
) -> Path:
    data = pdf_bytes(pages)
    if user_password is not None:
        writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
        # RC4: pypdf writes it without the optional `cryptography` package that AES needs.
        writer.encrypt(user_password, owner_password, algorithm="RC4-128")
        out = io.BytesIO()
        writer.write(out)
        data = out.getvalue()
    path.write_bytes(data)
    return path


def write_docx(path: Path) -> Path:
    """A heading, a paragraph, a bullet, a 2x3 table and a subheading after it."""
    document = docx.Document()
    document.add_heading("Quarterly report", level=1)
    document.add_paragraph("Revenue grew in every region.")
    document.add_paragraph("Costs fell", style="List Bullet")
    rows = [("Region", "Revenue"), ("North", "1,200"), ("South", "9|8")]
    table = document.add_table(rows=len(rows), cols=2)
    for row, cells in zip(table.rows, rows, strict=True):
        for cell, text in zip(row.cells, cells, strict=True):
            cell.text = text
    document.add_heading("Outlook", level=2)
    document.add_paragraph("Steady.")
    document.save(str(path))
    return path
