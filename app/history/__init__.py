"""Conversation history: SQLite storage, full-text search and export. Qt-free.

The GUI wraps this package; nothing here imports PySide6, so it runs in tests and on any thread
(one HistoryStore per thread, see store.py). One process writes a history file at a time
(lock.py); searches run on a thread of their own, newest query first (searcher.py).
"""

from app.history.errors import HistoryError, move_aside
from app.history.export import (
    conversation_from_json,
    export_json,
    export_markdown,
    write_atomically,
)
from app.history.records import (
    MATCH_END,
    MATCH_START,
    ConversationSummary,
    Effort,
    NewAttachment,
    Role,
    SearchHit,
    Status,
    StoredAttachment,
    StoredMessage,
    ToolCall,
)
from app.history.schema import SCHEMA_VERSION
from app.history.store import HistoryStore

__all__ = [
    "MATCH_END",
    "MATCH_START",
    "SCHEMA_VERSION",
    "ConversationSummary",
    "Effort",
    "HistoryError",
    "HistoryStore",
    "NewAttachment",
    "Role",
    "SearchHit",
    "Status",
    "StoredAttachment",
    "StoredMessage",
    "ToolCall",
    "conversation_from_json",
    "export_json",
    "export_markdown",
    "move_aside",
    "write_atomically",
]
