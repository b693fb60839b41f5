"""IndexJobs: the background indexing thread. Documents and folders are indexed off the caller's
thread with progress, a cancel leaves no half document, closing keeps a resumable one, and a
waiter returns when the job ends or its own cancel is set."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine import extract
from engine.library import IndexJobs, JobState, Library
from tests.engine.library.documents import filler, write_text

TIMEOUT_S = 10.0


def long_text(path: Path, sections: int = 40) -> Path:
    """A text file long enough for several sections, hence several page batches."""
    return write_text(path, "\n\n".join(filler(n, 400) for n in range(sections)))


class Gate:
    """Holds the indexing thread (inside its progress report) once `when` is true of a state."""

    def __init__(self, when: Callable[[JobState], bool]) -> None:
        self.when = when
        self.states: list[JobState] = []
        self.held = threading.Event()
        self.release = threading.Event()

    def __call__(self, state: JobState) -> None:
        self.states.append(state)
        if not self.held.is_set() and self.when(state):
            self.held.set()
            assert self.release.wait(TIMEOUT_S)


def mid_document(state: JobState) -> bool:
    return state.status == "indexing" and 0 < state.pages_done < state.pages_total


@pytest.fixture
def open_jobs(tmp_path: Path) -> Iterator[Callable[..., IndexJobs]]:
    made: list[IndexJobs] = []

    def make(gate: Gate | None = None, **options: object) -> IndexJobs:
        jobs = IndexJobs(
            tmp_path / "library.sqlite3",
            on_change=gate,
            batch_pages=8,
            **options,  # type: ignore[arg-type]
        )
        made.append(jobs)
        return jobs

    yield make
    for jobs in made:
        jobs.close()


def test_a_document_is_indexed_on_the_jobs_thread_with_page_progress(
    open_jobs: Callable[..., IndexJobs], tmp_path: Path
) -> None:
    path = long_text(tmp_path / "notes.txt")
    doc = extract(path)
    threads: set[str] = set()

    def on_thread(state: JobState) -> bool:
        threads.add(threading.current_thread().name)
        return False

    gate = Gate(on_thread)
    jobs = open_jobs(gate)
    assert jobs.index_document(doc).status == "queued"
    states = jobs.wait([path], threading.Event())
    assert states[path.resolve()].status == "done"
    assert "library indexer" in threads
    pages = [s.pages_done for s in gate.states if s.status == "indexing" and s.pages_total]
    assert pages == sorted(pages) and pages[-1] == gate.states[-1].pages_total > 1
    with Library(jobs.library_path) as library:
        info = library.document_by_path(path)
        assert info is not None and info.status == "ready"
        assert [h.document.path for h in library.search(doc.text.split()[5])][:1] == [path]


def test_cancelling_a_document_drops_the_pages_it_had_committed(
    open_jobs: Callable[..., IndexJobs], tmp_path: Path
) -> None:
    path = long_text(tmp_path / "notes.txt")
    gate = Gate(mid_document)
    jobs = open_jobs(gate, idle_s=0.5)
    jobs.index_document(extract(path))
    assert gate.held.wait(TIMEOUT_S)
    with Library(jobs.library_path) as library:
        partial = library.document_by_path(path)
        assert partial is not None and partial.status == "indexing" and partial.pages_done > 0
    jobs.cancel(path)
    gate.release.set()
    assert jobs.wait([path], threading.Event())[path.resolve()].status == "cancelled"
    with Library(jobs.library_path) as library:
        assert library.document_by_path(path) is None
        assert library.passage_count() == 0


def test_closing_keeps_a_resumable_document_and_the_next_run_finishes_it(
    open_jobs: Callable[..., IndexJobs], tmp_path: Path
) -> None:
    path = long_text(tmp_path / "notes.txt")
    doc = extract(path)
    gate = Gate(mid_document)
    first = open_jobs(gate)
    first.index_document(doc)
    assert gate.held.wait(TIMEOUT_S)
    closing = threading.Thread(target=first.close)
    closing.start()
    gate.release.set()
    closing.join(TIMEOUT_S)
    assert not closing.is_alive()
    with Library(first.library_path) as library:
        kept = library.document_by_path(path)
        assert kept is not None and kept.status == "indexing"
        done_before = kept.pages_done
    with pytest.raises(RuntimeError, match="closed"):
        first.index_document(doc)

    again = Gate(lambda state: False)
    second = open_jobs(again)
    second.index_document(doc)
    assert second.wait([path], threading.Event())[path.resolve()].status == "done"
    resumed = [s.pages_done for s in again.states if s.status == "indexing" and s.pages_total]
    assert resumed[0] > done_before  # started after what the first run committed


def test_a_waiter_returns_when_its_cancel_is_set_and_hears_the_progress(
    open_jobs: Callable[..., IndexJobs], tmp_path: Path
) -> None:
    path = long_text(tmp_path / "notes.txt")
    gate = Gate(mid_document)
    heard: list[tuple[JobState, ...]] = []
    jobs = open_jobs(gate, on_wait=heard.append)
    jobs.index_document(extract(path))
    assert gate.held.wait(TIMEOUT_S)
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    states = jobs.wait([path], stop)
    assert states[path.resolve()].status == "indexing"  # still running: the waiter gave up
    assert heard[0][0].path == path.resolve() and heard[-1] == ()
    gate.release.set()
    assert jobs.wait([path], threading.Event())[path.resolve()].status == "done"


def test_a_file_deleted_while_it_is_indexed_is_dropped_with_a_clear_problem(
    open_jobs: Callable[..., IndexJobs], tmp_path: Path
) -> None:
    path = long_text(tmp_path / "notes.txt")
    gate = Gate(mid_document)
    jobs = open_jobs(gate)
    jobs.index_document(extract(path))
    assert gate.held.wait(TIMEOUT_S)
    path.unlink()
    gate.release.set()
    state = jobs.wait([path], threading.Event())[path.resolve()]
    assert state.status == "failed"
    assert state.problems == (
        "notes.txt was moved or deleted while it was being indexed; put it back and attach it "
        "again to search it.",
    )
    with Library(jobs.library_path) as library:
        assert library.documents() == [] and library.passage_count() == 0


def test_folders_are_indexed_rescanned_and_removed(
    open_jobs: Callable[..., IndexJobs], tmp_path: Path
) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    write_text(folder / "a.md", "The wombat sleeps by day.")
    published: list[tuple[object, ...]] = []
    jobs = open_jobs(on_folders=published.append)
    jobs.add_folder(folder)
    _wait_folder(jobs, folder)
    assert published[-1][0].documents == 1  # type: ignore[attr-defined]

    write_text(folder / "b.md", "The quokka smiles.")
    (folder / "a.md").unlink()
    jobs.rescan(folder)
    _wait_folder(jobs, folder)
    with Library(jobs.library_path) as library:
        assert [d.name for d in library.documents()] == ["b.md"]

    jobs.remove_folder(folder)
    _wait_folder(jobs, folder, kind="forget")
    assert published[-1] == ()
    with Library(jobs.library_path) as library:
        assert library.documents() == [] and library.folders() == []


def _wait_folder(jobs: IndexJobs, folder: Path, kind: str = "folder") -> None:
    deadline = threading.Event()
    for _ in range(int(TIMEOUT_S / 0.05)):
        state = jobs.state(folder, kind)  # type: ignore[arg-type]
        if state is not None and not state.running:
            assert state.status == "done", state
            return
        deadline.wait(0.05)
    raise AssertionError(f"{kind} job of {folder} did not finish")
