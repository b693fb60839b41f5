"""Word documents made by python-docx."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import docx
import pytest

from engine.documents import UnsupportedDocumentError, extract
from tests.engine.documents.samples import write_docx


def test_headings_paragraphs_lists_and_tables_keep_their_order(tmp_path: Path) -> None:
    doc = extract(write_docx(tmp_path / "report.docx"))

    assert (doc.kind, doc.pages, doc.warnings) == ("docx", None, ())
    assert doc.text == (
        "# Quarterly report\n\n"
        "Revenue grew in every region.\n\n"
        "- Costs fell\n\n"
        "| Region | Revenue |\n|---|---|\n| North | 1,200 |\n| South | 9\\|8 |\n\n"
        "## Outlook\n\n"
        "Steady."
    )


def test_a_truncated_docx_is_reported_as_damaged(tmp_path: Path) -> None:
    data = write_docx(tmp_path / "full.docx").read_bytes()
    cut = tmp_path / "cut.docx"
    cut.write_bytes(data[: len(data) // 2])

    with pytest.raises(UnsupportedDocumentError, match=r"^cut\.docx could not be read because"):
        extract(cut)


def test_a_zip_without_a_word_document_is_not_a_docx(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hi")
    path = tmp_path / "archive.docx"
    path.write_bytes(buffer.getvalue())

    with pytest.raises(UnsupportedDocumentError, match=r"^archive\.docx .* not a valid Word file"):
        extract(path)


def test_a_document_without_text_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "blank.docx"
    document = docx.Document()
    document.add_paragraph("   ")
    document.save(str(path))

    with pytest.raises(UnsupportedDocumentError, match=r"^blank\.docx is empty"):
        extract(path)


def test_docx_content_is_recognised_whatever_the_name(tmp_path: Path) -> None:
    path = write_docx(tmp_path / "report.docx").rename(tmp_path / "report.bin")

    assert extract(path).kind == "docx"
