"""The remote backend against small fake servers that replay what vLLM (`reasoning`), llama.cpp
(`reasoning_content`, no Responses API) and LM Studio (Responses `reasoning_text`) stream for
gpt-oss, through the real openai client on loopback; and its faults: refused, 401, a stream cut
mid-answer, a server that stops answering."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import ipaddress
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from app.remote_client import RemoteError, ServerConfig, probe
from app.remote_session import RemoteSession
from engine import ChannelDelta, Message, SamplingSettings, TurnFinished

TOKEN = "fake-token-123"
REASONING = ["The user ", "greets; ", "reply briefly."]
ANSWER = ["Hello", " from", " the", " server", "."]


@dataclass
class Fake:
    """A fake server's behaviour, and what it received."""

    flavour: str  # "vllm", "llamacpp" or "lmstudio"
    cut_after: int | None = None  # answer chunks sent before the connection drops
    stall_s: float = 0.0  # silence before the answer (to time the client out)
    fail_with: str | None = None  # the server's own words for a failure it reports
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    @property
    def config(self) -> ServerConfig:
        return ServerConfig(self.url + "/v1", TOKEN, "openai/gpt-oss-20b", read_timeout_s=2.0)


def _app(fake: Fake) -> Starlette:
    def authorized(request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {TOKEN}"

    def denied() -> Response:
        return JSONResponse({"error": {"message": "Invalid API key"}}, status_code=401)

    async def models(request: Request) -> Response:
        if not authorized(request):
            return denied()
        data = [{"id": "openai/gpt-oss-20b", "object": "model", "created": 0, "owned_by": "x"}]
        return JSONResponse({"object": "list", "data": data})

    async def chat(request: Request) -> Response:
        if not authorized(request):
            return denied()
        fake.requests.append(await request.json())
        if fake.fail_with is not None:
            failure = {"message": fake.fail_with, "type": "server_error", "code": "lost"}
            return JSONResponse({"error": failure}, status_code=503)
        field_name = "reasoning_content" if fake.flavour == "llamacpp" else "reasoning"

        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            body = {"id": "c1", "object": "chat.completion.chunk", "created": 0}
            return "data: " + json.dumps(body | {"model": "m", "choices": [choice]}) + "\n\n"

        async def events() -> AsyncIterator[str]:
            yield chunk({"role": "assistant", "content": ""})
            for piece in REASONING:
                yield chunk({field_name: piece})
            await asyncio.sleep(fake.stall_s)
            for i, piece in enumerate(ANSWER):
                if fake.cut_after is not None and i == fake.cut_after:
                    raise ConnectionResetError("the fake server drops the connection")
                yield chunk({"content": piece})
            yield chunk({}, "stop")
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def responses(request: Request) -> Response:
        if fake.flavour != "lmstudio":
            return JSONResponse({"error": "not found"}, status_code=404)
        if not authorized(request):
            return denied()
        body = await request.json()
        if "input" not in body:
            return JSONResponse({"error": {"message": "input is required"}}, status_code=400)
        fake.requests.append(body)

        def event(kind: str, **data: Any) -> str:
            return f"event: {kind}\ndata: " + json.dumps({"type": kind, **data}) + "\n\n"

        response = {"id": "resp_1", "object": "response", "created_at": 0, "model": "m"}

        async def events() -> AsyncIterator[str]:
            yield event("response.created", response=response, sequence_number=0)
            where = {"output_index": 0, "content_index": 0, "sequence_number": 1}
            for piece in REASONING:
                yield event("response.reasoning_text.delta", item_id="rs_1", delta=piece, **where)
            await asyncio.sleep(fake.stall_s)
            if fake.fail_with is not None:
                error = {"code": "server_error", "message": fake.fail_with}
                failed = response | {"status": "failed", "error": error}
                yield event("response.failed", response=failed, sequence_number=2)
                return
            for i, piece in enumerate(ANSWER):
                if fake.cut_after is not None and i == fake.cut_after:
                    raise ConnectionResetError("the fake server drops the connection")
                yield event(
                    "response.output_text.delta", item_id="msg_1", delta=piece, logprobs=[], **where
                )
            usage = {"input_tokens": 42, "output_tokens": 8, "total_tokens": 50}
            done = response | {"status": "completed", "usage": usage}
            yield event("response.completed", response=done, sequence_number=9)

        return StreamingResponse(events(), media_type="text/event-stream")

    return Starlette(
        routes=[
            Route("/v1/models", models),
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/responses", responses, methods=["POST"]),
        ]
    )


def run_fake(fake: Fake, **tls: Any) -> Iterator[Fake]:
    """Serves `fake` on loopback (over HTTPS with `ssl_certfile`/`ssl_keyfile`)."""
    server = uvicorn.Server(
        uvicorn.Config(_app(fake), host="127.0.0.1", port=0, log_level="critical", **tls)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(400):
        if server.started:
            break
        threading.Event().wait(0.025)
    assert server.started
    scheme = "https" if tls else "http"
    fake.url = f"{scheme}://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    try:
        yield fake
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(params=["vllm", "llamacpp", "lmstudio"])
def fake(request: pytest.FixtureRequest) -> Iterator[Fake]:
    yield from run_fake(Fake(request.param))


def turn(session: RemoteSession, text: str = "Hi") -> tuple[str, str, TurnFinished]:
    analysis = answer = ""
    finished = None
    for event in session.send(text):
        if isinstance(event, ChannelDelta):
            if event.channel == "final":
                answer += event.text
            else:
                analysis += event.text
        elif isinstance(event, TurnFinished):
            finished = event
    assert finished is not None
    return analysis, answer, finished


def test_each_server_shape_streams_reasoning_and_answer_and_sends_the_effort(fake: Fake) -> None:
    found = probe(fake.config)
    assert found.models == ("openai/gpt-oss-20b",)
    assert found.responses is (fake.flavour == "lmstudio")
    session = RemoteSession(fake.config, responses=found.responses, instructions="Be brief.")
    session.set_effort("high")
    session.set_sampling(SamplingSettings(temperature=0.7))
    analysis, answer, finished = turn(session)
    assert analysis == "".join(REASONING)
    assert answer == "".join(ANSWER) == finished.answer
    assert finished.reason == "stop"
    sent = fake.requests[-1]
    assert (sent["temperature"], sent["top_p"]) == (0.7, 1.0)
    if found.responses:
        assert sent["reasoning"] == {"effort": "high"}
        assert sent["instructions"] == "Be brief."
        assert sent["input"] == [{"role": "user", "content": "Hi"}]
        assert finished.stats.prompt_tokens == 42  # the server's usage
    else:
        assert sent["reasoning_effort"] == "high"
        assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert [m.role for m in session.messages] == ["user", "assistant", "assistant"]


def test_regenerate_asks_the_same_question_again_without_the_old_answer() -> None:
    for fake in run_fake(Fake("vllm")):
        history = [Message.user("First?"), Message.assistant("One."), Message.user("Second?")]
        session = RemoteSession(fake.config, history, responses=False)
        list(session.regenerate())
        list(session.regenerate())
        sent = [m["content"] for m in fake.requests[-1]["messages"]]
        assert sent == ["First?", "One.", "Second?"]
        assert session.messages[-1].text == "".join(ANSWER)


def test_a_stream_cut_mid_answer_keeps_the_partial_answer_and_says_so() -> None:
    for fake in run_fake(Fake("lmstudio", cut_after=2)):
        session = RemoteSession(fake.config, responses=True)
        seen = ""
        with pytest.raises(RemoteError) as caught:
            for event in session.send("Hi"):
                if isinstance(event, ChannelDelta) and event.channel == "final":
                    seen += event.text
        assert caught.value.kind == "cut"
        assert "broke while the answer streamed" in str(caught.value)
        assert seen == "Hello from"
        assert session.messages[-1].text == "Hello from"  # kept, like a local stop


def test_stop_ends_the_turn_with_cancel_and_keeps_what_came() -> None:
    for fake in run_fake(Fake("vllm")):
        session = RemoteSession(fake.config, responses=False)
        cancel = threading.Event()
        events = []
        for event in session.send("Hi", cancel):
            events.append(event)
            if isinstance(event, ChannelDelta) and event.channel == "final":
                cancel.set()
        finished = events[-1]
        assert isinstance(finished, TurnFinished) and finished.reason == "cancel"
        assert finished.answer == "Hello"


def test_a_wrong_token_is_one_clear_sentence() -> None:
    for fake in run_fake(Fake("vllm")):
        wrong = ServerConfig(fake.url + "/v1", "nope", "m")
        with pytest.raises(RemoteError) as caught:
            probe(wrong)
        assert caught.value.kind == "unauthorized"
        assert str(caught.value).startswith("127.0.0.1 refused the API token;")
        with pytest.raises(RemoteError, match="refused the API token"):
            list(RemoteSession(wrong, responses=False).send("Hi"))


@pytest.mark.parametrize("flavour", ["vllm", "lmstudio"])  # a 503 body; a response.failed event
def test_a_failure_the_server_explains_is_shown_in_its_words(flavour: str) -> None:
    words = "A machine of the group was lost (rank 1 stopped answering)."
    for fake in run_fake(Fake(flavour, fail_with=words)):
        session = RemoteSession(fake.config, responses=flavour == "lmstudio")
        with pytest.raises(RemoteError) as caught:
            list(session.send("Hi"))
        assert caught.value.kind == "server"
        assert f"“{words}”" in str(caught.value)


def test_a_refused_connection_names_the_host() -> None:
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = ServerConfig(f"http://127.0.0.1:{port}/v1", TOKEN, "m")
    with pytest.raises(RemoteError) as caught:
        probe(config)
    assert caught.value.kind == "refused"
    assert "127.0.0.1 cannot be reached" in str(caught.value)


def test_a_server_that_stops_answering_times_out_and_keeps_the_reasoning() -> None:
    for fake in run_fake(Fake("llamacpp", stall_s=1.5)):
        config = dataclasses.replace(fake.config, read_timeout_s=0.5)
        session = RemoteSession(config, responses=False)
        with pytest.raises(RemoteError) as caught:
            list(session.send("Hi"))
        assert caught.value.kind == "timeout"
        assert session.messages[-1].channel == "analysis"


def test_an_address_without_a_scheme_is_refused_before_anything_is_sent() -> None:
    with pytest.raises(RemoteError, match="http:// or https://"):
        probe(ServerConfig("studio.local:8000/v1"))


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate it signed for 127.0.0.1: (ca, cert, key) PEM files."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "OSS Desk test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def test_tls_is_verified_and_a_custom_ca_file_is_trusted(tmp_path: Path) -> None:
    ca, cert, key = make_certificates(tmp_path)
    for fake in run_fake(Fake("vllm"), ssl_certfile=str(cert), ssl_keyfile=str(key)):
        with pytest.raises(RemoteError) as caught:
            probe(fake.config)  # the system's authorities do not know the test CA
        assert caught.value.kind == "tls"
        assert str(caught.value).startswith("The secure connection to 127.0.0.1 failed;")
        trusted = dataclasses.replace(fake.config, ca_file=str(ca))
        assert probe(trusted).models == ("openai/gpt-oss-20b",)
        _, answer, _ = turn(RemoteSession(trusted, responses=False))
        assert answer == "".join(ANSWER)
        unchecked = dataclasses.replace(fake.config, verify_tls=False)
        assert probe(unchecked).models == ("openai/gpt-oss-20b",)
        with pytest.raises(RemoteError, match="Choose a readable certificate file"):
            probe(dataclasses.replace(fake.config, ca_file=str(tmp_path / "missing.pem")))


def test_stop_lands_at_once_while_the_server_is_silent() -> None:
    for fake in run_fake(Fake("vllm", stall_s=1.5)):
        config = dataclasses.replace(fake.config, read_timeout_s=10.0)
        session = RemoteSession(config, responses=False)
        cancel = threading.Event()
        events = session.send("Hi", cancel)
        for event in events:  # the reasoning comes, then the server goes quiet
            if isinstance(event, ChannelDelta) and event.text == REASONING[-1]:
                break
        cancel.set()
        started = time.monotonic()
        finished = list(events)[-1]
        assert time.monotonic() - started < 0.5
        assert isinstance(finished, TurnFinished) and finished.reason == "cancel"
        assert session.messages[-1].text == "".join(REASONING)
