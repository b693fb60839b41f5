"""A chat whose answers come from a server: the worker's TurnSession, speaking the engine's
events (ChannelDelta, TurnFinished), so a remote turn streams, saves and shows exactly like a
local one. Qt-free; runs on the engine thread.

Stop is checked between streamed chunks, and closing the stream closes the HTTP response, which
is how a server learns to stop generating. A network fault raises RemoteError after keeping the
partial answer in the session (the worker has already saved and shown it), as a local stop would.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from app.engine_requests import Finish
from app.remote_client import (
    Piece,
    RemoteError,
    ServerConfig,
    cut_message,
    fault_message,
    make_client,
    stream_chat,
    stream_responses,
)
from engine import (
    ChannelDelta,
    ChatEvent,
    Message,
    ReasoningEffort,
    SamplingSettings,
    ToolCallRequested,
    TurnFinished,
    TurnStats,
)

if TYPE_CHECKING:
    from openai import OpenAI

# How often a remote turn waiting for the server looks at Stop: well under what a person notices.
STOP_CHECK_S = 0.05
# gpt-oss's context; the server may hold less, and says so when a prompt is too long.
REMOTE_CONTEXT_TOKENS = 131_072


class EstimatingTokenizer:
    """Token counts for attachment chips without the model's vocabulary on this machine: about
    four characters per o200k token in English prose, an estimate the server corrects."""

    def encode(self, text: str) -> list[int]:
        return [0] * ((len(text) + 3) // 4)


class RemoteSession:
    def __init__(
        self,
        config: ServerConfig,
        history: Sequence[Message] = (),
        *,
        responses: bool = True,
        instructions: str | None = None,
        client: OpenAI | None = None,
    ) -> None:
        self.config = config
        self.responses = responses  # the probe's verdict: Responses API, else Chat Completions
        self._client = client
        self._messages = [m for m in history if _kept(m)]
        self._effort = ReasoningEffort.MEDIUM.value
        self._sampling = SamplingSettings()
        self._instructions = instructions
        self._max_answer_tokens: int | None = None

    @property
    def messages(self) -> tuple[Message, ...]:
        return tuple(self._messages)

    @property
    def pending_tool_call(self) -> ToolCallRequested | None:
        return None  # no tools are offered to a server yet

    def set_effort(self, effort: ReasoningEffort | str) -> None:
        self._effort = ReasoningEffort(effort).value

    def set_sampling(self, settings: SamplingSettings) -> None:
        self._sampling = settings

    def set_instructions(self, instructions: str | None) -> None:
        self._instructions = instructions

    def set_max_answer_tokens(self, tokens: int | None) -> None:
        # Not sent: servers cap reasoning and answer together, so a cap meant for the answer
        # would cut the reasoning short. The instructions still ask for the length.
        self._max_answer_tokens = tokens

    def send(
        self, text: str, cancel: threading.Event | None = None, finish: Finish = None
    ) -> Iterator[ChatEvent]:
        self._messages.append(Message.user(text))
        return self._turn(cancel or threading.Event())

    def regenerate(
        self, cancel: threading.Event | None = None, finish: Finish = None
    ) -> Iterator[ChatEvent]:
        while self._messages and self._messages[-1].role != "user":
            self._messages.pop()
        if not self._messages:
            raise ValueError("there is no question to answer again")
        return self._turn(cancel or threading.Event())

    def edit_last_user_message(
        self, text: str, cancel: threading.Event | None = None, finish: Finish = None
    ) -> Iterator[ChatEvent]:
        while self._messages and self._messages[-1].role != "user":
            self._messages.pop()
        if self._messages:
            self._messages.pop()
        return self.send(text, cancel)

    def submit_tool_result(
        self,
        call: ToolCallRequested,
        result_text: str,
        cancel: threading.Event | None = None,
        finish: Finish = None,
    ) -> Iterator[ChatEvent]:
        raise RemoteError(
            "Tools are not offered to a server yet; ask without them.", kind="unsupported"
        )

    # -- one turn ------------------------------------------------------------------------

    def _turn(self, cancel: threading.Event) -> Iterator[ChatEvent]:
        """Generator: nothing goes over the network until the worker starts reading it."""
        started = time.monotonic()
        first_at: float | None = None
        analysis: list[str] = []
        answer: list[str] = []
        usage: tuple[int, int] | None = None
        reason = "cut"
        pieces = _Pump(self._pieces())
        try:
            for kind, value in pieces.read(cancel):
                if cancel.is_set():
                    reason = "cancel"
                    break
                if kind == "analysis" or kind == "final":
                    if first_at is None:
                        first_at = time.monotonic()
                    (analysis if kind == "analysis" else answer).append(value)
                    yield ChannelDelta(kind, value)
                elif kind == "idle":
                    # An empty delta: the worker shows text it held back for its next update
                    # (every 40 ms) even while the server is silent.
                    yield ChannelDelta("analysis", "")
                elif kind == "usage":
                    usage = value
                elif kind == "done":
                    reason = value
                    break
            else:
                if cancel.is_set():
                    reason = "cancel"
        except Exception as e:
            translated = e if isinstance(e, RemoteError) else fault_message(self.config, e)
            if translated is None:
                raise
            if translated.kind == "refused" and (analysis or answer):
                translated = cut_message(self.config, translated.details)  # it had answered
            raise translated from e
        finally:
            pieces.stop()
            self._keep(analysis, answer)  # also when the worker stops reading
        if reason == "cut":  # the stream ended without saying the answer was complete
            raise cut_message(self.config, "the stream ended without a finish reason")
        stats = _stats(started, first_at, len(analysis), len(answer), usage)
        yield TurnFinished(reason, stats, "".join(answer))  # type: ignore[arg-type]

    def _pieces(self) -> Generator[Piece, None, None]:
        if self._client is None:
            self._client = make_client(self.config)
        wire = [
            {"role": m.role, "content": m.text}
            for m in self._messages
            if m.role == "user" or m.channel in (None, "final")
        ]
        options: dict[str, Any] = {
            "effort": self._effort,
            "instructions": self._instructions,
            "temperature": self._sampling.temperature,
            "top_p": self._sampling.top_p,
        }
        stream = stream_responses if self.responses else stream_chat
        return stream(self._client, self.config.model, wire, options)

    def _keep(self, analysis: list[str], answer: list[str]) -> None:
        # Earlier reasoning is never sent again (gpt-oss drops it), but the session keeps it so
        # its messages match what the history store holds.
        if analysis:
            self._messages.append(Message.assistant("".join(analysis), channel="analysis"))
        if answer:
            self._messages.append(Message.assistant("".join(answer)))


class _Pump:
    """Reads the stream on its own thread, so Stop ends the turn at once even while the server
    is silent (a big model reading a long prompt): the reader only learns of Stop at the next
    chunk or the read timeout, and then closes the response, which stops the server."""

    def __init__(self, pieces: Generator[Piece, None, None]) -> None:
        self._pieces = pieces
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="remote-stream", daemon=True)

    def read(self, cancel: threading.Event) -> Iterator[Piece]:
        self._thread.start()
        while not cancel.is_set():
            try:
                kind, value = self._queue.get(timeout=STOP_CHECK_S)
            except queue.Empty:
                yield "idle", None
                continue
            if kind == "error":
                raise value
            if kind == "end":
                return
            yield kind, value  # type: ignore[misc]

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        try:
            for piece in self._pieces:
                if self._stopped.is_set():
                    break
                self._queue.put(piece)
        except Exception as e:  # handed to the engine thread, which reports it
            self._queue.put(("error", e))
        finally:
            self._pieces.close()  # this thread owns the generator: it closes the response
            self._queue.put(("end", None))


def _kept(message: Message) -> bool:
    return message.role == "user" or message.role == "assistant"


def _stats(
    started: float,
    first_at: float | None,
    reasoning: int,
    answer: int,
    usage: tuple[int, int] | None,
) -> TurnStats:
    """What the facts line shows. Servers stream about one token per chunk, so chunks count
    tokens when the server reports no usage."""
    now = time.monotonic()
    prompt, generated = usage if usage is not None else (0, reasoning + answer)
    ttft = (first_at or now) - started
    decode_s = now - (first_at or now)
    return TurnStats(
        prompt_tokens=prompt,
        reused_tokens=0,
        prefill_tokens=prompt,
        generated_tokens=generated,
        reasoning_tokens=reasoning,
        answer_tokens=answer,
        injected_tokens=0,
        ttft_s=ttft,
        prefill_tokens_per_s=prompt / ttft if ttft > 0 else 0.0,
        decode_tokens_per_s=(generated - 1) / decode_s if decode_s > 0 and generated > 1 else 0.0,
        elapsed_s=now - started,
    )
