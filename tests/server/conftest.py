"""A real server on loopback: uvicorn on port 0 in a thread, the real engine on the tiny
synthetic model in the runner thread, and the model's tokens chosen in advance by a scripted
sampler (the model, KV cache, harmony parser and session all run; only sampling is scripted)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
import uvicorn
from openai import OpenAI

from engine import HarmonyTokenizer, Message, TurnFinished, load_model
from engine.testing.scripted import ScriptedSampler, reply_ids
from server.app import create_app
from server.runner import RunnerThread
from server.store import ResponseStore
from tests.conftest import CheckpointFactory
from tests.engine.chat.fixtures import chat_model_dir

KEY = "test-key-0123456789"
MODEL_ID = "tiny-oss"
WAIT_S = 20.0


@pytest.fixture(scope="session")
def model_dir(make_checkpoint: CheckpointFactory) -> Path:
    return chat_model_dir(make_checkpoint)


@pytest.fixture(scope="session")
def tok(model_dir: Path) -> HarmonyTokenizer:
    return HarmonyTokenizer.from_model_dir(model_dir)


@dataclass
class Served:
    """One running server and the handles a test scripts and inspects it with."""

    url: str
    tok: HarmonyTokenizer
    sampler: ScriptedSampler | None
    runner: RunnerThread
    store: ResponseStore
    finished: list[TurnFinished] = field(default_factory=list)
    gates: dict[int, threading.Event] = field(default_factory=dict)
    reached: dict[int, threading.Event] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def client(self, key: str = KEY, **options: Any) -> OpenAI:
        return OpenAI(api_key=key, base_url=self.base_url, max_retries=0, **options)

    def http(self, key: str | None = KEY) -> httpx2.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx2.Client(base_url=self.url, headers=headers, timeout=WAIT_S)

    def reply(
        self,
        final: str | None = None,
        *,
        analysis: str | None = None,
        call: tuple[str, str] | None = None,
    ) -> list[int]:
        """Scripts the next turn: optional analysis, then a final answer or a function call
        (name, JSON arguments)."""
        messages = []
        if analysis is not None:
            messages.append(Message.assistant(analysis, channel="analysis"))
        if call is not None:
            messages.append(Message.tool_call(f"functions.{call[0]}", call[1]))
        if final is not None:
            messages.append(Message.assistant(final))
        ids = reply_ids(self.tok, messages)
        assert self.sampler is not None
        self.sampler.extend(ids)
        return ids

    def hold_at(self, sample: int) -> threading.Event:
        """Sample number `sample` (counted from now) waits until the returned event is set."""
        assert self.sampler is not None
        n = self.sampler.calls + sample
        self.gates[n] = threading.Event()
        self.reached[n] = threading.Event()
        self._held = n
        return self.gates[n]

    def wait_held(self) -> None:
        assert self.reached[self._held].wait(WAIT_S), "the model never reached the held sample"

    def on_sample(self, i: int) -> None:
        gate = self.gates.get(i)
        if gate is not None:
            self.reached[i].set()
            gate.wait(WAIT_S)

    def prompt_text(self) -> str:
        """What the model read last: the KV cache's tokens, decoded."""
        session = self.runner._session
        assert session is not None
        return self.tok.decode(list(session.cached_tokens))


def serve(
    model_dir: Path,
    tok: HarmonyTokenizer,
    db: Path,
    *,
    scripted: bool = True,
    max_queue: int = 4,
    **session_options: Any,
) -> Iterator[Served]:
    sampler = ScriptedSampler() if scripted else None
    finished: list[TurnFinished] = []
    if sampler is not None:
        session_options["sampler"] = sampler
    runner = RunnerThread(
        MODEL_ID,
        lambda: (load_model(model_dir), tok),
        max_queue=max_queue,
        session_options=session_options,
        on_finished=finished.append,
    )
    runner.wait_ready(60)
    store = ResponseStore(db)
    app = create_app(runner, api_key=KEY, store=store)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(400):
        if server.started:
            break
        threading.Event().wait(0.025)
    assert server.started, "uvicorn did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    served = Served(f"http://127.0.0.1:{port}", tok, sampler, runner, store, finished)
    if sampler is not None:
        sampler.on_sample = served.on_sample
    try:
        yield served
    finally:
        for gate in served.gates.values():
            gate.set()
        server.should_exit = True
        thread.join(10)
        runner.close()


@pytest.fixture(scope="module")
def module_server(
    model_dir: Path, tok: HarmonyTokenizer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    yield from serve(model_dir, tok, tmp_path_factory.mktemp("server") / "responses.sqlite3")


@pytest.fixture
def served(module_server: Served) -> Iterator[Served]:
    """The module's server with an empty script; a test must use every token it scripts."""
    assert module_server.sampler is not None
    module_server.sampler.discard_remaining()
    module_server.finished.clear()
    yield module_server
    assert module_server.sampler.remaining == 0, "the server did not sample the whole script"
