"""Documents dropped into a chat, turned into text for the user message. Qt-free.

`extract` is blocking (a big PDF takes seconds) and parses untrusted files, so the app reads
through a `ReaderPool`: each document in its own process, under `DocumentLimits` (time, memory,
output, zip expansion). Every problem with the file itself is an UnsupportedDocumentError whose
first sentence names the file; a limit that was hit is its subclass DocumentLimitError.
"""

from engine.documents.document import ExtractedDocument, Kind
from engine.documents.extract import MAX_BYTES, MAX_CSV_ROWS, SUPPORTED_SUFFIXES, extract
from engine.documents.limits import DocumentLimitError, DocumentLimits
from engine.documents.prompt import (
    FitReport,
    attachment_block,
    check_fits,
    compose_user_message,
    escape_document_text,
)
from engine.documents.sandbox import ReaderPool, Reading, ReadStats
from engine.errors import UnsupportedDocumentError

__all__ = [
    "MAX_BYTES",
    "MAX_CSV_ROWS",
    "SUPPORTED_SUFFIXES",
    "DocumentLimitError",
    "DocumentLimits",
    "ExtractedDocument",
    "FitReport",
    "Kind",
    "ReadStats",
    "ReaderPool",
    "Reading",
    "UnsupportedDocumentError",
    "attachment_block",
    "check_fits",
    "compose_user_message",
    "escape_document_text",
    "extract",
]
