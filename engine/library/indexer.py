"""Indexing files into the library: blocking, so the caller runs it on its own background thread.

Incremental: a file whose size and modification time are unchanged is skipped without reading;
one that was touched but has the same SHA-256 is skipped after hashing; a file that moved (same
content, old path gone) is re-pointed instead of re-read. Pages are committed in batches, so a
cancelled or killed run keeps what it committed, the committed pages are searchable at once, and
the next run of the same content resumes after them.

Cancellation is checked before and after each document's extraction and between page batches;
a file that disappears between batches is dropped from the index and reported as failed.
Extraction itself (`engine.documents.extract`) runs to the end once started; for a 1,000-page
PDF that is a few seconds (see benchmarks/documents.py).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.documents import ExtractedDocument, extract
from engine.errors import UnsupportedDocumentError
from engine.library.lines import wrap_lines
from engine.library.paging import (
    PASSAGE_LINES,
    PASSAGE_STRIDE,
    PageText,
    Passage,
    passages,
    split_pages,
)
from engine.library.records import DocumentInfo, IndexProgress, IndexReport, IndexStage
from engine.library.store import Library, canonical

log = logging.getLogger(__name__)

BATCH_PAGES = 64
_HASH_CHUNK = 1 << 20

Extractor = Callable[[Path], ExtractedDocument]
ProgressCallback = Callable[[IndexProgress], None]
MAX_REST_S = 0.02


@dataclass
class _Run:
    """A run's running totals and its reporting; becomes the IndexReport at the end."""

    total: int
    progress: ProgressCallback | None
    cancel: threading.Event
    passage_lines: int
    passage_stride: int
    rest: float = 0.0  # seconds of rest per second of work after each page (see index_files)
    done: int = 0
    indexed: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    failed: dict[Path, str] = field(default_factory=dict)
    pages: int = 0

    def report(
        self, stage: IndexStage, path: Path | None, pages_done: int = 0, pages_total: int = 0
    ) -> None:
        if self.progress is not None:
            self.progress(
                IndexProgress(stage, path, self.done, self.total, pages_done, pages_total)
            )

    def result(self, cancelled: bool) -> IndexReport:
        return IndexReport(
            indexed=tuple(self.indexed),
            unchanged=tuple(self.unchanged),
            removed=tuple(self.removed),
            failed=dict(self.failed),
            cancelled=cancelled,
            pages_indexed=self.pages,
        )


def index_files(
    library: Library,
    paths: Iterable[str | Path],
    *,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    folder_id: int | None = None,
    extractor: Extractor = extract,
    batch_pages: int = BATCH_PAGES,
    passage_lines: int = PASSAGE_LINES,
    passage_stride: int = PASSAGE_STRIDE,
    rest: float = 0.0,
) -> IndexReport:
    """Bring the index up to date for `paths`; files that no longer exist are dropped from it.

    Unreadable files are reported in `failed` with the extractor's message (and remembered, so
    the same unchanged file is not read again). `progress` is called on this thread. The passage
    window is a parameter for benchmarks/documents.py; keep one setting per library file.
    `rest` > 0 makes a background run give way: after each page it sleeps `rest` times as long as
    the page took (at most MAX_REST_S), so a window's thread sharing the interpreter lock finds it
    free (app/launch.py, SWITCH_INTERVAL_S: the rest of that story).
    """
    wanted = list(dict.fromkeys(canonical(p) for p in paths))
    run = _Run(
        len(wanted), progress, cancel or threading.Event(), passage_lines, passage_stride, rest
    )
    for path in wanted:
        if run.cancel.is_set():
            return run.result(cancelled=True)
        run.report("checking", path)
        finished = _index_one(library, path, run, folder_id, extractor, batch_pages)
        if not finished:
            return run.result(cancelled=True)
        run.done += 1
    run.report("done", None)
    return run.result(cancelled=False)


def vanished_message(path: Path) -> str:
    return (
        f"{path.name} was moved or deleted while it was being indexed; put it back and attach "
        "it again to search it."
    )


def discard_unfinished(library: Library, path: str | Path) -> bool:
    """Drop `path`'s document if its indexing never finished (a cancel that must leave no half
    document behind); True if there was one."""
    record = library.document_by_path(path)
    if record is None or record.status != "indexing":
        return False
    library.remove_document(record.id)
    return True


def forget_missing(library: Library) -> list[Path]:
    """Drop every document whose file is gone; return their paths."""
    gone = [d for d in library.documents() if not d.path.is_file()]
    for document in gone:
        library.remove_document(document.id)
    return [d.path for d in gone]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _index_one(
    library: Library,
    path: Path,
    run: _Run,
    folder_id: int | None,
    extractor: Extractor,
    batch_pages: int,
) -> bool:
    """Index one file; False when cancelled part-way."""
    record = library.document_by_path(path)
    try:
        stat = path.stat()
        if not path.is_file():
            raise FileNotFoundError(path)
    except OSError:
        if record is not None:
            library.remove_document(record.id)
            run.removed.append(path)
        else:
            run.failed[path] = f"{path.name} could not be found. It may have been moved or deleted."
        return True
    identity: dict[str, Any] = {"size_bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    if folder_id is not None:
        identity["folder_id"] = folder_id
    if record is not None and _same_stat(record, identity) and record.status != "indexing":
        run.unchanged.append(path)
        return True
    try:
        sha = file_sha256(path)
    except OSError as e:
        run.failed[path] = f"{path.name} could not be opened. ({e.strerror or e})"
        return True
    if record is not None and record.sha256 == sha and record.status == "ready":
        library.update_document(record.id, **identity)
        run.unchanged.append(path)
        return True
    if record is None and _adopt_moved(library, path, sha, identity):
        run.indexed.append(path)
        return True

    run.report("extracting", path)
    try:
        doc = extractor(path)
    except UnsupportedDocumentError as e:
        info = {"path": str(path), "name": path.name, "kind": "", "sha256": sha, **identity}
        library.record_failure(info, str(e))
        run.failed[path] = str(e)
        return True
    if run.cancel.is_set():
        return False
    pages, paged = split_pages(doc)
    info = {
        "path": str(path),
        "name": doc.name,
        "kind": doc.kind,
        "sha256": doc.sha256,
        "paged": int(paged),
        "pages_total": len(pages),
        "warnings": "\n".join(doc.warnings),
        **identity,
    }
    resume = (
        record is not None
        and record.status == "indexing"
        and record.sha256 == doc.sha256
        and record.pages_total == len(pages)
    )
    document_id = library.start_document(info, keep_pages=resume)
    start = record.pages_done if resume and record is not None else 0
    for first in range(start, len(pages), batch_pages):
        if not path.is_file():
            # Its citations would open nothing: drop what was indexed and say why.
            library.remove_document(document_id)
            run.failed[path] = vanished_message(path)
            return True
        batch = [_prepare(page, run) for page in pages[first : first + batch_pages]]
        library.add_pages(document_id, batch)
        run.pages += len(batch)
        run.report("indexing", path, first + len(batch), len(pages))
        if run.cancel.is_set() and first + batch_pages < len(pages):
            return False
    library.finish_document(document_id)
    run.indexed.append(path)
    return True


def _prepare(page: PageText, run: _Run) -> tuple[PageText, int, list[Passage]]:
    started = time.perf_counter()
    lines = wrap_lines(page.text)
    prepared = page, len(lines), passages(lines, run.passage_lines, run.passage_stride)
    if run.rest > 0:
        time.sleep(min((time.perf_counter() - started) * run.rest, MAX_REST_S))
    return prepared


def _same_stat(record: DocumentInfo, identity: dict[str, Any]) -> bool:
    return (
        record.size_bytes == identity["size_bytes"]
        and record.mtime_ns == identity["mtime_ns"]
        and record.folder_id == identity.get("folder_id", record.folder_id)
    )


def _adopt_moved(library: Library, path: Path, sha: str, identity: dict[str, Any]) -> bool:
    """Re-point a ready document whose file moved here (same content, old path gone)."""
    for record in library.documents_by_sha(sha):
        if record.status == "ready" and not record.path.exists():
            log.info("%s moved to %s; keeping its index", record.path, path)
            library.update_document(record.id, path=str(path), name=path.name, **identity)
            return True
    return False
