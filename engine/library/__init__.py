"""The local document library: attached documents and watched folders, indexed for the browser.

Qt-free. Every document is extracted once (engine.documents.extract), cut into pages (PDF pages,
or sections for other kinds: see paging.py), wrapped into the numbered lines the browser tool
shows, and indexed as passages in SQLite FTS5 for BM25 ranking. `index_files` is blocking: run it
on a background thread with a progress callback and a cancel event; it commits in batches and
resumes where a cancelled run stopped. `IndexJobs` is that thread, with a queue of documents and
watched folders.
"""

from engine.library.errors import LibraryError
from engine.library.folders import folder_files, scan_folder, scan_folders
from engine.library.indexer import BATCH_PAGES, discard_unfinished, forget_missing, index_files
from engine.library.jobs import FolderState, IndexJobs, JobState
from engine.library.lines import LINE_WIDTH, clean_page_text, numbered, wrap_lines
from engine.library.paging import PASSAGE_LINES, SECTION_CHARS, split_pages, split_sections
from engine.library.records import (
    DocumentInfo,
    FolderChanges,
    IndexProgress,
    IndexReport,
    PassageHit,
    StoredPage,
)
from engine.library.store import Library, canonical

__all__ = [
    "BATCH_PAGES",
    "LINE_WIDTH",
    "PASSAGE_LINES",
    "SECTION_CHARS",
    "DocumentInfo",
    "FolderChanges",
    "FolderState",
    "IndexJobs",
    "IndexProgress",
    "IndexReport",
    "JobState",
    "Library",
    "LibraryError",
    "PassageHit",
    "StoredPage",
    "canonical",
    "clean_page_text",
    "discard_unfinished",
    "folder_files",
    "forget_missing",
    "index_files",
    "numbered",
    "scan_folder",
    "scan_folders",
    "split_pages",
    "split_sections",
    "wrap_lines",
]
