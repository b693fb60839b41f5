"""The front door: kinds, identity, limits, and one error type for every bad file."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import pytest

from engine.documents import SUPPORTED_SUFFIXES, UnsupportedDocumentError, extract
from engine.documents.extract import detect_kind
from engine.errors import EngineError

# Old Office files and password-protected new ones share this compound-file signature.
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(64)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_the_result_carries_the_files_identity(tmp_path: Path) -> None:
    data = b"hello\n"
    doc = extract(str(_write(tmp_path / "hello.txt", data)))

    assert doc.name == "hello.txt"
    assert doc.path == tmp_path / "hello.txt"
    assert doc.sha256 == hashlib.sha256(data).hexdigest()
    assert doc.size_bytes == len(data)
    assert doc.page_offsets == ()
    assert doc.page_of(3) is None


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("a.TXT", "text"),
        ("a.md", "markdown"),
        ("a.swift", "code"),
        ("a.rs", "code"),
        ("a.yaml", "code"),
        ("Makefile", "code"),
        ("README", "text"),
        ("a.htm", "html"),
        ("a.tsv", "csv"),
    ],
)
def test_kinds_follow_the_extension_when_the_content_has_no_signature(name: str, kind: str) -> None:
    assert detect_kind(name, b"plain words") == kind


def test_the_common_formats_are_advertised() -> None:
    assert {".txt", ".md", ".pdf", ".docx", ".html", ".csv", ".py"} <= SUPPORTED_SUFFIXES


def test_errors_are_engine_errors() -> None:
    assert issubclass(UnsupportedDocumentError, EngineError)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.txt", b"", r"^empty\.txt is empty"),
        ("blank.md", b" \n\t\n", r"^blank\.md is empty"),
        ("data.xyz", b"words", r"^data\.xyz cannot be attached: \.xyz files are not supported\."),
        (
            "sheet.xlsx",
            b"PK\x03\x04rest",
            r"^sheet\.xlsx cannot be attached: .*export the sheet as \.csv",
        ),
        (
            "old.doc",
            OLE,
            r"^old\.doc .*save it as \.docx",
        ),
        (
            "locked.docx",
            OLE,
            r"^locked\.docx is password",
        ),
        ("._report.pdf", b"%PDF-1.4", r"^\._report\.pdf .*macOS metadata"),
    ],
)
def test_bad_files_get_a_message_that_names_them(
    tmp_path: Path, name: str, data: bytes, message: str
) -> None:
    with pytest.raises(UnsupportedDocumentError, match=message):
        extract(_write(tmp_path / name, data))


def test_a_file_over_the_limit_is_refused_with_the_numbers(tmp_path: Path) -> None:
    path = _write(tmp_path / "big.txt", b"x" * 2_500_000)

    with pytest.raises(UnsupportedDocumentError) as caught:
        extract(path, max_bytes=1_000_000)

    assert str(caught.value) == (
        "big.txt is too large to attach: it is 2.5 MB, and the limit is 1 MB."
    )


def test_text_that_mentions_the_pdf_signature_stays_text(tmp_path: Path) -> None:
    doc = extract(_write(tmp_path / "notes.md", b"# Notes\n\nPDF files start with %PDF-1.7.\n"))

    assert doc.kind == "markdown"


def test_a_pipe_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "stream.txt"
    os.mkfifo(path)

    with pytest.raises(UnsupportedDocumentError, match=r"^stream\.txt .* not a regular file\."):
        extract(path)


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedDocumentError, match=r"^gone\.pdf could not be found\."):
        extract(tmp_path / "gone.pdf")


def test_a_folder_is_reported(tmp_path: Path) -> None:
    (tmp_path / "papers").mkdir()

    with pytest.raises(UnsupportedDocumentError, match=r"^papers is a folder, not a file\."):
        extract(tmp_path / "papers")


def test_an_unreadable_file_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path / "private.txt", b"secret")

    def denied(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    # chmod cannot lock out root, which runs CI; the error is what matters.
    monkeypatch.setattr(Path, "open", denied)
    with pytest.raises(UnsupportedDocumentError, match=r"^private\.txt could not be opened"):
        extract(path)


@pytest.mark.parametrize("suffix", [".pdf", ".docx", ".html", ".csv", ".md", ".py", ".txt", ""])
@pytest.mark.parametrize("seed", range(3))
def test_random_bytes_raise_only_unsupported_document_error(
    tmp_path: Path, suffix: str, seed: int
) -> None:
    rng = random.Random(seed)
    junk = bytes(rng.randrange(256) for _ in range(2048))
    for prefix in (b"", b"%PDF-1.7\n", b"PK\x03\x04"):
        path = _write(tmp_path / f"junk{suffix}", prefix + junk)
        with pytest.raises(UnsupportedDocumentError):
            extract(path)
