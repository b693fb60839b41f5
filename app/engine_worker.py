"""The engine thread (convention 9): one EngineWorker on one QThread owns the model, the
tokenizer, the chat session and so every MLX array; the UI reaches it only by queued signals.

Persistence choice: the worker writes the streaming answer to its own HistoryStore (same file,
own connection, recover_interrupted=False). It gathers deltas for FLUSH_INTERVAL_S, commits them,
and only then emits them to the window. So whatever the window shows is already in the WAL, and
killing the app (even SIGKILL) mid-answer loses nothing on screen; the UI thread does no disk
I/O per token; and the window receives one update per interval however fast the model is.
Stop is the request's threading.Event, set by the UI thread and checked by the engine between
tokens. Errors come back as ErrorInfo values; every turn ends with exactly one turn_finished.

Prompt cache (issue 12): with a `prompt_cache_dir`, each conversation's KV cache is saved after
every turn (after turn_finished, so the save never delays the answer) and restored when its
session is rebuilt (switching chats, restarting); the file is keyed by conversation id. A failed
save is reported once per model load on history_failed; a file that does not fit is ignored.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal, Slot

import engine
from app.document_library import DocumentLibrary
from app.engine_requests import (
    Loader,
    ModelInfo,
    SessionFactory,
    TurnRequest,
    TurnSession,
)
from app.history import HistoryError, HistoryStore
from app.history_bridge import continues, stats_record
from app.messages import ErrorInfo
from app.remote_session import RemoteSession
from app.served_turns import ServedJob, ServedTurns
from app.tool_turns import ToolsChoice, ToolTurns
from app.turn_stream import AnswerStream, TurnResult, citation_records
from engine import (
    DEFAULT_PROMPT_CACHE_BYTES,
    ChatEvent,
    EngineError,
    HarmonyTokenizer,
    Message,
    ModelArgs,
    ModelLoadError,
    clear_prompt_cache_folder,
    machine_budget,
    recommend,
)

if TYPE_CHECKING:  # the engine thread imports these (and MLX) when it loads a model
    from engine import PromptCache, TurnEvents

log = logging.getLogger(__name__)

# The app defines no tools; if the model calls one anyway it is told so, a few times per turn.
NO_TOOLS_RESULT = '{"error": "no tools are available in this chat"}'
MAX_TOOL_REPLIES = 3


def load_engine(
    path: str,
    profile: str,
    on_progress: Callable[[int, int], None],
    *,
    allow_oversized: bool = False,
) -> tuple[Any, HarmonyTokenizer, ModelInfo]:
    """The real loader: memory plan, weights and tokenizer. Raises EngineError subclasses.

    With the automatic profile a model that cannot fit is refused (loading it would swap the
    Mac to a crawl) unless the user chose to load it anyway (`allow_oversized`)."""
    model_dir = Path(path).expanduser()
    chosen, fit, planned, fits = profile, "", 0, True
    if profile == "auto":
        verdict = recommend(ModelArgs.from_model_dir(model_dir), machine_budget())
        if not allow_oversized:
            verdict.require_fit()
        chosen, fit, planned = verdict.profile, verdict.message, verdict.max_context
        fits = verdict.fits
    model = engine.load_model(model_dir, profile=chosen, on_progress=on_progress)
    tokenizer = HarmonyTokenizer.from_model_dir(model_dir)
    context = min(model.max_context, planned) if planned > 0 else model.max_context
    info = ModelInfo(
        path=str(model_dir),
        context_tokens=context,
        profile=chosen,
        dtype=model.dtype,
        expert_backend=model.expert_backend,
        expert_backend_reason=model.expert_backend_reason,
        load_seconds=model.load_seconds,
        fit_message=fit,
        fits=fits,
        is_demo=model.is_demo,
    )
    return model, tokenizer, info


def chat_sessions(instructions: str | None) -> SessionFactory:
    """The real session factory: a ChatSession continuing `history`, with our instructions."""

    def make(model: Any, tokenizer: Any, history: Sequence[Message]) -> TurnSession:
        return engine.ChatSession.from_messages(
            model, tokenizer, history, instructions=instructions
        )

    return make


class EngineWorker(QObject):
    load_progressed = Signal(int, int)  # done, total (weights)
    model_loaded = Signal(object)  # ModelInfo
    load_failed = Signal(object)  # ErrorInfo
    turn_progressed = Signal(object)  # TurnUpdate, already saved
    turn_finished = Signal(object)  # TurnResult, one per TurnRequest
    tokens_counted = Signal(int, int)  # key, tokens (-1: no tokenizer)
    history_failed = Signal(object)  # ErrorInfo: the answer is shown but could not be saved
    prompt_cache_cleared = Signal(object)  # bytes freed by clear_prompt_cache (may pass 2**31)

    def __init__(
        self,
        *,
        history_path: Path | str | None,
        loader: Loader = load_engine,
        session_factory: SessionFactory | None = None,
        instructions: str | None = None,
        prompt_cache_dir: Path | str | None = None,
        prompt_cache_bytes: int = DEFAULT_PROMPT_CACHE_BYTES,
        library_path: Path | str | None = None,
        index_jobs: engine.IndexJobs | None = None,  # app/library_indexer.py's thread
        tools_choice: Callable[[], ToolsChoice] | None = None,  # the settings; None: no tools
    ) -> None:
        super().__init__()
        # Python and MCP tools per chat, and the approval round trip (app/tool_turns.py).
        self.tools = ToolTurns(tools_choice, warn=self.history_failed.emit, parent=self)
        # None: no document library, so documents too long to read whole are refused.
        self._library = DocumentLibrary(
            None if library_path is None else Path(library_path),
            warn=self.history_failed.emit,
            jobs=index_jobs,
        )
        self._prompt_cache_dir = None if prompt_cache_dir is None else Path(prompt_cache_dir)
        self._prompt_cache_bytes = prompt_cache_bytes
        self._prompt_cache: PromptCache | None = None
        self._prompt_cache_warned = False
        self._history_path = history_path
        self._loader = loader
        self._factory = session_factory or chat_sessions(instructions)
        self._model: Any = None
        self._tokenizer: Any = None
        self._session: TurnSession | None = None
        self._conversation_id: int | None = None
        self._store: HistoryStore | None = None
        self._waiting_counts: list[tuple[int, str]] = []
        self._load_failed = False
        # Set from the UI thread when the app quits: a turn stopped then was interrupted, not
        # stopped by the user, and reopens saying so.
        self.quitting = threading.Event()
        self.served = ServedTurns()  # the app's API server's requests (issue 13)

    # -- slots (run on the engine thread) ----------------------------------------------

    @Slot(str, str)
    def load(self, path: str, profile: str) -> None:
        self._model = self._tokenizer = self._session = self._prompt_cache = None
        self.served.forget()  # its session holds the old model: never two models at once
        self._conversation_id = None
        try:
            self._model, self._tokenizer, info = self._loader(path, profile, self._progress)
        except EngineError as e:
            self._fail_load(ErrorInfo.from_exception(e, title="The model could not be loaded"))
            return
        except Exception as e:
            log.exception("loading %s crashed", path)
            self._fail_load(
                ErrorInfo.from_exception(e, title="The model could not be loaded", bug=True)
            )
            return
        self._load_failed = False
        self._open_prompt_cache()
        self.model_loaded.emit(info)
        waiting, self._waiting_counts = self._waiting_counts, []
        for key, text in waiting:
            self.count_tokens(key, text)

    @Slot(int, str)
    def count_tokens(self, key: int, text: str) -> None:
        if self._tokenizer is None:
            if self._load_failed:
                self.tokens_counted.emit(key, -1)
            else:
                self._waiting_counts.append((key, text))
            return
        try:
            self.tokens_counted.emit(key, len(self._tokenizer.encode(text)))
        except Exception:
            log.exception("counting tokens failed")
            self.tokens_counted.emit(key, -1)

    @Slot(object)
    def start_turn(self, request: TurnRequest) -> None:
        stream = AnswerStream(
            request, self._history(), self.turn_progressed.emit, self._warn_history
        )
        status, stats, problem = "error", {}, None
        try:
            session = self._session_for(request)
            session.set_effort(request.effort)
            session.set_sampling(request.sampling)
            if isinstance(session, engine.ChatSession | RemoteSession):  # fakes have neither
                if request.instructions is not None:
                    session.set_instructions(request.instructions)
                session.set_max_answer_tokens(request.answer_tokens)
            fresh = not any(m.role == "assistant" for m in request.history)
            tools = self.tools.for_turn(session, request.conversation_id, fresh=fresh)
            if tools is not None and request.documents is not None:
                tools.attach_documents(d.document for d in request.documents.documents)
            loop = self._library.tool_loop(
                session, request.documents, self._tokenizer, request.cancel, tools
            )
            if isinstance(session, RemoteSession) and tools is not None:
                session.use_tools(tools)  # offered as function tools; the session runs the calls
            elif loop is None and tools is not None:
                loop = tools.loop(cast("engine.ChatSession", session))
            if loop is not None:
                first = cast("TurnEvents", self._begin(session, request))  # a ChatSession's turn
                events = loop.run(first, request.cancel, request.finish)
                if tools is not None:
                    events = tools.recording(events, self._history(), request.message_id)
                finished = stream.consume(events)
            elif tools is not None:  # a server's turn that may run tools
                began = self._begin(session, request)
                events = tools.recording(began, self._history(), request.message_id)
                finished = stream.consume(events)
            else:
                finished = stream.consume(self._begin(session, request))
            for _ in range(MAX_TOOL_REPLIES):
                call = session.pending_tool_call
                if finished.reason != "tool_call" or call is None or request.cancel.is_set():
                    break
                # A malformed call gets back what to fix; a well-formed one, that no tools run here.
                reply = call.error_result() or NO_TOOLS_RESULT
                stream.record_tool_result(call, reply)
                finished = stream.consume(
                    session.submit_tool_result(call, reply, request.cancel, request.finish)
                )
            status = "complete"
            if finished.reason == "cancel":
                status = "interrupted" if self.quitting.is_set() else "cancelled"
            stats = stats_record(
                finished.stats,
                thinking_s=stream.thinking_s(),
                cut=stream.cut,
                reason=finished.reason,
            )
            if stream.citations is not None:
                stats["citations"] = citation_records(stream.citations)
        except EngineError as e:
            problem = ErrorInfo.from_exception(e, title="The answer could not be written")
        except Exception as e:
            log.exception("the engine failed during a turn")
            problem = ErrorInfo.from_exception(e, bug=True)
            self._session = None  # its state is unknown: rebuild it from history next time
        try:
            result = stream.finish(status, stats, problem)
        except Exception as e:  # the slot's boundary: the window must hear that the turn ended
            log.exception("finishing a turn failed")
            bug = ErrorInfo.from_exception(e, bug=True)
            result = TurnResult(request.turn_id, request.message_id, "error", stats, bug)
        self.turn_finished.emit(result)
        self._save_prompt_cache(request.conversation_id)

    @Slot(object)
    def run_served_job(self, item: ServedJob) -> None:
        """A request to the app's server, run between the window's turns (app/served_turns.py)."""
        self.served.run(self._model, self._tokenizer, item)

    @property
    def library_path(self) -> Path | None:
        return self._library.path  # set once, before the thread starts: safe to read anywhere

    @property
    def prompt_cache_dir(self) -> Path | None:
        return self._prompt_cache_dir  # set once, before the thread starts: safe to read anywhere

    @Slot(int)
    def forget_conversation(self, conversation_id: int) -> None:
        """The conversation was deleted: drop its saved prompt cache (and its session)."""
        if self._conversation_id == conversation_id:
            self._session = self._conversation_id = None
        self.tools.forget(conversation_id)
        if self._prompt_cache is not None:
            self._prompt_cache.delete(str(conversation_id))

    @Slot()
    def clear_prompt_cache(self) -> None:
        """Deletes every saved prompt cache; emits the bytes freed."""
        folder = self._prompt_cache_dir
        freed = 0
        try:
            freed = clear_prompt_cache_folder(folder) if folder is not None else 0
        except OSError as e:
            log.warning("cannot clear the prompt cache in %s: %s", folder, e)
        self.prompt_cache_cleared.emit(freed)

    @Slot(object)  # an int of bytes: gigabytes do not fit Qt's 32-bit int
    def set_prompt_cache_limit(self, max_bytes: int) -> None:
        self._prompt_cache_bytes = max_bytes
        if self._prompt_cache is not None:
            self._prompt_cache.max_bytes = max_bytes

    @Slot()
    def shutdown(self) -> None:
        """Drop the model here, on the thread that made its arrays, then end the thread."""
        self._session = self._model = self._tokenizer = None
        self.served.forget()
        self.tools.close()
        self._library.close()
        if self._store is not None:
            self._store.close()
            self._store = None
        app = QCoreApplication.instance()
        if app is not None:
            self.moveToThread(app.thread())  # so the UI thread may delete this object later
        QThread.currentThread().quit()

    # -- helpers -----------------------------------------------------------------------

    def _progress(self, done: int, total: int) -> None:
        self.load_progressed.emit(done, total)

    def _fail_load(self, problem: ErrorInfo) -> None:
        self._load_failed = True
        self.load_failed.emit(problem)
        waiting, self._waiting_counts = self._waiting_counts, []
        for key, _ in waiting:
            self.tokens_counted.emit(key, -1)

    def _history(self) -> HistoryStore | None:
        if self._history_path is None:
            return None
        if self._store is None:
            try:
                self._store = HistoryStore(self._history_path, recover_interrupted=False)
            except HistoryError as e:
                self._warn_history(ErrorInfo.from_exception(e, title="History unavailable"))
                return None
        return self._store

    def _warn_history(self, problem: ErrorInfo) -> None:
        self.history_failed.emit(problem)

    def _session_for(self, request: TurnRequest) -> TurnSession:
        if self._model is None:
            raise ModelLoadError(
                "No model is loaded yet. Wait for it to load, or choose a model folder."
            )
        session = self._session
        same = (
            session is not None
            and self._conversation_id == request.conversation_id
            and continues(session.messages, request.history)
        )
        if not same or session is None:
            session = self._factory(self._model, self._tokenizer, request.history)
            self._session, self._conversation_id = session, request.conversation_id
            if self._prompt_cache is not None and isinstance(session, engine.ChatSession):
                self._prompt_cache.restore(str(request.conversation_id), session)
        return session

    def _open_prompt_cache(self) -> None:
        """A prompt cache for the real engine's model; fakes in tests have none."""
        folder = self._prompt_cache_dir
        model, tokenizer = self._model, self._tokenizer
        if folder is None or not isinstance(model, engine.LoadedModel):
            return
        if not isinstance(tokenizer, HarmonyTokenizer):
            return
        try:
            self._prompt_cache = engine.PromptCache(
                model, tokenizer, folder, max_bytes=self._prompt_cache_bytes
            )
        except (OSError, EngineError) as e:  # the model works without one, only slower
            log.warning("no prompt cache in %s: %s", folder, e)
            return
        self._prompt_cache_warned = False
        self._drop_deleted_conversations()

    def _drop_deleted_conversations(self) -> None:
        """Files of conversations deleted while no model was loaded (or in another run)."""
        store, cache = self._history(), self._prompt_cache
        if store is None or cache is None:
            return
        try:
            live = {str(c.id) for c in store.list_conversations()}
        except HistoryError as e:
            log.warning("cannot list conversations to tidy the prompt cache: %s", e)
            return
        for key in cache.saved_keys():
            if key not in live:
                cache.delete(key)

    def _save_prompt_cache(self, conversation_id: int) -> None:
        session, cache = self._session, self._prompt_cache
        if cache is None or self._conversation_id != conversation_id:
            return
        if not isinstance(session, engine.ChatSession):
            return
        try:
            result = cache.save(str(conversation_id), session)
        except Exception:  # a bug of ours; the answer is already shown and stored
            log.exception("saving the prompt cache of conversation %d failed", conversation_id)
            return
        if result.problem and not self._prompt_cache_warned:
            self._prompt_cache_warned = True  # once: every later turn would fail the same way
            self.history_failed.emit(ErrorInfo("Prompt cache not saved", result.problem))

    @staticmethod
    def _begin(session: TurnSession, request: TurnRequest) -> Iterator[ChatEvent]:
        if request.action == "regenerate":
            return session.regenerate(request.cancel, request.finish)
        if request.action == "edit":
            return session.edit_last_user_message(request.text, request.cancel, request.finish)
        return session.send(request.text, request.cancel, request.finish)
