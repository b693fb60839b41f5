"""Indexing real files into a real SQLite library: incremental, resumable, cancellable."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from engine.documents import ExtractedDocument, extract
from engine.library import (
    IndexProgress,
    Library,
    LibraryError,
    forget_missing,
    index_files,
    indexer,
    wrap_lines,
)
from engine.library.paging import split_pages
from tests.engine.library.documents import filler, touch_later, write_docx, write_pdf, write_text


class CountingExtractor:
    def __init__(self) -> None:
        self.calls: list[Path] = []

    def __call__(self, path: Path) -> ExtractedDocument:
        self.calls.append(path)
        return extract(path)


def _book(sections: int) -> str:
    """Markdown with one heading per section and a unique word `marker<n>` in each."""
    return "\n\n".join(f"# Part {n}\n\n{filler(n, 380)} marker{n}." for n in range(1, sections + 1))


def test_pdf_docx_and_markdown_are_indexed_page_by_page(library: Library, docs: Path) -> None:
    pdf = write_pdf(docs / "report.pdf", [filler(1, 80), filler(2, 60) + " xylophone", ""])
    word = write_docx(docs / "memo.docx", ["Budget figures.", "The quokka line."])
    notes = write_text(docs / "notes.md", _book(4))
    report = index_files(library, [pdf, word, notes])
    assert set(report.indexed) == {pdf, word, notes} and not report.failed
    assert report.pages_indexed == 3 + 1 + 4

    info = library.document_by_path(pdf)
    assert info is not None
    assert (info.status, info.paged, info.pages_total, info.pages_done) == ("ready", True, 3, 3)
    expected, _ = split_pages(extract(pdf))
    for page in expected:
        stored = library.page(info.id, page.number)
        assert stored is not None
        assert stored.text == page.text
        assert stored.line_count == len(wrap_lines(page.text))

    [hit] = library.search("xylophone")
    assert (hit.document.path, hit.page) == (pdf, 2)
    stored = library.page(info.id, 2)
    assert stored is not None and "xylophone" in wrap_lines(stored.text)[hit.match_line]
    assert "xylophone" in hit.snippet
    [hit] = library.search("quokka")
    assert hit.document.name == "memo.docx" and not hit.document.paged


def test_only_changed_files_are_read_again(library: Library, docs: Path) -> None:
    notes = write_text(docs / "notes.md", "Alpha wombat text.")
    extractor = CountingExtractor()
    index_files(library, [notes], extractor=extractor)
    assert extractor.calls == [notes]

    assert index_files(library, [notes], extractor=extractor).unchanged == (notes,)
    touch_later(notes)  # saved again without changes: hashed, not re-read
    assert index_files(library, [notes], extractor=extractor).unchanged == (notes,)
    assert len(extractor.calls) == 1
    info = library.document_by_path(notes)
    assert info is not None and info.mtime_ns == notes.stat().st_mtime_ns

    write_text(notes, "Beta numbat text.")
    touch_later(notes, 20)
    assert index_files(library, [notes], extractor=extractor).indexed == (notes,)
    assert len(extractor.calls) == 2
    assert library.search("wombat") == []
    assert [h.document.path for h in library.search("numbat")] == [notes]
    assert library.passage_count() == 1

    write_text(notes, "Beta dugong text.")  # same size: only the time and the hash tell
    touch_later(notes, 30)
    assert index_files(library, [notes], extractor=extractor).indexed == (notes,)
    assert [h.document.path for h in library.search("dugong")] == [notes]


def test_a_deleted_file_is_noticed(library: Library, docs: Path) -> None:
    keep = write_text(docs / "keep.md", "Keep the tapir.")
    gone = write_text(docs / "gone.md", "Lose the okapi.")
    other = write_text(docs / "other.md", "Lose the dugong.")
    index_files(library, [keep, gone, other])
    gone.unlink()
    assert index_files(library, [gone]).removed == (gone,)
    other.unlink()
    assert forget_missing(library) == [other]
    assert [d.path for d in library.documents()] == [keep]
    assert library.search("okapi dugong") == []
    assert library.passage_count() == 1


def test_a_moved_file_keeps_its_index(library: Library, docs: Path) -> None:
    old = write_text(docs / "old.md", "The pangolin chapter.")
    index_files(library, [old])
    new = docs / "sub" / "new.md"
    new.parent.mkdir()
    old.rename(new)
    extractor = CountingExtractor()
    assert index_files(library, [new], extractor=extractor).indexed == (new,)
    assert extractor.calls == []
    assert [d.path for d in library.documents()] == [new]
    assert [h.document.name for h in library.search("pangolin")] == ["new.md"]


def test_unreadable_files_are_reported_once(library: Library, docs: Path) -> None:
    bad = docs / "broken.pdf"
    bad.write_bytes(b"%PDF-1.7 this is not really a pdf")
    missing = docs / "never.md"
    extractor = CountingExtractor()
    report = index_files(library, [bad, missing], extractor=extractor)
    assert report.failed[bad].startswith("broken.pdf could not be read")
    assert report.failed[missing].startswith("never.md could not be found")
    info = library.document_by_path(bad)
    assert info is not None and info.status == "failed" and not info.searchable
    assert index_files(library, [bad], extractor=extractor).unchanged == (bad,)
    assert extractor.calls == [bad]


def test_cancel_keeps_committed_pages_and_a_rerun_resumes(library: Library, docs: Path) -> None:
    book = write_text(docs / "book.md", _book(60))
    cancel = threading.Event()
    seen: list[IndexProgress] = []

    def progress(p: IndexProgress) -> None:
        seen.append(p)
        if p.stage == "indexing" and p.pages_done >= 20:
            cancel.set()

    report = index_files(library, [book], progress=progress, cancel=cancel, batch_pages=10)
    assert report.cancelled and report.pages_indexed == 20
    assert [p.stage for p in seen] == ["checking", "extracting", "indexing", "indexing"]
    assert [(p.pages_done, p.pages_total) for p in seen[2:]] == [(10, 60), (20, 60)]
    info = library.document_by_path(book)
    assert info is not None and (info.status, info.pages_done) == ("indexing", 20)
    # What was committed is searchable already; the rest is not there yet.
    assert [h.page for h in library.search("marker20")] == [20]
    assert library.search("marker21") == []

    report = index_files(library, [book], batch_pages=10)
    assert not report.cancelled and report.indexed == (book,) and report.pages_indexed == 40
    info = library.document_by_path(book)
    assert info is not None and (info.status, info.pages_done) == ("ready", 60)
    assert [h.page for h in library.search("marker60")] == [60]
    assert [h.page for h in library.search("marker1")] == [1]


def test_cancel_before_start_reads_nothing(library: Library, docs: Path) -> None:
    notes = write_text(docs / "notes.md", "Text.")
    cancel = threading.Event()
    cancel.set()
    extractor = CountingExtractor()
    assert index_files(library, [notes], cancel=cancel, extractor=extractor).cancelled
    assert extractor.calls == [] and library.documents() == []


def test_indexing_on_a_thread_never_blocks_a_reader(tmp_path: Path, docs: Path) -> None:
    """The indexer commits in batches on its own thread and connection; a reader on another
    thread runs between batches and sees what is committed (WAL), without waiting."""
    path = tmp_path / "library.sqlite3"
    book = write_text(docs / "book.md", _book(30))
    first_batch = threading.Event()
    reader_done = threading.Event()
    errors: list[BaseException] = []

    def progress(p: IndexProgress) -> None:
        if p.stage == "indexing" and p.pages_done == 10:
            first_batch.set()
            assert reader_done.wait(10)

    def work() -> None:
        try:
            with Library(path) as library:
                index_files(library, [book], progress=progress, batch_pages=10)
        except BaseException as e:  # reported to the test thread below
            errors.append(e)

    worker = threading.Thread(target=work)
    worker.start()
    assert first_batch.wait(10)
    with Library(path, timeout_s=0.5) as reader:
        assert [h.page for h in reader.search("marker10")] == [10]
        assert reader.search("marker11") == []
    reader_done.set()
    worker.join(20)
    assert not worker.is_alive() and errors == []
    with Library(path) as reader:
        assert [h.page for h in reader.search("marker30")] == [30]


def test_a_library_from_a_newer_app_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "library.sqlite3"
    Library(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(LibraryError, match="newer version"):
        Library(path)


@pytest.mark.parametrize("rest", [0.0, 1.0])
def test_a_background_run_rests_after_each_page_as_long_as_it_worked(
    library: Library, docs: Path, monkeypatch: pytest.MonkeyPatch, rest: float
) -> None:
    """What keeps the window's pace while a library indexes beside it (engine/library/jobs.py)."""
    naps: list[float] = []
    monkeypatch.setattr(indexer.time, "sleep", naps.append)
    notes = write_text(docs / "notes.md", _book(4))
    index_files(library, [notes], rest=rest)
    if rest == 0:
        assert naps == []
    else:
        assert len(naps) == 4  # one per page
        assert all(0 < nap <= indexer.MAX_REST_S for nap in naps)
