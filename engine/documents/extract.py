"""A dropped file -> ExtractedDocument, or an UnsupportedDocumentError a user can act on.

Slow for big PDFs (seconds) and exposed to hostile files: the app runs it in a separate process
with time and memory limits (engine.documents.sandbox). The other limits (size, text, pages, zip
expansion) are checked here, so they hold in-process too. Nothing here touches Qt or the model.
"""

from __future__ import annotations

import hashlib
import io
import stat
import zipfile
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

from engine.documents.archive import check_archive
from engine.documents.document import Body, ExtractedDocument, Kind, human_size
from engine.documents.limits import MAX_BYTES, MAX_CSV_ROWS, DocumentLimits, too_much_text
from engine.documents.text import read_csv, read_plain
from engine.documents.webpage import read_html
from engine.errors import UnsupportedDocumentError

__all__ = ["KINDS_BY_SUFFIX", "MAX_BYTES", "MAX_CSV_ROWS", "SUPPORTED_SUFFIXES", "extract"]

_CODE = (
    "py pyi ipynb js mjs cjs jsx ts tsx swift m mm c h cc cpp cxx hpp hh cs java kt kts scala "
    "go rs rb php pl pm lua r jl dart zig nim hs ml ex exs erl clj el lisp sh bash zsh fish "
    "ps1 bat sql json jsonl yaml yml toml ini cfg conf xml plist css scss sass less vue svelte "
    "graphql proto gradle cmake mk tf dockerfile"
)
KINDS_BY_SUFFIX: dict[str, Kind] = {
    **{f".{s}": "code" for s in _CODE.split()},
    **{s: "text" for s in (".txt", ".text", ".log", ".rst", ".tex", ".org", ".adoc", ".srt")},
    **{s: "markdown" for s in (".md", ".markdown", ".mdown", ".mkd", ".mdx")},
    **{s: "html" for s in (".html", ".htm", ".xhtml")},
    **{s: "csv" for s in (".csv", ".tsv")},
    ".pdf": "pdf",
    ".docx": "docx",
}
SUPPORTED_SUFFIXES = frozenset(KINDS_BY_SUFFIX)
_CODE_NAMES = frozenset({"makefile", "dockerfile", "gemfile", "rakefile", "justfile", "cmakelists"})

_PDF_MAGIC = b"%PDF-"
_ZIP_MAGIC = b"PK\x03\x04"
# Old Word/Excel files, and Office files encrypted with a password, are OLE compound files.
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_HINTS = {
    ".doc": "It is an old Word file: save it as .docx in Word or Pages.",
    ".rtf": "Save it as .docx or .txt in TextEdit.",
    ".pages": "Export it as .docx or .pdf from Pages.",
    ".xlsx": "Spreadsheets are not supported yet: export the sheet as .csv.",
    ".xls": "Spreadsheets are not supported yet: export the sheet as .csv.",
    ".numbers": "Spreadsheets are not supported yet: export the sheet as .csv.",
    ".pptx": "Presentations are not supported yet: export it as .pdf.",
    ".key": "Presentations are not supported yet: export it as .pdf.",
}
_SUPPORTED_LIST = "Supported: .txt, .md, .pdf, .docx, .html, .csv and source code."

_Reader = Callable[[bytes, str], Body]

_KIND_NAMES: dict[Kind, str] = {
    "pdf": "PDF",
    "docx": "Word",
    "html": "HTML",
    "csv": "CSV",
    "text": "text",
    "markdown": "Markdown",
    "code": "source code",
}


def extract(
    path: str | Path,
    *,
    limits: DocumentLimits | None = None,
    max_bytes: int | None = None,
    max_csv_rows: int | None = None,
) -> ExtractedDocument:
    """Read `path` and return its text; bad input raises UnsupportedDocumentError, and only that
    (MemoryError aside: under a memory limit it means the limit, not a damaged file)."""
    limits = limits or DocumentLimits()
    if max_bytes is not None:
        limits = replace(limits, max_bytes=max_bytes)
    if max_csv_rows is not None:
        limits = replace(limits, max_csv_rows=max_csv_rows)
    path = Path(path)
    name = path.name
    data = _read(path, name, limits.max_bytes)
    kind = detect_kind(name, data)
    readers: dict[Kind, _Reader] = {
        "pdf": partial(_read_pdf, limits=limits),
        "docx": partial(_read_docx_checked, limits=limits),
        "html": read_html,
        "csv": partial(read_csv, max_rows=limits.max_csv_rows),
        "text": read_plain,
        "markdown": read_plain,
        "code": read_plain,
    }
    try:
        body = readers[kind](data, name)
    except (UnsupportedDocumentError, MemoryError):
        raise
    except Exception as e:  # parsers raise dozens of types on malformed files; the user needs one.
        raise UnsupportedDocumentError(
            f"{name} could not be read because it looks damaged or is not a real "
            f"{_KIND_NAMES[kind]} file."
        ) from e  # the parser's own words stay in the cause: details for a report, not the sentence
    if not body.text.strip():
        raise UnsupportedDocumentError(f"{name} is empty: it contains no text.")
    if len(body.text) > limits.max_chars:
        raise too_much_text(name, limits.max_chars)
    return ExtractedDocument(
        name=name,
        path=path,
        kind=kind,
        text=body.text,
        pages=body.pages,
        page_offsets=body.page_offsets,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        warnings=body.warnings,
    )


# pypdf and python-docx are imported by the first PDF or DOCX read (in a reader process): the
# app's window imports this module for its list of suffixes and must start quickly.
def _read_pdf(data: bytes, name: str, *, limits: DocumentLimits) -> Body:
    from engine.documents.pdf import read_pdf

    return read_pdf(data, name, limits=limits)


def _read_docx_checked(data: bytes, name: str, *, limits: DocumentLimits) -> Body:
    from engine.documents.office import read_docx

    check_archive(data, name, limits)  # before python-docx inflates anything
    return read_docx(data, name)


def detect_kind(name: str, data: bytes) -> Kind:
    """The format from the content where it has a signature, otherwise from the extension."""
    suffix = Path(name).suffix.lower()
    if data.startswith(_OLE_MAGIC):
        if suffix == ".docx":
            raise UnsupportedDocumentError(
                f"{name} is password-protected. Save an unprotected copy in Word and try again."
            )
        raise _unsupported(name, suffix)
    # Readers accept junk before the header, so a .pdf may too; elsewhere only a true start counts,
    # since a text file may well mention "%PDF-".
    if data.startswith(_PDF_MAGIC) or (suffix == ".pdf" and _PDF_MAGIC in data[:1024]):
        return "pdf"
    if suffix == ".pdf":
        raise UnsupportedDocumentError(
            f"{name} could not be read because it is not a valid PDF. The file may be damaged "
            "or only named .pdf."
        )
    if data.startswith(_ZIP_MAGIC) or suffix == ".docx":
        if _is_docx(data):
            return "docx"
        if suffix == ".docx":
            raise UnsupportedDocumentError(
                f"{name} could not be read because it looks damaged: it is not a valid Word file."
            )
        raise _unsupported(name, suffix)
    kind = KINDS_BY_SUFFIX.get(suffix)
    if kind is not None:
        return kind
    stem = Path(name).stem.lower()
    if not suffix or stem in _CODE_NAMES:
        # README, LICENSE, Makefile: extensionless files are text often enough to try.
        return "code" if stem in _CODE_NAMES else "text"
    raise _unsupported(name, suffix)


def _is_docx(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "word/document.xml" in archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def _unsupported(name: str, suffix: str) -> UnsupportedDocumentError:
    what = f"{suffix} files are" if suffix else "this kind of file is"
    hint = _HINTS.get(suffix, _SUPPORTED_LIST)
    return UnsupportedDocumentError(f"{name} cannot be attached: {what} not supported. {hint}")


def _read(path: Path, name: str, max_bytes: int) -> bytes:
    if name.startswith("._") or name == ".DS_Store":
        raise UnsupportedDocumentError(
            f"{name} cannot be attached: it is a hidden macOS metadata file, not a document."
        )
    try:
        if path.is_dir():
            raise UnsupportedDocumentError(
                f"{name} is a folder, not a file. Drop the documents inside it instead."
            )
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            # Reading a pipe or a device could block forever or never end.
            raise UnsupportedDocumentError(f"{name} cannot be attached: it is not a regular file.")
        size = info.st_size
        if size > max_bytes:
            raise UnsupportedDocumentError(
                f"{name} is too large to attach: it is {human_size(size)}, and the limit is "
                f"{human_size(max_bytes)}."
            )
        with path.open("rb") as f:
            # The file may still be growing (a download); never hold more than the limit.
            data = f.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise UnsupportedDocumentError(
                f"{name} is too large to attach: it is over the {human_size(max_bytes)} limit."
            )
    except FileNotFoundError:
        raise UnsupportedDocumentError(
            f"{name} could not be found. It may have been moved or deleted."
        ) from None
    except PermissionError:
        raise UnsupportedDocumentError(
            f"{name} could not be opened: permission denied. Check its sharing settings in Finder."
        ) from None
    except OSError as e:
        raise UnsupportedDocumentError(f"{name} could not be opened. ({e.strerror or e})") from e
    if not data:
        raise UnsupportedDocumentError(f"{name} is empty: the file has no content.")
    return data
