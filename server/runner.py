"""The model runner: the one thread that owns MLX, running one request at a time from a queue.

The HTTP layer knows only `ModelRunner.submit(job, ticket)`: a Job is plain data (harmony
messages, tools, effort, limits), and the runner reports through the Ticket as values (the
engine's ChatEvents, then Started/Failed of its own), so the app's EngineWorker can implement the
same protocol later. Consecutive requests share one KV context: each request gets a fresh
ChatSession for its messages, which takes over the previous session's cache, and the turn rewinds
it to the prefix the two prompts share (engine.chat.context), so a conversation that grows by a
turn prefills only the new turn.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeAlias

from engine import (
    Channel,
    ChatEvent,
    ChatSession,
    ContextOverflowError,
    EngineError,
    HarmonyTokenizer,
    LoadedModel,
    Message,
    OutputSchemaError,
    ReasoningEffort,
    Role,
    Sampler,
    SamplingSettings,
    ToolDescription,
    TurnEvents,
    TurnFinished,
    make_sampler,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """One request: the conversation (user, assistant and tool messages; it ends with the user
    message or tool result to answer) and how to answer it."""

    history: tuple[Message, ...]
    instructions: str | None = None
    tools: tuple[ToolDescription, ...] = ()
    effort: ReasoningEffort = ReasoningEffort.MEDIUM
    max_output_tokens: int | None = None
    sampling: SamplingSettings | None = None
    output_schema: Mapping[str, Any] | None = field(default=None, hash=False)


@dataclass(frozen=True)
class Started:
    """The turn passed its up-front checks and is running (a stream may send headers now)."""


@dataclass(frozen=True)
class Failed:
    """The request could not run: `status` is the HTTP status to answer with."""

    status: int
    message: str
    code: str | None = None
    param: str | None = None


RunnerEvent: TypeAlias = Started | Failed | ChatEvent


class QueueFullError(Exception):
    """More requests are waiting than the runner accepts."""


class Ticket:
    """One request's channel back to its HTTP handler: the runner thread emits, the handler's
    event loop awaits. `cancel` is the engine's cancel event (set when the client goes away)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.cancel = threading.Event()
        self._loop = loop
        self._events: asyncio.Queue[RunnerEvent] = asyncio.Queue()

    def emit(self, event: RunnerEvent) -> None:
        """Thread-safe. A handler whose loop has closed can no longer listen: stop its turn."""
        try:
            self._loop.call_soon_threadsafe(self._events.put_nowait, event)
        except RuntimeError:
            self.cancel.set()

    async def next(self) -> RunnerEvent:
        return await self._events.get()


class ModelRunner(Protocol):
    @property
    def model_id(self) -> str: ...

    def submit(self, job: Job, ticket: Ticket) -> None:
        """Queues the job (raises QueueFullError when too many wait); its events go to
        `ticket`, ending with Failed or TurnFinished."""
        ...


Loader: TypeAlias = Callable[[], tuple[LoadedModel, HarmonyTokenizer]]


class RunnerThread:
    """The standalone runner: loads the model on its own thread and answers jobs in order.

    `session_options` go to every ChatSession (e.g. `budget`, `prefill_step`; tests pass a
    scripted `sampler`). `max_queue` counts requests waiting behind the running one. An
    `answerer` replaces the default JobAnswerer (server/distributed.py's handles a lost rank)."""

    def __init__(
        self,
        model_id: str,
        loader: Loader,
        *,
        max_queue: int = 8,
        session_options: Mapping[str, Any] | None = None,
        on_finished: Callable[[TurnFinished], None] | None = None,
        answerer: JobAnswerer | None = None,
    ) -> None:
        if max_queue < 0:
            raise ValueError("max_queue must be >= 0")
        self._model_id = model_id
        self._loader = loader
        self._max_queue = max_queue
        self._answerer = answerer or JobAnswerer(session_options, on_finished)
        self._jobs: queue.Queue[tuple[Job, Ticket] | None] = queue.Queue()
        self._outstanding = 0  # running or waiting
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._load_error: BaseException | None = None
        self._current: Ticket | None = None  # the request being answered
        self._thread = threading.Thread(target=self._main, name="model-runner", daemon=True)
        self._thread.start()

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def _session(self) -> ChatSession | None:
        return self._answerer.session

    def wait_ready(self, timeout: float | None = None) -> None:
        """Blocks until the model is loaded; re-raises what stopped it from loading."""
        if not self._ready.wait(timeout):
            raise TimeoutError("the model is still loading")
        if self._load_error is not None:
            raise self._load_error

    def submit(self, job: Job, ticket: Ticket) -> None:
        with self._lock:
            # One runs and up to max_queue wait behind it.
            if self._outstanding > self._max_queue:
                raise QueueFullError(f"{self._outstanding - 1} requests are already waiting")
            self._outstanding += 1
        self._jobs.put((job, ticket))

    def close(self, timeout: float = 10.0) -> None:
        self._jobs.put(None)
        self._thread.join(timeout)

    def _main(self) -> None:
        try:
            model, tokenizer = self._loader()
        except BaseException as e:  # reported to whoever waits for the model
            self._load_error = e
            self._ready.set()
            return
        self._ready.set()
        while (item := self._jobs.get()) is not None:
            job, ticket = item
            self._current = ticket
            try:
                self._answerer.answer(model, tokenizer, job, ticket)
            except Exception as e:  # the thread boundary: report, keep serving
                log.exception("a request failed")
                ticket.emit(Failed(500, f"The model failed while answering: {e}"))
            finally:
                self._current = None
                with self._lock:
                    self._outstanding -= 1


class JobAnswerer:
    """Answers jobs one at a time on the thread that owns the model (RunnerThread's, or the
    app's engine thread), each new session taking over the previous one's KV cache."""

    def __init__(
        self,
        session_options: Mapping[str, Any] | None = None,
        on_finished: Callable[[TurnFinished], None] | None = None,
    ) -> None:
        self._options = dict(session_options or {})
        self._on_finished = on_finished
        self.session: ChatSession | None = None
        self._cap: CappedSampler | None = None

    def answer(
        self, model: LoadedModel, tokenizer: HarmonyTokenizer, job: Job, ticket: Ticket
    ) -> None:
        if ticket.cancel.is_set():  # the client left while it waited
            ticket.emit(Failed(499, "The client closed the request.", code="cancelled"))
            return
        try:
            session, events = self._start(model, tokenizer, job, ticket.cancel)
        except ContextOverflowError as e:
            ticket.emit(Failed(400, str(e), code="context_length_exceeded", param="input"))
            return
        except OutputSchemaError as e:
            ticket.emit(Failed(400, str(e), code="invalid_json_schema", param="schema"))
            return
        except (EngineError, ValueError) as e:
            ticket.emit(Failed(400, str(e)))
            return
        self.session = session
        ticket.emit(Started())
        for event in events:
            if isinstance(event, TurnFinished) and self._cap is not None and self._cap.reached:
                event = replace(event, reason="length")
            if isinstance(event, TurnFinished) and self._on_finished is not None:
                self._on_finished(event)  # before the client can see the turn end
            ticket.emit(event)

    def _start(
        self,
        model: LoadedModel,
        tokenizer: HarmonyTokenizer,
        job: Job,
        cancel: threading.Event,
    ) -> tuple[ChatSession, TurnEvents]:
        if not job.history:
            raise ValueError("The request has no input. Send at least one user message.")
        last = job.history[-1]
        answering_tool = last.role is Role.TOOL
        history = job.history[:-1] if answering_tool else job.history
        cap = None
        if job.max_output_tokens is not None:
            base = self._options.get("sampler") or make_sampler(job.sampling or SamplingSettings())
            cap = CappedSampler(base, job.max_output_tokens, cancel)
        self._cap = cap
        options = self._session_options(job, cap)
        session = ChatSession.from_messages(model, tokenizer, history, **options)
        self._adopt_cache(session)
        if job.output_schema is not None:
            session.set_output_schema(dict(job.output_schema))
        if not answering_tool:
            if last.role is Role.ASSISTANT and last.channel == Channel.ANALYSIS:
                # Reasoning given back, cut short by a client's "Finish now": answer from it.
                finish = threading.Event()
                finish.set()
                return session, session.continue_answer(cancel, finish)
            if last.role is not Role.USER:
                raise ValueError(
                    "The input must end with a user message, a function call output, or the "
                    "assistant's reasoning."
                )
            return session, session.regenerate(cancel)
        call = session.pending_tool_call
        if call is None or call.recipient != last.author.name:
            raise ValueError(
                f"The function call output for {last.author.name} does not answer the last "
                "function call of the input. Send the function_call item before its output."
            )
        channel = last.channel or Channel.COMMENTARY
        return session, session.submit_tool_result(call, last.text, cancel, channel=channel)

    def _session_options(self, job: Job, cap: CappedSampler | None) -> dict[str, Any]:
        options: dict[str, Any] = {
            "effort": job.effort,
            "instructions": job.instructions,
            "tools": job.tools,
            **self._options,
        }
        if job.sampling is not None:
            options["sampling"] = job.sampling
        if cap is not None:
            options["sampler"] = cap
        return options

    def _adopt_cache(self, session: ChatSession) -> None:
        """The new session starts from the previous one's KV cache (see the module docstring)."""
        previous = self.session
        if previous is None or not previous.cached_tokens:
            return
        old = previous.context
        session.context.install(old.tokens, list(old.cache), old.snapshots)


class CappedSampler:
    """Ends the turn after `limit` sampled tokens (OpenAI's max_output_tokens counts reasoning
    and answer together; the engine's own caps count each separately). The turn stops through
    its cancel event, and is reported as "length"."""

    def __init__(self, sampler: Sampler, limit: int, cancel: threading.Event) -> None:
        self._sampler = sampler
        self._left = limit
        self._cancel = cancel
        self.reached = False

    def __call__(self, logprobs: Any) -> Any:
        # Sample n+1 is asked for once token n is taken; cancelled then, it is never used.
        self._left -= 1
        if self._left < 0 and not self._cancel.is_set():
            self.reached = True
            self._cancel.set()
        return self._sampler(logprobs)
