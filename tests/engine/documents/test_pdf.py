"""PDFs made by fpdf2 (and encrypted by pypdf), read back page by page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pypdf import PageObject, PdfReader
from pypdf.errors import DependencyError
from pypdf.generic import DictionaryObject

from engine.documents import DocumentLimitError, DocumentLimits, UnsupportedDocumentError, extract
from engine.testing.hostile_documents import pdf_many_pages, pdf_shared_stream, pdf_with_pages
from tests.engine.documents.samples import pdf_bytes, write_pdf

PAGES = ["Alpha page one.\nIt has two lines.", "Beta page two.", "Gamma page three."]


def test_pages_are_marked_and_counted(tmp_path: Path) -> None:
    doc = extract(write_pdf(tmp_path / "report.pdf", PAGES))

    assert (doc.kind, doc.pages, doc.warnings) == ("pdf", 3, ())
    assert doc.text.startswith("--- Page 1 ---\nAlpha page one.")
    assert "\n\n--- Page 2 ---\nBeta page two.\n\n--- Page 3 ---\nGamma" in doc.text


def test_page_offsets_point_at_each_pages_own_text(tmp_path: Path) -> None:
    doc = extract(write_pdf(tmp_path / "report.pdf", PAGES))

    assert len(doc.page_offsets) == 3
    for offset, first_words in zip(doc.page_offsets, ["Alpha", "Beta", "Gamma"], strict=True):
        assert doc.text[offset:].startswith(first_words)
    assert doc.page_of(doc.text.index("Beta")) == 2
    assert doc.page_of(doc.text.index("Gamma") + 3) == 3
    assert doc.page_of(0) == 1


def test_a_pdf_without_any_text_is_refused_as_scanned(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedDocumentError, match=r"^scan\.pdf has no text.*OCR"):
        extract(write_pdf(tmp_path / "scan.pdf", ["", ""]))


def test_a_blank_last_page_keeps_its_offset_inside_the_text(tmp_path: Path) -> None:
    doc = extract(write_pdf(tmp_path / "tail.pdf", ["Only page with words.", ""]))

    assert doc.text.endswith("--- Page 2 ---")
    assert doc.page_offsets[1] == len(doc.text)
    assert doc.page_of(len(doc.text)) == 2


def test_blank_pages_are_kept_and_reported(tmp_path: Path) -> None:
    doc = extract(write_pdf(tmp_path / "mixed.pdf", ["Words here.", "", "More words."]))

    assert doc.pages == 3
    assert "--- Page 2 ---\n\n--- Page 3 ---\nMore words." in doc.text
    assert doc.page_of(doc.page_offsets[1]) == 2
    assert doc.warnings == (
        "Page 2 had no extractable text (scanned images need OCR, which is not supported yet).",
    )


def test_a_password_protected_pdf_is_refused(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "secret.pdf", PAGES, user_password="hunter2")

    with pytest.raises(UnsupportedDocumentError, match=r"^secret\.pdf is password-protected\."):
        extract(path)


def test_a_pdf_encrypted_with_an_empty_user_password_opens(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "locked.pdf", PAGES, user_password="", owner_password="owner")
    assert PdfReader(path).is_encrypted

    doc = extract(path)

    assert doc.pages == 3
    assert "Beta page two." in doc.text


def test_encryption_this_install_cannot_decrypt_is_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_pdf(tmp_path / "aes.pdf", PAGES, user_password="", owner_password="owner")

    def needs_cryptography(self: PdfReader, password: str) -> object:
        raise DependencyError("cryptography>=3.1 is required for AES algorithm")

    monkeypatch.setattr(PdfReader, "decrypt", needs_cryptography)
    with pytest.raises(UnsupportedDocumentError, match=r"^aes\.pdf is encrypted with AES"):
        extract(path)


@pytest.mark.parametrize("keep", [0.5, 0.1])
def test_a_truncated_pdf_is_reported_as_damaged(tmp_path: Path, keep: float) -> None:
    data = pdf_bytes(PAGES)
    path = tmp_path / "cut.pdf"
    path.write_bytes(data[: int(len(data) * keep)])

    with pytest.raises(UnsupportedDocumentError, match=r"^cut\.pdf could not be read because"):
        extract(path)


def test_a_file_named_pdf_without_the_pdf_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "fake.pdf"
    path.write_text("just some text")

    with pytest.raises(UnsupportedDocumentError, match=r"^fake\.pdf .* not a valid PDF\."):
        extract(path)


def test_pdf_content_is_recognised_whatever_the_name(tmp_path: Path) -> None:
    path = tmp_path / "download.txt"
    path.write_bytes(pdf_bytes(PAGES))

    assert extract(path).kind == "pdf"


def test_pages_that_share_one_stream_are_parsed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = pdf_shared_stream(tmp_path / "shared.pdf", pages=20, lines=300)
    calls = []
    original = PageObject.extract_text

    def counted(self: PageObject, *args: Any, **kwargs: Any) -> str:
        calls.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PageObject, "extract_text", counted)
    doc = extract(path)

    assert len(calls) == 1
    assert doc.pages == 20
    page_texts = [doc.text[start:].split("\n\n--- Page")[0] for start in doc.page_offsets]
    assert len(set(page_texts)) == 1
    assert page_texts[0].startswith("Line 0 of the one stream every page shares.\nLine 1 ")
    assert page_texts[0].endswith("Line 299 of the one stream every page shares.")


def test_a_pdf_with_too_many_pages_is_refused_before_reading_them(tmp_path: Path) -> None:
    path = pdf_many_pages(tmp_path / "pages.pdf", pages=5_000)

    with pytest.raises(DocumentLimitError) as caught:
        extract(path, limits=DocumentLimits(max_pages=2_000))

    assert caught.value.limit == "size"
    assert str(caught.value).startswith(
        "pages.pdf has 5,000 pages, more than the 2,000 that can be attached: attach only"
    )


def test_a_page_count_that_lies_is_checked_against_the_pages(tmp_path: Path) -> None:
    path = pdf_many_pages(tmp_path / "liar.pdf", pages=5_000, honest_count=False)
    tree = PdfReader(path).root_object["/Pages"].get_object()
    assert isinstance(tree, DictionaryObject) and tree["/Count"] == 1

    with pytest.raises(DocumentLimitError, match=r"^liar\.pdf has 5,000 pages"):
        extract(path, limits=DocumentLimits(max_pages=2_000))


def test_text_past_the_character_limit_stops_the_reading(tmp_path: Path) -> None:
    path = pdf_shared_stream(tmp_path / "long.pdf", pages=20, lines=300)  # 14,000 chars a page

    with pytest.raises(DocumentLimitError, match=r"^long\.pdf has too much text .* 50,000 char"):
        extract(path, limits=DocumentLimits(max_chars=50_000))


def test_a_page_with_huge_drawing_instructions_is_left_out_with_a_warning(tmp_path: Path) -> None:
    path = pdf_with_pages(
        tmp_path / "mixed.pdf",
        [b"72 720 Td (A normal page.) Tj", b"72 720 Td (Heavy.) Tj " + b"0 0 Td\n" * 200_000],
    )

    doc = extract(path, limits=DocumentLimits(max_page_content_bytes=1_000_000))

    assert doc.text == "--- Page 1 ---\nA normal page.\n\n--- Page 2 ---"
    assert doc.warnings == (
        "Page 2 was left out: too complex to read (over 1 MB of drawing instructions).",
    )


def test_a_pdf_whose_every_page_is_too_complex_is_refused(tmp_path: Path) -> None:
    path = pdf_shared_stream(tmp_path / "heavy.pdf", pages=5, lines=30_000)  # 1.6 MB decoded

    with pytest.raises(DocumentLimitError, match=r"^heavy\.pdf could not be read because its pag"):
        extract(path, limits=DocumentLimits(max_page_content_bytes=1_000_000))
