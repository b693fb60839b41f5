"""What the library hands out: frozen records, safe to pass between threads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

# Stored as these strings; never rename one.
DocumentStatus = Literal["indexing", "ready", "failed"]
IndexStage = Literal["checking", "extracting", "indexing", "done"]


@dataclass(frozen=True)
class DocumentInfo:
    id: int
    path: Path
    name: str
    kind: str
    sha256: str
    size_bytes: int
    mtime_ns: int
    paged: bool  # True: pages are the PDF's pages; False: sections of the text
    pages_total: int
    pages_done: int
    status: DocumentStatus
    error: str | None
    warnings: tuple[str, ...]
    folder_id: int | None

    @property
    def searchable(self) -> bool:
        return self.status != "failed" and self.pages_done > 0


@dataclass(frozen=True)
class StoredPage:
    document: DocumentInfo
    number: int
    text: str
    line_count: int


@dataclass(frozen=True)
class PassageHit:
    """One ranked passage: a line range on one page of one document."""

    document: DocumentInfo
    page: int
    first_line: int
    last_line: int
    match_line: int  # the first line in the range that holds a query word
    snippet: str  # whitespace merged, around the first match
    score: float  # BM25 as FTS5 gives it: lower is better


@dataclass(frozen=True)
class IndexProgress:
    """Reported after each step; `pages_*` describe the current document."""

    stage: IndexStage
    path: Path | None
    documents_done: int
    documents_total: int
    pages_done: int = 0
    pages_total: int = 0


@dataclass(frozen=True)
class IndexReport:
    indexed: tuple[Path, ...] = ()
    unchanged: tuple[Path, ...] = ()
    removed: tuple[Path, ...] = ()  # files that no longer exist, dropped from the index
    failed: dict[Path, str] = field(default_factory=dict)  # path -> message for the user
    cancelled: bool = False
    pages_indexed: int = 0


@dataclass(frozen=True)
class FolderChanges:
    """A rescan of one watched folder against the index."""

    folder: Path
    added: tuple[Path, ...] = ()
    modified: tuple[Path, ...] = ()
    deleted: tuple[Path, ...] = ()
    unchanged: tuple[Path, ...] = ()

    @property
    def to_index(self) -> tuple[Path, ...]:
        """What `index_files` should be given; it also drops the deleted ones."""
        return (*self.added, *self.modified, *self.deleted)
