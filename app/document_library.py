"""The engine thread's document library, for turns that search their documents ("browse").

A browse turn finds its documents in the library (a SQLite file beside the history database),
gives the session gpt-oss's browser tool, and returns the ToolLoop that serves the model's
browser calls. Runs on the engine thread only, like everything the EngineWorker owns.

With the app's background indexer (`jobs`, app/library_indexer.py) this thread only reads: a
document is indexed from the moment it is attached, and a turn that needs one still being indexed
waits for it here (the indexer shows the progress; Stop ends the wait). A document of an earlier
message is found by its content hash, since a stored attachment keeps no path. Without `jobs`
(tests that build a bare worker) the turn indexes its documents itself, as before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import engine
from app.messages import ErrorInfo
from app.remote_session import RemoteSession
from engine import (
    DocumentDecision,
    EngineError,
    Library,
    browser_for,
    index_for_browsing,
    with_browser,
)

if TYPE_CHECKING:
    from app.tool_turns import TurnTools
    from engine import ExtractedDocument, IndexJobs, ToolLoop

log = logging.getLogger(__name__)


class DocumentLibrary:
    """Opened on first use; `path` None means searching documents is off."""

    def __init__(
        self,
        path: Path | None,
        *,
        warn: Callable[[ErrorInfo], None] | None = None,
        jobs: IndexJobs | None = None,
    ):
        self.path = path
        self.warn = warn or (lambda problem: log.warning("%s", problem.text))
        self.jobs = jobs
        self._library: Library | None = None

    def tool_loop(
        self,
        session: object,
        decision: DocumentDecision | None,
        tokenizer: Any,
        cancel: threading.Event,
        tools: TurnTools | None = None,
    ) -> ToolLoop | None:
        """For a "browse" turn: index its documents, give `session` the browser tool, and
        return the loop that answers the model's browser calls. None for every other turn."""
        if decision is None or decision.mode != "browse":
            return None
        library = self._open()  # refuses the turn when searching is off
        # engine.ChatSession is imported here, on the engine thread
        if not isinstance(session, engine.ChatSession | RemoteSession):
            raise TypeError("a browse turn needs engine.ChatSession (the tool loop drives it)")
        docs = [d.document for d in decision.documents]
        if self.jobs is None:
            ids, failed = index_for_browsing(library, docs, cancel=cancel)
        else:
            ids, failed = _indexed(library, self.jobs, docs, cancel)
        for path, problem in failed.items():
            # The turn goes on with the others; the model is told only of what it can search.
            self.warn(ErrorInfo(f"{path.name} cannot be searched", problem))
        if docs and not ids:
            raise EngineError(
                "None of the attached documents could be indexed for searching. Remove them and "
                "attach them again, or attach a shorter part of them."
            )
        browser = browser_for(library, ids or None, tokenizer)
        if isinstance(session, RemoteSession):  # offered to the server; the session runs calls
            session.use_browser(browser, [d.name for d in docs])
            return None
        session.set_system(with_browser(session.system, browser))
        return engine.ToolLoop(session, browser) if tools is None else tools.loop(session, browser)

    def close(self) -> None:
        if self._library is not None:
            self._library.close()
            self._library = None

    def _open(self) -> Library:
        if self.path is None:
            raise EngineError(
                "The attached documents are too long to read whole, and searching them is off "
                "in this window. Attach a shorter part of them."
            )
        if self._library is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise EngineError(
                    f"The document library folder {self.path.parent} cannot be made "
                    f"({e.strerror}). Check that the data folder is writable."
                ) from e
            self._library = Library(self.path)
        return self._library


def _indexed(
    library: Library, jobs: IndexJobs, docs: list[ExtractedDocument], cancel: threading.Event
) -> tuple[list[int], dict[Path, str]]:
    """The documents' library ids, after waiting for those still being indexed; {path: problem}
    for those that cannot be searched."""
    ids: list[int] = []
    failed: dict[Path, str] = {}
    waiting: list[ExtractedDocument] = []
    for doc in docs:
        found = _ready(library, doc)
        if found is not None:
            ids.append(found)
        elif doc.path.is_absolute():
            state = jobs.state(doc.path)
            if state is None or not state.running:
                jobs.index_document(doc)  # attached before the indexer ran, or since forgotten
            waiting.append(doc)
        else:
            failed[doc.path] = (
                f"{doc.name} is no longer in the document library; attach it again to search it."
            )
    states = jobs.wait([d.path for d in waiting], cancel)
    for doc in waiting:
        info = library.document_by_path(doc.path)
        if info is not None and info.searchable:
            ids.append(info.id)
            continue
        state = states.get(doc.path.resolve())
        problems = state.problems if state is not None else ()
        failed[doc.path] = (
            problems[0] if problems else f"{doc.name} could not be indexed; attach it again."
        )
    return ids, failed


def _ready(library: Library, doc: ExtractedDocument) -> int | None:
    """The id of a completely indexed copy of `doc`'s content: at its path, else anywhere."""
    if doc.path.is_absolute():
        info = library.document_by_path(doc.path)
        if info is not None and info.status == "ready" and info.sha256 == doc.sha256:
            return info.id
    for info in library.documents_by_sha(doc.sha256):
        if info.status == "ready" and info.path.is_file():
            return info.id
    return None
