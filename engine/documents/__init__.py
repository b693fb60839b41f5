"""Documents dropped into a chat, turned into text for the user message. Qt-free.

`extract` is blocking (a big PDF takes seconds) and parses untrusted files, so the app reads
through a `ReaderPool`: each document in its own process, under `DocumentLimits` (time, memory,
output, zip expansion). Every problem with the file itself is an UnsupportedDocumentError whose
first sentence names the file; a limit that was hit is its subclass DocumentLimitError.

Names are imported on first use (engine/lazy.py): the app shows its window before MLX loads.
"""

from typing import TYPE_CHECKING

from engine.lazy import make_lazy

if TYPE_CHECKING:
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

_EXPORTS = {
    "DocumentLimitError": "engine.documents.limits",
    "DocumentLimits": "engine.documents.limits",
    "ExtractedDocument": "engine.documents.document",
    "FitReport": "engine.documents.prompt",
    "Kind": "engine.documents.document",
    "MAX_BYTES": "engine.documents.extract",
    "MAX_CSV_ROWS": "engine.documents.extract",
    "ReadStats": "engine.documents.sandbox",
    "ReaderPool": "engine.documents.sandbox",
    "Reading": "engine.documents.sandbox",
    "SUPPORTED_SUFFIXES": "engine.documents.extract",
    "UnsupportedDocumentError": "engine.errors",
    "attachment_block": "engine.documents.prompt",
    "check_fits": "engine.documents.prompt",
    "compose_user_message": "engine.documents.prompt",
    "escape_document_text": "engine.documents.prompt",
    "extract": "engine.documents.extract",
}
make_lazy(__name__, _EXPORTS)
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
