"""Talking to an OpenAI-compatible server (issue 14): its address, the probe, and one streamed
turn as plain (kind, text) pieces. Qt-free and MLX-free.

It lives in app/, not engine/: it is a client of someone else's engine, and the app may use
engine/ only through that package's exports. The `openai` SDK is imported on first use, so the
window still opens before it loads. Servers differ in what they stream (field-2026-12.md):
reasoning comes as `reasoning` (vLLM, Ollama, LM Studio) or `reasoning_content` (llama.cpp) in
Chat Completions, and as `reasoning_text` deltas in the Responses API; all are read.
"""

from __future__ import annotations

import ssl
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

from engine import EngineError

if TYPE_CHECKING:
    from openai import OpenAI

Piece = tuple[Literal["analysis", "final", "usage", "done", "idle"], Any]
CONNECT_TIMEOUT_S = 10.0
# Between two streamed chunks: gpt-oss-120b reading a long prompt can be silent for a while.
READ_TIMEOUT_S = 120.0


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
    """What a server offers: its model ids and whether it has the Responses API (else only Chat
    Completions; gpt-oss's reasoning is read from either)."""

    models: tuple[str, ...]
    responses: bool

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
    return ServerProbe(models, responses)


def stream_responses(
    client: OpenAI, model: str, messages: list[dict[str, str]], options: dict[str, Any]
) -> Generator[Piece, None, None]:
    """One turn through the Responses API."""
    instructions = options.pop("instructions", None)
    extra: dict[str, Any] = {}
    if instructions:
        extra["instructions"] = instructions
    extra |= {"temperature": options["temperature"], "top_p": options["top_p"]}
    create: Any = client.responses.create  # the SDK's overloads want literal arguments
    stream = create(
        model=model,
        input=messages,
        reasoning={"effort": options["effort"]},
        stream=True,
        **extra,
    )
    with stream:
        for event in stream:
            kind = event.type
            if kind == "response.reasoning_text.delta":
                yield ("analysis", event.delta)
            elif kind == "response.output_text.delta":
                yield ("final", event.delta)
            elif kind in ("response.completed", "response.incomplete"):
                usage = getattr(event.response, "usage", None)
                if usage is not None:
                    yield ("usage", (usage.input_tokens, usage.output_tokens))
                reason = "length" if kind == "response.incomplete" else "stop"
                yield ("done", reason)
                return
            elif kind in ("response.failed", "error"):
                raise RemoteError(
                    "The server failed while answering; try again, or check the server's log.",
                    kind="server",
                    details=str(event),
                )


def stream_chat(
    client: OpenAI, model: str, messages: list[dict[str, str]], options: dict[str, Any]
) -> Generator[Piece, None, None]:
    """One turn through Chat Completions; effort as `reasoning_effort`."""
    instructions = options.pop("instructions", None)
    sent = ([{"role": "system", "content": instructions}] if instructions else []) + messages
    extra: dict[str, Any] = {}
    extra |= {"temperature": options["temperature"], "top_p": options["top_p"]}
    create: Any = client.chat.completions.create
    stream = create(
        model=model,
        messages=sent,
        reasoning_effort=options["effort"],
        stream=True,
        **extra,
    )
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
                if choice.finish_reason is not None:
                    yield ("done", "length" if choice.finish_reason == "length" else "stop")
                    return


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
        return RemoteError(
            f"{host} answered with an error ({error.status_code}); try again, or check the "
            "server's log.",
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
