"""PDF text with pypdf, page by page, with a marker before each page so answers can cite pages."""

from __future__ import annotations

import io
import logging

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError

from engine.documents.document import Body, normalize_newlines
from engine.errors import UnsupportedDocumentError

log = logging.getLogger(__name__)

PAGE_MARKER = "--- Page {n} ---"
_LISTED_PAGES = 10


def read_pdf(data: bytes, name: str) -> Body:
    """Each page's text after a "--- Page N ---" line; blank pages stay so numbers stay true."""
    reader = PdfReader(io.BytesIO(data))
    _unlock(reader, name)
    n_pages = len(reader.pages)
    if n_pages == 0:
        raise UnsupportedDocumentError(f"{name} is empty: the PDF has no pages.")

    parts: list[str] = []
    offsets: list[int] = []
    blank: list[int] = []
    failed: list[int] = []
    pos = 0
    for n, page in enumerate(reader.pages, start=1):
        try:
            page_text = normalize_newlines(page.extract_text()).strip()
        except Exception as e:  # pypdf raises many types on one bad page; keep the other pages.
            log.warning("%s: page %d could not be read: %r", name, n, e)
            page_text = ""
            failed.append(n)
        if not page_text and n not in failed:
            blank.append(n)
        head = ("\n\n" if parts else "") + PAGE_MARKER.format(n=n)
        # A blank page's marker is followed straight by the next one, without a stray newline.
        part = f"{head}\n{page_text}" if page_text else head
        parts.append(part)
        offsets.append(pos + len(part) - len(page_text))
        pos += len(part)

    if len(failed) == n_pages:
        raise UnsupportedDocumentError(
            f"{name} could not be read because the PDF looks damaged. No page could be read."
        )
    if len(blank) + len(failed) == n_pages:
        raise UnsupportedDocumentError(
            f"{name} has no text to read: it looks like a scanned document. "
            "Reading text from images (OCR) is not supported yet."
        )
    warnings = []
    if blank:
        warnings.append(
            f"{_pages_phrase(blank)} had no extractable text (scanned images need OCR, "
            "which is not supported yet)."
        )
    if failed:
        verb = "was" if len(failed) == 1 else "were"
        warnings.append(f"{_pages_phrase(failed)} could not be read and {verb} left out.")
    return Body(
        text="".join(parts), pages=n_pages, page_offsets=tuple(offsets), warnings=tuple(warnings)
    )


def _unlock(reader: PdfReader, name: str) -> None:
    """Open PDFs that are encrypted with an empty user password, as viewers do; refuse the rest."""
    if not reader.is_encrypted:
        return
    try:
        result = reader.decrypt("")
    except DependencyError as e:
        raise UnsupportedDocumentError(
            f"{name} is encrypted with AES, which this installation cannot decrypt. "
            f"Save an unencrypted copy and try again. ({e})"
        ) from e
    except NotImplementedError as e:
        raise UnsupportedDocumentError(
            f"{name} uses an encryption method that is not supported. "
            f"Save an unencrypted copy and try again. ({e})"
        ) from e
    if result == PasswordType.NOT_DECRYPTED:
        raise UnsupportedDocumentError(
            f"{name} is password-protected. Open it in Preview, export an unprotected copy "
            "and drop that instead."
        )


def _pages_phrase(pages: list[int]) -> str:
    if len(pages) == 1:
        return f"Page {pages[0]}"
    listed = ", ".join(str(p) for p in pages[:_LISTED_PAGES])
    more = f" and {len(pages) - _LISTED_PAGES} more" if len(pages) > _LISTED_PAGES else ""
    return f"{len(pages)} pages ({listed}{more})"
