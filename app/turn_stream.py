"""One answer as it streams on the engine thread: gather, save, then show. Qt-free.

`AnswerStream` turns the engine's events into `TurnUpdate`s at most every FLUSH_INTERVAL_S. Each
update is committed to the history store *before* it is handed to `emit`, which is what makes
"killing the app loses nothing already shown" true. When a write fails (disk full, file busy),
the text stays queued and goes out with the next write, as app.history.errors recommends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.history import HistoryError, HistoryStore
from app.messages import ErrorInfo
from engine import (
    ChannelDelta,
    ChatEvent,
    CitationsResolved,
    PrefillProgress,
    ReasoningCut,
    ToolCallRequested,
    ToolStep,
    TurnFinished,
)

if TYPE_CHECKING:
    from app.engine_requests import TurnRequest

log = logging.getLogger(__name__)

# 40 ms: 25 updates a second reads as smooth streaming and keeps SQLite commits and repaints few.
FLUSH_INTERVAL_S = 0.04


@dataclass(frozen=True)
class TurnUpdate:
    """New text of one answer since the previous update (already saved)."""

    turn_id: int
    message_id: int
    analysis: str = ""  # reasoning (analysis channel, and commentary the user may read)
    answer: str = ""  # final channel
    tool_calls: tuple[ToolCallRequested, ...] = ()
    cut: ReasoningCut | None = None
    prefill: tuple[int, int] | None = None  # (done, total) prompt tokens
    # Where `analysis` and `answer` start in the whole answer: a view that restored the message
    # from the store (which may already hold this update) skips what it has.
    analysis_start: int = 0
    answer_start: int = 0
    prefill_eta_s: float | None = None  # seconds left to read the prompt, at the rate so far
    steps: tuple[ToolStep, ...] = ()  # browser calls run since the previous update
    citations: CitationsResolved | None = None  # the answer's citations, once it is complete


@dataclass(frozen=True)
class TurnResult:
    turn_id: int
    message_id: int
    status: str  # "complete", "cancelled", "interrupted" or "error", as stored
    stats: dict[str, Any] = field(default_factory=dict)
    error: ErrorInfo | None = None
    answer: str = ""
    analysis: str = ""
    citations: CitationsResolved | None = None


def citation_records(resolved: CitationsResolved) -> list[dict[str, Any]]:
    """The answer's citations as the store keeps them (in the message's stats, under
    "citations"): enough to open each one again and to export it as a footnote."""
    records: list[dict[str, Any]] = []
    for c in resolved.citations:
        record: dict[str, Any] = {
            "cursor": c.citation.cursor,
            "first": c.citation.first_line,
            "last": c.citation.last_line,
        }
        if c.target is not None:  # None: it points nowhere, and stays recorded as such
            record |= {
                "path": str(c.target.path),
                "url": c.target.url,
                "page": c.target.page,
                "lines": [c.target.first_line, c.target.last_line],
            }
        records.append(record)
    return records


class AnswerStream:
    def __init__(
        self,
        request: TurnRequest,
        store: HistoryStore | None,
        emit: Callable[[TurnUpdate], None],
        warn: Callable[[ErrorInfo], None],
        *,
        interval_s: float = FLUSH_INTERVAL_S,
    ) -> None:
        self._request = request
        self._store = store if request.message_id > 0 else None
        self._emit = emit
        self._warn = warn
        self._interval = interval_s
        self._started = time.monotonic()
        self._first_answer_at: float | None = None
        self._waited_s = 0.0  # for the user's approval of tool calls: not the model's thinking
        self._last_flush = -float("inf")
        self._analysis = self._answer = ""  # everything so far, for the result
        self._pending_analysis = self._pending_answer = ""  # not yet shown
        self._unsaved_analysis = self._unsaved_answer = ""  # shown, write failed: retry
        self._tools: list[ToolCallRequested] = []
        self._steps: list[ToolStep] = []
        self._new_citations: CitationsResolved | None = None
        self.citations: CitationsResolved | None = None
        self._prefill: tuple[int, int] | None = None
        self._prefill_eta: float | None = None
        self._new_cut: ReasoningCut | None = None
        self._warned = False
        self.cut: ReasoningCut | None = None

    def consume(self, events: Iterable[ChatEvent | ToolStep | CitationsResolved]) -> TurnFinished:
        """Run one model turn to its end; returns its TurnFinished."""
        finished: TurnFinished | None = None
        for event in events:
            force = False
            if isinstance(event, ChannelDelta):
                if event.recipient is not None:
                    continue  # tool-call arguments: ToolCallRequested reports them whole
                if event.channel == "final":
                    if self._first_answer_at is None:
                        self._first_answer_at = time.monotonic()
                    self._pending_answer += event.text
                else:
                    self._pending_analysis += event.text
            elif isinstance(event, PrefillProgress):
                self._prefill = (event.done, event.total)
                self._prefill_eta = event.eta_s
                # The last chunk goes out at once: no text may follow for a while (or at all,
                # if the model only reasons), and the view must stop saying "Reading…".
                force = event.done >= event.total
            elif isinstance(event, ReasoningCut):
                self.cut = self._new_cut = event
                force = True
            elif isinstance(event, ToolCallRequested):
                self._tools.append(event)
                force = True
            elif isinstance(event, ToolStep):
                self._steps.append(event)
                self._waited_s += event.waited_s
                force = True
            elif isinstance(event, CitationsResolved):
                self.citations = self._new_citations = event
                force = True
            elif isinstance(event, TurnFinished):
                finished = event
                force = True
            self.flush(force=force)
        if finished is None:
            raise RuntimeError("the chat turn ended without TurnFinished")
        return finished

    def record_tool_result(self, call: ToolCallRequested, result: str) -> None:
        if self._store is None:
            return
        try:
            self._store.add_tool_call(
                self._request.message_id, call.recipient, call.arguments_json, result
            )
        except (HistoryError, KeyError) as e:
            self._warn_once(e)

    def thinking_s(self) -> float:
        end = self._first_answer_at if self._first_answer_at is not None else time.monotonic()
        return max(0.0, end - self._started - self._waited_s)

    def flush(self, *, force: bool = False) -> None:
        pending = self._pending_analysis or self._pending_answer or self._tools or self._steps
        if not (pending or self._prefill or self._new_cut or self._new_citations):
            return
        now = time.monotonic()
        if not force and now - self._last_flush < self._interval:
            return
        self._save(self._pending_answer, self._pending_analysis)
        update = TurnUpdate(
            self._request.turn_id,
            self._request.message_id,
            self._pending_analysis,
            self._pending_answer,
            tuple(self._tools),
            self._new_cut,
            self._prefill,
            len(self._analysis),
            len(self._answer),
            self._prefill_eta if self._prefill else None,
            tuple(self._steps),
            self._new_citations,
        )
        self._analysis += self._pending_analysis
        self._answer += self._pending_answer
        self._pending_analysis = self._pending_answer = ""
        self._tools, self._prefill, self._new_cut = [], None, None
        self._steps, self._new_citations = [], None
        self._last_flush = now
        self._emit(update)

    def finish(self, status: str, stats: dict[str, Any], problem: ErrorInfo | None) -> TurnResult:
        self.flush(force=True)
        if self._store is not None:
            self._save("", "")  # a last retry of text whose write failed
            try:
                self._store.finish_message(
                    self._request.message_id, status, stats, problem.text if problem else None
                )
            except HistoryError as e:
                self._warn_once(e)
        return TurnResult(
            self._request.turn_id,
            self._request.message_id,
            status,
            stats,
            problem,
            self._answer,
            self._analysis,
            self.citations,
        )

    def _save(self, answer: str, analysis: str) -> None:
        self._unsaved_answer += answer
        self._unsaved_analysis += analysis
        if self._store is None:
            self._unsaved_answer = self._unsaved_analysis = ""
            return
        try:
            kept = self._store.append_to_message(
                self._request.message_id, self._unsaved_answer, self._unsaved_analysis
            )
        except HistoryError as e:
            self._warn_once(e)
            return
        self._unsaved_answer = self._unsaved_analysis = ""
        if not kept:  # the conversation was deleted while its answer streamed
            self._store = None

    def _warn_once(self, error: Exception) -> None:
        log.warning("saving the answer failed: %s", error)
        if not self._warned:
            self._warned = True
            self._warn(ErrorInfo.from_exception(error, title="The answer could not be saved"))
