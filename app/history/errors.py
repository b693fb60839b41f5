"""HistoryError: what went wrong with the history file, first sentence written for the user.

How the GUI reacts (the store never holds the caller's data, so nothing on screen is lost):
- Show str(error) in the non-modal banner, with `details` behind "Copy details"; keep the
  conversation in memory and keep the chat usable.
- While streaming, keep the deltas that failed to save and send them again, joined to the next
  ones (or call `set_message_text` with the full text): an append either lands whole or not at all.
- kind "corrupt" or "newer" at start-up: offer "Start with an empty history", which calls
  `move_aside(path)` and opens a new store; the damaged file is kept for recovery.
- kind "disk_full" or "locked": retry on the next write; nothing needs to be reopened.
- kind "in_use" at start-up: another OSS Desk process is the file's one writer; show the message
  and quit (a relaunch while the other one is quitting waits for it first, see store.py).
- kind "taken" while streaming: the answer's row stopped accepting text (another process marked
  it interrupted); report it once and keep the answer on screen.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Literal, TypeAlias

ErrorKind: TypeAlias = Literal[
    "disk_full", "locked", "corrupt", "newer", "unavailable", "io", "export", "in_use", "taken"
]

_MESSAGES: dict[str, str] = {
    "disk_full": (
        "The disk is full, so the conversation history could not be saved. Free some space; "
        "nothing shown on screen has been lost."
    ),
    "locked": (
        "The conversation history is busy in another OSS Desk process. Try again in a moment."
    ),
    "corrupt": (
        "The conversation history file {path} is damaged and cannot be read. It can be moved "
        "aside so that OSS Desk starts with an empty history."
    ),
    "newer": (
        "The conversation history file {path} was written by a newer version of OSS Desk. "
        "Update OSS Desk to open it."
    ),
    "unavailable": (
        "The conversation history file {path} could not be opened. Check that its folder exists "
        "and that you can write to it."
    ),
    "io": "The conversation history file {path} could not be read or written.",
    "export": "The conversation could not be saved to {path}.",
    "in_use": (
        "The conversation history file {path} is open in another OSS Desk: quit that one (or "
        "wait until it has finished quitting) and open OSS Desk again."
    ),
    "taken": (
        "The answer could not be saved to {path} because another OSS Desk took over that file: "
        "quit the other OSS Desk, and keep this window open to read the answer."
    ),
}

# Extended codes (SQLITE_IOERR_WRITE, SQLITE_CORRUPT_VTAB, ...) are matched by their prefix.
_KIND_BY_CODE: tuple[tuple[str, ErrorKind], ...] = (
    ("SQLITE_FULL", "disk_full"),
    ("SQLITE_BUSY", "locked"),
    ("SQLITE_LOCKED", "locked"),
    ("SQLITE_CORRUPT", "corrupt"),
    ("SQLITE_NOTADB", "corrupt"),
    ("SQLITE_CANTOPEN", "unavailable"),
    ("SQLITE_READONLY", "unavailable"),
    ("SQLITE_PERM", "unavailable"),
    ("SQLITE_AUTH", "unavailable"),
)


class HistoryError(Exception):
    """The history file could not be read or written. The in-memory conversation is intact."""

    def __init__(self, kind: ErrorKind, path: Path | str, details: str = "") -> None:
        self.kind: ErrorKind = kind
        self.path = Path(path)
        self.details = details
        message = _MESSAGES[kind].format(path=self.path)
        super().__init__(f"{message} ({details})" if details else message)


def from_sqlite(error: sqlite3.Error, path: Path | str) -> HistoryError:
    """Translate an SQLite failure into the HistoryError the user should see."""
    code = getattr(error, "sqlite_errorname", "") or ""
    kind: ErrorKind = "io"
    for prefix, candidate in _KIND_BY_CODE:
        if code.startswith(prefix):
            kind = candidate
            break
    else:
        # Some builds leave sqlite_errorname empty; the message text is stable across versions.
        text = str(error).lower()
        if "disk is full" in text:
            kind = "disk_full"
        elif "not a database" in text or "malformed" in text:
            kind = "corrupt"
        elif "locked" in text:
            kind = "locked"
    details = f"{code}: {error}" if code else str(error)
    return HistoryError(kind, path, details)


def is_database_failure(error: sqlite3.Error) -> bool:
    """True for failures of the file or the disk; False for bugs (bad SQL, constraint, misuse)."""
    if isinstance(error, sqlite3.IntegrityError | sqlite3.ProgrammingError):
        return False
    # Plain SQLITE_ERROR is a wrong statement ("no such table"): a bug that must stay loud.
    code = getattr(error, "sqlite_errorname", "")
    return isinstance(error, sqlite3.DatabaseError) and code != "SQLITE_ERROR"


def move_aside(path: Path | str) -> Path:
    """Rename a damaged history file (and its -wal/-shm) out of the way; return the new name."""
    path = Path(path)
    target = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    for suffix in ("-wal", "-shm", ""):
        part = Path(f"{path}{suffix}")
        if part.exists():
            part.replace(f"{target}{suffix}")
    return target
