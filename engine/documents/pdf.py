"""PDF text with pypdf, page by page, with a marker before each page so answers can cite pages.

Bounded for hostile files. The page count is checked before any page is read; the text is
counted as it grows. Pages that share their content and resources are read once (a PDF can point
every page at one huge content stream). A page whose decoded drawing instructions are huge is left
out unread, and one that takes too long is cut off (alarm.time_limit): pypdf parses content at
several seconds a megabyte.
"""

from __future__ import annotations

import io
import logging
from typing import Literal

from pypdf import PageObject, PasswordType, PdfReader
from pypdf.errors import DependencyError
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, StreamObject

from engine.documents.alarm import Expired, time_limit
from engine.documents.document import Body, human_size, normalize_newlines
from engine.documents.limits import DocumentLimitError, DocumentLimits, too_much_text
from engine.errors import UnsupportedDocumentError

log = logging.getLogger(__name__)

PAGE_MARKER = "--- Page {n} ---"
_LISTED_PAGES = 10
_IDENTITY_DEPTH = 6  # resources nest a few levels (/Font -> /F1 -> font); deeper is not shared

Problem = Literal["failed", "too_large", "too_slow"]
Outcome = Problem | Literal["blank"]


def read_pdf(data: bytes, name: str, *, limits: DocumentLimits | None = None) -> Body:
    """Each page's text after a "--- Page N ---" line; blank pages stay so numbers stay true."""
    limits = limits or DocumentLimits()
    reader = PdfReader(io.BytesIO(data))
    _unlock(reader, name)
    pages = reader.pages
    # pypdf counts the pages of the page tree, not its /Count, within its own bounds on the tree
    # (100,000 entries); reading them is what costs.
    n_pages = len(pages)
    _check_page_count(name, n_pages, limits.max_pages)
    if n_pages == 0:
        raise UnsupportedDocumentError(f"{name} is empty: the PDF has no pages.")

    texts = _PageTexts(name, limits)
    parts: list[str] = []
    offsets: list[int] = []
    outcomes: dict[Outcome, list[int]] = {
        o: [] for o in ("failed", "too_large", "too_slow", "blank")
    }
    pos = 0
    for n, page in enumerate(pages, start=1):
        page_text, problem = texts.read(page, n)
        if problem is not None:
            outcomes[problem].append(n)
        elif not page_text:
            outcomes["blank"].append(n)
        head = ("\n\n" if parts else "") + PAGE_MARKER.format(n=n)
        # A blank page's marker is followed straight by the next one, without a stray newline.
        part = f"{head}\n{page_text}" if page_text else head
        parts.append(part)
        offsets.append(pos + len(part) - len(page_text))
        pos += len(part)
        if pos > limits.max_chars:
            raise too_much_text(name, limits.max_chars)

    unread = sum(len(outcomes[o]) for o in ("failed", "too_large", "too_slow"))
    if unread == n_pages and (outcomes["too_large"] or outcomes["too_slow"]):
        raise DocumentLimitError(
            f"{name} could not be read because its pages are too complex to read in time: "
            "export it again as a plain PDF (or print it to PDF) and attach that.",
            limit="size",
        )
    if unread == n_pages:
        raise UnsupportedDocumentError(
            f"{name} could not be read because the PDF looks damaged. No page could be read."
        )
    if unread + len(outcomes["blank"]) == n_pages:
        raise UnsupportedDocumentError(
            f"{name} has no text to read: it looks like a scanned document. "
            "Reading text from images (OCR) is not supported yet."
        )
    return Body(
        text="".join(parts),
        pages=n_pages,
        page_offsets=tuple(offsets),
        warnings=_warnings(outcomes, limits),
    )


class _PageTexts:
    """Page text, once per distinct (content, resources): a PDF may point all its pages at one
    huge content stream, and pypdf would parse it again for every page."""

    def __init__(self, name: str, limits: DocumentLimits) -> None:
        self._name = name
        self._limits = limits
        self._seen: dict[object, tuple[str, Problem | None]] = {}

    def read(self, page: PageObject, n: int) -> tuple[str, Problem | None]:
        key = (_identity(page.raw_get("/Contents")), _identity(page.raw_get("/Resources")))
        if key not in self._seen:
            self._seen[key] = self._extract(page, n)
        return self._seen[key]

    def _extract(self, page: PageObject, n: int) -> tuple[str, Problem | None]:
        try:
            if _content_bytes(page) > self._limits.max_page_content_bytes:
                log.warning("%s: page %d has too much content to read", self._name, n)
                return "", "too_large"
            with time_limit(self._limits.page_seconds):
                text = page.extract_text()
            return normalize_newlines(text).strip(), None
        except Expired:
            log.warning("%s: page %d took too long to read", self._name, n)
            return "", "too_slow"
        except Exception as e:  # pypdf raises many types on one bad page; keep the other pages.
            log.warning("%s: page %d could not be read: %r", self._name, n, e)
            return "", "failed"


def _identity(obj: object, depth: int = 0) -> object:
    """Equal for two entries that must give the same text: the same reference, or direct
    objects with equal contents (a writer may copy the resources into every page)."""
    if isinstance(obj, IndirectObject):
        return ("ref", obj.idnum, obj.generation)
    if depth > _IDENTITY_DEPTH or isinstance(obj, StreamObject):
        return ("object", id(obj))
    if isinstance(obj, DictionaryObject):
        items = sorted((str(k), _identity(v, depth + 1)) for k, v in dict.items(obj))
        return ("dict", tuple(items))
    if isinstance(obj, ArrayObject):
        return ("array", tuple(_identity(item, depth + 1) for item in obj))
    return ("value", type(obj).__name__, repr(obj))


def _content_bytes(page: PageObject) -> int:
    """The size of the page's decoded drawing instructions (pypdf keeps the decoded stream)."""
    raw = page.get("/Contents")
    if raw is None:
        return 0
    contents = raw.get_object()
    streams = contents if isinstance(contents, ArrayObject) else [contents]
    total = 0
    for item in streams:
        stream = item.get_object()
        if isinstance(stream, StreamObject):
            total += len(stream.get_data())
    return total


def _check_page_count(name: str, n_pages: int, max_pages: int) -> None:
    if n_pages > max_pages:
        raise DocumentLimitError(
            f"{name} has {n_pages:,} pages, more than the {max_pages:,} that can be attached: "
            "attach only the pages you need (in Preview, select them and drag them out).",
            limit="size",
        )


def _warnings(outcomes: dict[Outcome, list[int]], limits: DocumentLimits) -> tuple[str, ...]:
    def were(pages: list[int]) -> str:
        return "was" if len(pages) == 1 else "were"

    warnings = []
    if blank := outcomes["blank"]:
        warnings.append(
            f"{_pages_phrase(blank)} had no extractable text (scanned images need OCR, which is "
            "not supported yet)."
        )
    if failed := outcomes["failed"]:
        warnings.append(f"{_pages_phrase(failed)} could not be read and {were(failed)} left out.")
    if large := outcomes["too_large"]:
        warnings.append(
            f"{_pages_phrase(large)} {were(large)} left out: too complex to read (over "
            f"{human_size(limits.max_page_content_bytes)} of drawing instructions)."
        )
    if slow := outcomes["too_slow"]:
        warnings.append(
            f"{_pages_phrase(slow)} {were(slow)} left out: reading took longer than "
            f"{limits.page_seconds:g} s."
        )
    return tuple(warnings)


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
