"""Talking to an OpenAI-compatible server (issue 14): its address, the probe, and one streamed
turn as plain (kind, text) pieces. Qt-free and MLX-free.

It lives in app/, not engine/: it is a client of someone else's engine, and the app may use
engine/ only through that package's exports. The `openai` SDK is imported on first use, so the
window still opens before it loads. Servers differ in what they stream (field-2026-12.md):
reasoning comes as `reasoning` (vLLM, Ollama, LM Studio) or `reasoning_content` (llama.cpp) in
Chat Completions, and as `reasoning_text` deltas in the Responses API; all are read. Function
calls come back whole as "call" pieces (Chat Completions streams them as deltas by index).

The probe generates nothing on a server with the Responses API (reasoning goes back as items,
tools are part of it). Without it, one small streamed generation, closed at its first reasoning
delta, tells whether the server takes function tools and names its reasoning field.
"""

from __future__ import annotations

import queue
import ssl
import threading
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

from engine import EngineError

if TYPE_CHECKING:
    from openai import OpenAI

# "call": (call_id, function name, arguments JSON), one per function call the model made.
Piece = tuple[Literal["analysis", "final", "usage", "done", "idle", "call"], Any]
CONNECT_TIMEOUT_S = 10.0
# How often a remote turn waiting for the server looks at Stop: well under what a person notices.
STOP_CHECK_S = 0.05
# Between two streamed chunks: gpt-oss-120b reading a long prompt can be silent for a while.
READ_TIMEOUT_S = 120.0
# The probe's one small generation on a server without the Responses API: enough tokens for
# gpt-oss to start its reasoning, which shows the field the server names it with.
PROBE_TOKENS = 24
REASONING_FIELDS = ("reasoning", "reasoning_content")


class RemoteError(EngineError):
    """The server could not be reached or refused the request; the first sentence says what to
    do. `kind` lets a caller react without parsing the text."""

    def __init__(self, message: str, *, kind: str, details: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.details = details


@dataclass(frozen=True)
class ServerConfig:
    """Where answers are computed. The token is held only in memory (the app keeps it in the
    system keychain); `ca_file` replaces the system's certificate authorities."""

    base_url: str
    token: str = ""
    model: str = ""
    verify_tls: bool = True
    ca_file: str = ""
    read_timeout_s: float = READ_TIMEOUT_S

    @property
    def host(self) -> str:
        """The server's name as the window shows it ("on studio.local")."""
        return urlparse(self.base_url).hostname or self.base_url


@dataclass(frozen=True)
class ServerProbe:
    """What a server offers: its model ids, whether it has the Responses API (else only Chat
    Completions; gpt-oss's reasoning is read from either), whether it takes function tools, and
    for Chat Completions the field its reasoning comes in ("" when none was seen), which is the
    field it reads reasoning back from (the Responses API takes reasoning items instead)."""

    models: tuple[str, ...]
    responses: bool
    tools: bool = True
    reasoning_field: str = ""

    @property
    def takes_reasoning_back(self) -> bool:
        """Whether reasoning can be given back, which "Finish now" needs on a server."""
        return self.responses or bool(self.reasoning_field)

    def finish_now_problem(self) -> str:
        """Why "Finish now" cannot work with this server ("" when it can)."""
        if self.takes_reasoning_back:
            return ""
        return (
            "Finish Now needs a server that takes reasoning back; this one has neither the "
            "Responses API nor a reasoning field in Chat Completions."
        )

    def summary(self) -> str:
        api = "Responses and Chat Completions" if self.responses else "Chat Completions only"
        names = ", ".join(self.models) if self.models else "no models"
        return f"{len(self.models)} model(s): {names}. API: {api}."


def make_client(config: ServerConfig, *, read_timeout_s: float | None = None) -> OpenAI:
    import httpx2
    from openai import OpenAI

    if not config.base_url.startswith(("http://", "https://")):
        raise RemoteError(
            f"Enter the server's address with http:// or https://, not {config.base_url!r}.",
            kind="address",
        )
    verify: bool | ssl.SSLContext = config.verify_tls
    if config.verify_tls and config.ca_file:
        try:
            verify = ssl.create_default_context(cafile=config.ca_file)
        except (OSError, ssl.SSLError) as e:
            raise RemoteError(
                f"Choose a readable certificate file; {config.ca_file} cannot be used.",
                kind="tls",
                details=str(e),
            ) from e
    read = config.read_timeout_s if read_timeout_s is None else read_timeout_s
    timeout = httpx2.Timeout(read, connect=CONNECT_TIMEOUT_S)
    http = httpx2.Client(verify=verify, timeout=timeout)
    # max_retries=0: a refused or failing server is reported at once, not after silent retries.
    return OpenAI(
        base_url=config.base_url.rstrip("/"),
        api_key=config.token or "none",
        max_retries=0,
        timeout=timeout,
        http_client=http,
    )


def probe(config: ServerConfig) -> ServerProbe:
    """Lists the server's models and checks for /responses without generating anything."""
    import httpx2
    from openai import APIStatusError

    client = make_client(config, read_timeout_s=CONNECT_TIMEOUT_S)
    with client, translated_faults(config):
        models = tuple(sorted(m.id for m in client.models.list()))
        # An empty body costs the server nothing: 400/422 says the endpoint is there, 404 not.
        try:
            client.post("/responses", cast_to=httpx2.Response, body={})
            responses = True
        except APIStatusError as e:
            if e.status_code in (401, 403):
                raise
            responses = e.status_code not in (404, 405, 501)
        if responses or not models:
            return ServerProbe(models, responses)
        tools, field = _probe_chat(client, models[0])
    return ServerProbe(models, responses, tools, field)


def _probe_chat(client: OpenAI, model: str) -> tuple[bool, str]:
    """One small streamed generation: refused with a function tool means no tools; the first
    reasoning delta names the reasoning field. Closed at that delta, so it costs a prompt."""
    from openai import BadRequestError, UnprocessableEntityError

    tool = {"type": "function", "function": {"name": "probe", "parameters": {"type": "object"}}}
    create: Any = client.chat.completions.create
    body = {"model": model, "messages": [{"role": "user", "content": "Hi"}], "stream": True}
    body |= {"max_tokens": PROBE_TOKENS, "reasoning_effort": "low"}
    try:
        stream = create(tools=[tool], **body)
        tools = True
    except (BadRequestError, UnprocessableEntityError):
        stream, tools = create(**body), False
    with stream:
        for chunk in stream:
            for choice in chunk.choices:
                for name in REASONING_FIELDS:
                    if isinstance(getattr(choice.delta, name, None), str):
                        return tools, name
    return tools, ""


def stream_responses(
    client: OpenAI, model: str, messages: list[dict[str, Any]], options: dict[str, Any]
) -> Generator[Piece, None, None]:
    """One turn through the Responses API; `options["tools"]` are offered as function tools."""
    instructions = options.pop("instructions", None)
    extra: dict[str, Any] = {}
    if instructions:
        extra["instructions"] = instructions
    if options.get("tools"):
        extra["tools"] = options["tools"]
    extra |= {"temperature": options["temperature"], "top_p": options["top_p"]}
    create: Any = client.responses.create  # the SDK's overloads want literal arguments
    stream = create(
        model=model,
        input=messages,
        reasoning={"effort": options["effort"]},
        stream=True,
        **extra,
    )
    called = False
    with stream:
        for event in stream:
            kind = event.type
            if kind == "response.reasoning_text.delta":
                yield ("analysis", event.delta)
            elif kind == "response.output_text.delta":
                yield ("final", event.delta)
            elif kind == "response.output_item.done" and event.item.type == "function_call":
                called = True
                item = event.item
                yield ("call", (item.call_id, item.name, item.arguments))
            elif kind in ("response.completed", "response.incomplete"):
                usage = getattr(event.response, "usage", None)
                if usage is not None:
                    yield ("usage", (usage.input_tokens, usage.output_tokens))
                reason = "length" if kind == "response.incomplete" else "stop"
                yield ("done", "tool_call" if called and reason == "stop" else reason)
                return
            elif kind in ("response.failed", "error"):
                error = getattr(getattr(event, "response", None), "error", None) or event
                raise RemoteError(
                    "The server failed while answering"
                    f"{_quoted(getattr(error, 'message', None))}; try again, or check the "
                    "server's log.",
                    kind="server",
                    details=str(event),
                )


def stream_chat(
    client: OpenAI, model: str, messages: list[dict[str, Any]], options: dict[str, Any]
) -> Generator[Piece, None, None]:
    """One turn through Chat Completions; effort as `reasoning_effort`. Tool calls stream as
    deltas by index (the id and name first, the arguments in pieces) and are yielded whole."""
    instructions = options.pop("instructions", None)
    sent = ([{"role": "system", "content": instructions}] if instructions else []) + messages
    extra: dict[str, Any] = {}
    if options.get("tools"):
        extra["tools"] = options["tools"]
    extra |= {"temperature": options["temperature"], "top_p": options["top_p"]}
    create: Any = client.chat.completions.create
    stream = create(
        model=model,
        messages=sent,
        reasoning_effort=options["effort"],
        stream=True,
        **extra,
    )
    calls: dict[int, list[str]] = {}  # index -> [id, name, arguments so far]
    with stream:
        for chunk in stream:
            if chunk.usage is not None:
                yield ("usage", (chunk.usage.prompt_tokens, chunk.usage.completion_tokens))
            for choice in chunk.choices:
                delta = choice.delta
                # Not in the SDK's types: pydantic keeps unknown fields as attributes.
                thinking = getattr(delta, "reasoning", None) or getattr(
                    delta, "reasoning_content", None
                )
                if isinstance(thinking, str) and thinking:
                    yield ("analysis", thinking)
                if delta.content:
                    yield ("final", delta.content)
                for call in delta.tool_calls or ():
                    found = calls.setdefault(call.index, ["", "", ""])
                    found[0] = call.id or found[0]
                    if call.function is not None:
                        found[1] = call.function.name or found[1]
                        found[2] += call.function.arguments or ""
                if choice.finish_reason is not None:
                    for index in sorted(calls):
                        call_id, name, arguments = calls[index]
                        yield ("call", (call_id or f"call_{index}", name, arguments))
                    if choice.finish_reason == "length":
                        yield ("done", "length")
                    else:
                        yield ("done", "tool_call" if calls else "stop")
                    return


class Pump:
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


@contextmanager
def translated_faults(config: ServerConfig) -> Iterator[None]:
    """Turns the SDK's and httpx's exceptions into one RemoteError sentence each."""
    try:
        yield
    except RemoteError:
        raise
    except Exception as e:
        translated = fault_message(config, e)
        if translated is None:
            raise
        raise translated from e


def fault_message(config: ServerConfig, error: Exception) -> RemoteError | None:
    import httpx2
    import openai

    host = config.host
    details = f"{type(error).__name__}: {error}"
    if isinstance(error, openai.APITimeoutError | httpx2.TimeoutException):
        return RemoteError(
            f"{host} stopped answering (timed out); check that the server is running and "
            "try again.",
            kind="timeout",
            details=details,
        )
    if isinstance(error, openai.APIConnectionError | httpx2.ConnectError):
        cause: BaseException | None = error
        while cause is not None and not isinstance(cause, ssl.SSLError):
            cause = cause.__cause__ or cause.__context__
        if cause is not None:
            return RemoteError(
                f"The secure connection to {host} failed; check its certificate, or choose its "
                "CA file in Settings › Model.",
                kind="tls",
                details=f"{details} ({cause})",
            )
        return RemoteError(
            f"{host} cannot be reached; check the address and that the server is running.",
            kind="refused",
            details=details,
        )
    if isinstance(error, openai.AuthenticationError | openai.PermissionDeniedError):
        return RemoteError(
            f"{host} refused the API token; enter the server's token in Settings › Model.",
            kind="unauthorized",
            details=details,
        )
    if isinstance(error, openai.NotFoundError):
        return RemoteError(
            f"{host} does not have the model {config.model!r}; probe the server in Settings › "
            "Model and choose one of its models.",
            kind="not_found",
            details=details,
        )
    if isinstance(error, openai.APIStatusError):
        body = error.body.get("message") if isinstance(error.body, dict) else None
        return RemoteError(
            f"{host} answered with an error ({error.status_code}){_quoted(body)}; try again, "
            "or check the server's log.",
            kind="server",
            details=details,
        )
    if isinstance(error, httpx2.HTTPError):  # the connection broke while the answer streamed
        return cut_message(config, details)
    return None


def cut_message(config: ServerConfig, details: str) -> RemoteError:
    return RemoteError(
        f"The connection to {config.host} broke while the answer streamed; what arrived is "
        "kept. Regenerate to try again.",
        kind="cut",
        details=details,
    )


def _quoted(message: object, limit: int = 300) -> str:
    """The server's own words about a failure (': "A machine of the group was lost …"'), which
    say more than a status code; cut short, since a server may send a whole traceback."""
    if not isinstance(message, str) or not message.strip():
        return ""
    text = " ".join(message.split())
    return f": “{text if len(text) <= limit else text[: limit - 1] + '…'}”"
