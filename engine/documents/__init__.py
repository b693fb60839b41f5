"""Documents dropped into a chat, turned into text for the user message. Qt-free.

`extract` is blocking (a big PDF takes seconds), so the app calls it off the UI thread. Every
problem with the file itself is an UnsupportedDocumentError whose first sentence names the file.
"""

from engine.documents.document import ExtractedDocument, Kind
from engine.documents.extract import MAX_BYTES, MAX_CSV_ROWS, SUPPORTED_SUFFIXES, extract
from engine.documents.prompt import (
    FitReport,
    attachment_block,
    check_fits,
    compose_user_message,
    escape_document_text,
)
from engine.errors import UnsupportedDocumentError

__all__ = [
    "MAX_BYTES",
    "MAX_CSV_ROWS",
    "SUPPORTED_SUFFIXES",
    "ExtractedDocument",
    "FitReport",
    "Kind",
    "UnsupportedDocumentError",
    "attachment_block",
    "check_fits",
    "compose_user_message",
    "escape_document_text",
    "extract",
]
