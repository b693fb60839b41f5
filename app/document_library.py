"""The engine thread's document library, for turns that search their documents ("browse").

A browse turn indexes its attached documents into the library (a SQLite file beside the history
database; indexing is incremental, so a document attached again is not read again), gives the
session gpt-oss's browser tool, and returns the ToolLoop that serves the model's browser calls.
Runs on the engine thread only, like everything the EngineWorker owns.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.messages import ErrorInfo
from engine import (
    ChatSession,
    DocumentDecision,
    EngineError,
    Library,
    ToolLoop,
    browser_for,
    index_for_browsing,
    with_browser,
)

log = logging.getLogger(__name__)


class DocumentLibrary:
    """Opened on first use; `path` None means searching documents is off."""

    def __init__(self, path: Path | None, *, warn: Callable[[ErrorInfo], None] | None = None):
        self.path = path
        self.warn = warn or (lambda problem: log.warning("%s", problem.text))
        self._library: Library | None = None

    def tool_loop(
        self,
        session: object,
        decision: DocumentDecision | None,
        tokenizer: Any,
        cancel: threading.Event,
    ) -> ToolLoop | None:
        """For a "browse" turn: index its documents, give `session` the browser tool, and
        return the loop that answers the model's browser calls. None for every other turn."""
        if decision is None or decision.mode != "browse":
            return None
        library = self._open()  # refuses the turn when searching is off
        if not isinstance(session, ChatSession):
            raise TypeError("a browse turn needs engine.ChatSession (the tool loop drives it)")
        docs = [d.document for d in decision.documents]
        ids, failed = index_for_browsing(library, docs, cancel=cancel)
        for path, problem in failed.items():
            # The turn goes on with the others; the model is told only of what it can search.
            self.warn(ErrorInfo(f"{path.name} cannot be searched", problem))
        if docs and not ids:
            raise EngineError(
                "None of the attached documents could be indexed for searching. Remove them and "
                "attach them again, or attach a shorter part of them."
            )
        browser = browser_for(library, ids or None, tokenizer)
        session.set_system(with_browser(session.system, browser))
        return ToolLoop(session, browser)

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
