"""The library's one exception: its database cannot be opened, read or written."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from engine.errors import EngineError


class LibraryError(EngineError):
    """The document library's database failed (missing folder, disk full, damaged, too new)."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(
            f"The document library {path} {problem}: delete that file to rebuild the index "
            "from your documents, which are untouched."
        )
        self.path = path


def from_sqlite(error: sqlite3.Error, path: Path, doing: str) -> LibraryError:
    """`doing` completes "The document library X could not be ..." (opened, updated, read)."""
    return LibraryError(path, f"could not be {doing} ({error})")
