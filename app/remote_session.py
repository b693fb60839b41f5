"""A chat whose answers come from a server: the worker's TurnSession, speaking the engine's
events (ChannelDelta, TurnFinished; ToolStep and CitationsResolved when it searches documents
with the browser, or runs the chat's python and MCP tools, offered as function tools:
app/remote_tools.py), so a remote turn streams, saves and shows exactly like a local one.
Qt-free; runs on the engine thread.

"Finish now" (the `finish` event) during the reasoning stops the stream and asks again with the
reasoning so far given back and the model told to answer (a ReasoningCut in between, as
locally); a server that cannot take reasoning back ignores it (the window disables the button).

Stop is checked between streamed chunks, and closing the stream closes the HTTP response, which
is how a server learns to stop generating. A network fault raises RemoteError after keeping the
partial answer in the session (the worker has already saved and shown it), as a local stop would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast

from app.engine_requests import Finish
from app.remote_client import (
    Piece,
    Pump,
    RemoteError,
    ServerConfig,
    ServerProbe,
    cut_message,
    fault_message,
    make_client,
    stream_chat,
    stream_responses,
)
from app.remote_functions import ProviderTools
from app.remote_tools import (
    RemoteCall,
    Round,
    RunResult,
    ToolOffer,
    chat_messages,
    responses_items,
    run_tools,
)
from engine import (
    DEFAULT_MAX_CALLS,
    BrowserSession,
    ChannelDelta,
    ChatEvent,
    LoopEvent,
    Message,
    ReasoningCut,
    ReasoningEffort,
    SamplingSettings,
    ToolCallRequested,
    TurnFinished,
    TurnStats,
)

if TYPE_CHECKING:
    from openai import OpenAI

# gpt-oss's context; the server may hold less, and says so when a prompt is too long.
REMOTE_CONTEXT_TOKENS = 131_072
CHARS_PER_TOKEN = 4
# Ends the reasoning given back after "Finish now": a server that only continues the
# conversation reads the decision to answer in the model's own words (ours also forces it).
ANSWER_NOW_NOTE = "\n\nThe user asked for the answer now, so I stop thinking and answer."


class EstimatingTokenizer:
    """Token counts for attachment chips without the model's vocabulary on this machine: about
    four characters per o200k token in English prose, an estimate the server corrects.

    Also the TokenEncoder the browser measures its views with: a "token" is a run of up to four
    characters whose id is its length, so a view holds about `view_tokens` of the server's
    tokens. Only lengths are known, so `decode` gives a placeholder of the right length."""

    n_vocab = CHARS_PER_TOKEN + 1

    def encode(self, text: str) -> list[int]:
        return self.encode_ordinary(text)

    def encode_ordinary(self, text: str) -> list[int]:
        whole, rest = divmod(len(text), CHARS_PER_TOKEN)
        return [CHARS_PER_TOKEN] * whole + ([rest] if rest else [])

    def decode(self, tokens: Sequence[int]) -> str:
        return "\ufffd" * sum(tokens)


class RemoteSession:
    def __init__(
        self,
        config: ServerConfig,
        history: Sequence[Message] = (),
        *,
        responses: bool = True,
        tools: bool = True,
        reasoning_field: str = "",
        instructions: str | None = None,
        client: OpenAI | None = None,
        max_calls: int = DEFAULT_MAX_CALLS,
    ) -> None:
        self.config = config
        self.responses = responses  # the probe's verdict: Responses API, else Chat Completions
        self.tools = tools  # the server takes function tools
        self.reasoning_field = reasoning_field  # Chat Completions' field for reasoning back
        self.max_calls = max_calls
        self._client = client
        self._messages = [m for m in history if _kept(m)]
        self._effort = ReasoningEffort.MEDIUM.value
        self._sampling = SamplingSettings()
        self._instructions = instructions
        self._max_answer_tokens: int | None = None
        self._browser: BrowserSession | None = None
        self._tools: ProviderTools | None = None

    @classmethod
    def from_probe(
        cls,
        config: ServerConfig,
        found: ServerProbe,
        history: Sequence[Message] = (),
        *,
        instructions: str | None = None,
    ) -> RemoteSession:
        return cls(
            config,
            history,
            responses=found.responses,
            tools=found.tools,
            reasoning_field=found.reasoning_field,
            instructions=instructions,
        )

    @property
    def messages(self) -> tuple[Message, ...]:
        return tuple(self._messages)

    @property
    def pending_tool_call(self) -> ToolCallRequested | None:
        return None  # the session runs the calls it offers itself (app/remote_tools.py)

    @property
    def takes_reasoning_back(self) -> bool:
        """Whether "Finish now" can give the server the reasoning so far."""
        return self.responses or bool(self.reasoning_field)

    def use_browser(self, browser: BrowserSession, names: Sequence[str] = ()) -> None:
        """Offers `browser`'s functions to the server for the next turn (whose documents do not
        fit as text). Raises RemoteError when the server takes no function tools."""
        if not self.tools:
            what = ", ".join(names) if names else "The attached documents"
            raise RemoteError(
                f"Attach a shorter part of {what}: it is too long to send to {self.config.host} "
                "whole, and that server does not take the function tools that searching it "
                "needs.",
                kind="unsupported",
            )
        self._browser = browser

    def use_tools(self, tools: ProviderTools) -> None:
        """Offers the chat's python and MCP tools to the server for the next turn, each call
        run here after the user approves it. A server that takes no function tools gets none
        (the worker asks for them only when it does)."""
        if self.tools:
            self._tools = tools

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
        return self._turn(cancel or threading.Event(), finish)

    def regenerate(
        self, cancel: threading.Event | None = None, finish: Finish = None
    ) -> Iterator[ChatEvent]:
        while self._messages and self._messages[-1].role != "user":
            self._messages.pop()
        if not self._messages:
            raise ValueError("there is no question to answer again")
        return self._turn(cancel or threading.Event(), finish)

    def edit_last_user_message(
        self, text: str, cancel: threading.Event | None = None, finish: Finish = None
    ) -> Iterator[ChatEvent]:
        while self._messages and self._messages[-1].role != "user":
            self._messages.pop()
        if self._messages:
            self._messages.pop()
        return self.send(text, cancel, finish)

    def submit_tool_result(
        self,
        call: ToolCallRequested,
        result_text: str,
        cancel: threading.Event | None = None,
        finish: Finish = None,
    ) -> Iterator[ChatEvent]:
        raise RemoteError(
            "A server's tool calls are answered by the session itself, which runs the tools it "
            "offered; ask again.",
            kind="unsupported",
        )

    # -- one turn ------------------------------------------------------------------------

    def _turn(self, cancel: threading.Event, finish: Finish) -> Iterator[ChatEvent]:
        # ToolSteps and CitationsResolved pass through too: the worker's AnswerStream reads
        # them as it does a local ToolLoop's, and TurnSession only promises ChatEvents.
        return cast("Iterator[ChatEvent]", self._events(cancel, finish))

    def _events(self, cancel: threading.Event, finish: Finish) -> Iterator[LoopEvent]:
        """Generator: nothing goes over the network until the worker starts reading it."""
        tally = _Tally(time.monotonic())
        browser, self._browser = self._browser, None
        tools, self._tools = self._tools, None
        offer = ToolOffer.of(browser, self.responses, tools)

        def run(rounds: list[Round]) -> Generator[LoopEvent, None, RunResult]:
            can_cut = finish is not None and self.takes_reasoning_back
            return self._run(rounds, tally, cancel, finish if can_cut else None, offer)

        try:
            if offer.tools:
                result = yield from run_tools(
                    run, offer, browser, tools, cancel, max_calls=self.max_calls
                )
            else:
                result = yield from run([])
        finally:
            self._keep(tally.analysis, tally.answer)  # also when the worker stops reading
        yield TurnFinished(result.reason, tally.stats(), result.answer)  # type: ignore[arg-type]

    def _run(
        self,
        rounds: list[Round],
        tally: _Tally,
        cancel: threading.Event,
        finish: Finish,
        offer: ToolOffer,
    ) -> Generator[LoopEvent, None, RunResult]:
        """One streamed request. "Finish now" during its reasoning stops it and asks again
        with that reasoning given back (a round of its own) and the model told to answer."""
        analysis: list[str] = []
        answer: list[str] = []
        calls: list[RemoteCall] = []
        reason = "cut"
        cut = False
        pieces = Pump(self._pieces(rounds, offer))
        try:
            for kind, value in pieces.read(cancel):
                if cancel.is_set():
                    reason = "cancel"
                    break
                if finish is not None and finish.is_set() and analysis and not answer:
                    cut = True
                    break
                if kind == "analysis" or kind == "final":
                    tally.add(kind, value)
                    (analysis if kind == "analysis" else answer).append(value)
                    yield ChannelDelta(kind, value)
                elif kind == "idle":
                    # An empty delta: the worker shows text it held back for its next update
                    # (every 40 ms) even while the server is silent.
                    yield ChannelDelta("analysis", "")
                elif kind == "call":
                    calls.append(RemoteCall(*value))
                elif kind == "usage":
                    tally.usage(value)
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
            if translated.kind == "refused" and (tally.analysis or tally.answer):
                translated = cut_message(self.config, translated.details)  # it had answered
            raise translated from e
        finally:
            pieces.stop()
        if cut:
            yield ReasoningCut("user", len(tally.analysis))
            rounds.append(Round("".join(analysis) + ANSWER_NOW_NOTE))
            return (yield from self._run(rounds, tally, cancel, None, offer))
        if reason == "cut":  # the stream ended without saying the answer was complete
            raise cut_message(self.config, "the stream ended without a finish reason")
        return RunResult(reason, "".join(answer), "".join(analysis), tuple(calls))

    def _pieces(self, rounds: Sequence[Round], offer: ToolOffer) -> Generator[Piece, None, None]:
        if self._client is None:
            self._client = make_client(self.config)
        wire: list[dict[str, Any]] = [
            {"role": m.role, "content": m.text}
            for m in self._messages
            if m.role == "user" or m.channel in (None, "final")
        ]
        if self.responses:
            wire += responses_items(rounds)
        else:
            wire += chat_messages(rounds, self.reasoning_field)
        parts = [p for p in (self._instructions, offer.instructions) if p]
        options: dict[str, Any] = {
            "effort": self._effort,
            "instructions": "\n\n".join(parts) if parts else None,
            "temperature": self._sampling.temperature,
            "top_p": self._sampling.top_p,
            "tools": offer.tools,
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


class _Tally:
    """A turn's text and timing over all its requests, for the session and the facts line."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.first_at: float | None = None
        self.analysis: list[str] = []
        self.answer: list[str] = []
        self.prompt = self.generated = 0
        self.reported = False

    def add(self, kind: str, text: str) -> None:
        if self.first_at is None:
            self.first_at = time.monotonic()
        (self.analysis if kind == "analysis" else self.answer).append(text)

    def usage(self, value: tuple[int, int]) -> None:
        # The last request's prompt holds the others'; generated tokens add up.
        self.prompt = value[0]
        self.generated += value[1]
        self.reported = True

    def stats(self) -> TurnStats:
        usage = (self.prompt, self.generated) if self.reported else None
        return _stats(self.started, self.first_at, len(self.analysis), len(self.answer), usage)


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
