"""The engine worker over a FakeEngine that yields scripted events: updates are batched, saved
before they are shown, errors come back as values, and every turn ends with one result. At the
end, its prompt cache on the real engine: a follow-up after a restart reuses the saved cache,
deleted chats lose their files, Clear reports the bytes freed, and a failed save is shown once."""

from __future__ import annotations

import errno
import json
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from app.engine_client import EngineClient
from app.engine_requests import Finish, ModelInfo, TurnRequest, TurnSession
from app.engine_worker import EngineWorker, load_engine
from app.history import HistoryStore
from app.turn_stream import TurnResult, TurnUpdate
from engine import (
    ChannelDelta,
    ChatEvent,
    ChatSession,
    ContextOverflowError,
    HarmonyTokenizer,
    MachineBudget,
    Message,
    ModelArgs,
    ModelLoadError,
    PrefillProgress,
    ReasoningCut,
    ReasoningEffort,
    SamplingSettings,
    ToolCallRequested,
    TurnFinished,
    TurnStats,
    recommend,
)
from engine.chat import cache_file
from engine.testing.scripted import ScriptedSampler, reply_ids

TIMEOUT_MS = 10_000
STATS = TurnStats(50, 0, 50, 12, 5, 6, 0, 0.2, 250.0, 30.0, 0.6)


def scripted_turn(answer: str = "Hello there", analysis: str = "Let me think") -> list[ChatEvent]:
    events: list[ChatEvent] = [PrefillProgress(50, 50)]
    events += [ChannelDelta("analysis", w) for w in re.findall(r"\S+\s*", analysis)]
    events += [ChannelDelta("final", w) for w in re.findall(r"\S+\s*", answer)]
    return [*events, TurnFinished("stop", STATS, answer)]


class FakeTokenizer:
    def encode(self, text: str) -> list[int]:
        return list(range(len(text.split())))


class FakeSession:
    """Plays `turns` (lists of events, or an exception to raise) one per call."""

    def __init__(self, turns: list[list[ChatEvent] | Exception]) -> None:
        self.turns = turns
        self.calls: list[tuple[str, str]] = []
        self.effort = ""
        self.messages: tuple[Message, ...] = ()
        self.pending_tool_call: ToolCallRequested | None = None

    def set_effort(self, effort: ReasoningEffort | str) -> None:
        self.effort = str(effort)

    def set_sampling(self, settings: SamplingSettings) -> None:
        pass

    def _play(self, kind: str, text: str, cancel: threading.Event | None) -> Iterator[ChatEvent]:
        self.calls.append((kind, text))
        turn = self.turns.pop(0)
        if isinstance(turn, Exception):
            raise turn
        self.messages = (*self.messages, Message.user(text))
        yield from turn

    def send(
        self, text: str, cancel: threading.Event | None = None, finish: Finish = None
    ) -> Iterator[ChatEvent]:
        return self._play("send", text, cancel)

    def regenerate(
        self, cancel: threading.Event | None = None, finish: Finish = None
    ) -> Iterator[ChatEvent]:
        return self._play("regenerate", "", cancel)

    def edit_last_user_message(
        self, text: str, cancel: threading.Event | None = None, finish: Finish = None
    ) -> Iterator[ChatEvent]:
        return self._play("edit", text, cancel)

    def submit_tool_result(
        self,
        call: ToolCallRequested,
        result_text: str,
        cancel: threading.Event | None = None,
        finish: Finish = None,
    ) -> Iterator[ChatEvent]:
        self.pending_tool_call = None
        return self._play("tool", result_text, cancel)


def fake_loader(context: int = 4096) -> Callable[..., tuple[Any, Any, ModelInfo]]:
    def load(
        path: str, profile: str, progress: Callable[[int, int], None]
    ) -> tuple[Any, Any, ModelInfo]:
        progress(1, 1)
        return object(), FakeTokenizer(), ModelInfo(path, context, profile)

    return load


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    with HistoryStore(tmp_path / "h.sqlite3"):
        pass
    return tmp_path / "h.sqlite3"


@pytest.fixture
def start_client(qtbot: QtBot, store_path: Path) -> Iterator[Callable[..., EngineClient]]:
    clients: list[EngineClient] = []

    def start(session: FakeSession | None, *, loader: Any = None) -> EngineClient:
        worker = EngineWorker(
            history_path=store_path,
            loader=loader or fake_loader(),
            session_factory=lambda model, tok, history: session,  # type: ignore[arg-type,return-value]
        )
        client = EngineClient(worker)
        clients.append(client)
        with qtbot.waitSignal(client.model_loaded, timeout=TIMEOUT_MS):
            client.load("/models/fake", "full")
        return client

    yield start
    for client in clients:
        assert client.shutdown()


def _request(store: HistoryStore, client: EngineClient, text: str = "Hi") -> TurnRequest:
    conversation = store.create_conversation()
    store.add_user_message(conversation, text)
    message_id = store.begin_assistant_message(conversation, "high")
    return TurnRequest(client.next_turn_id(), conversation, message_id, "send", text, (), "high")


def test_a_turn_streams_batched_saved_updates_and_one_result(
    qtbot: QtBot, start_client: Callable[..., EngineClient], store_path: Path
) -> None:
    session = FakeSession([scripted_turn()])
    client = start_client(session)
    store = HistoryStore(store_path)
    request = _request(store, client)
    updates: list[TurnUpdate] = []
    shown_and_saved: list[bool] = []

    def on_update(update: TurnUpdate) -> None:
        # Runs on the UI thread: what is about to be shown must already be on disk.
        updates.append(update)
        saved = store.get_message(request.message_id)
        shown = "".join(u.answer for u in updates)
        shown_and_saved.append(saved.content.startswith(shown))

    client.turn_progressed.connect(on_update)
    with qtbot.waitSignal(client.turn_finished, timeout=TIMEOUT_MS) as finished:
        client.start_turn(request)
    result: TurnResult = finished.args[0]
    assert result.status == "complete" and result.error is None
    assert result.answer == "Hello there" and result.analysis == "Let me think"
    assert session.effort == "high" and session.calls == [("send", "Hi")]
    assert "".join(u.analysis for u in updates) == "Let me think"
    assert "".join(u.answer for u in updates) == "Hello there"
    assert len(updates) < 5  # batched: fewer updates than the 5 deltas and 1 prefill event
    assert all(shown_and_saved) and shown_and_saved
    saved = store.get_message(request.message_id)
    assert (saved.content, saved.reasoning, saved.status) == (
        "Hello there",
        "Let me think",
        "complete",
    )
    assert saved.stats["answer_tokens"] == 6 and saved.stats["decode_tps"] == 30.0
    assert not client.busy
    store.close()


def test_engine_errors_and_bugs_arrive_as_values_and_the_answer_is_marked(
    qtbot: QtBot, start_client: Callable[..., EngineClient], store_path: Path
) -> None:
    session = FakeSession(
        [ContextOverflowError("The conversation needs 9,000 tokens."), RuntimeError("boom")]
    )
    client = start_client(session)
    store = HistoryStore(store_path)
    results = []
    for _ in range(2):
        request = _request(store, client)
        with qtbot.waitSignal(client.turn_finished, timeout=TIMEOUT_MS) as finished:
            client.start_turn(request)
        results.append(finished.args[0])
        assert store.get_message(request.message_id).status == "error"
    expected, bug = results[0].error, results[1].error
    assert expected is not None and not expected.is_bug
    assert expected.text == "The conversation needs 9,000 tokens."
    assert bug is not None and bug.is_bug and "RuntimeError: boom" in bug.details
    store.close()


def test_a_cut_and_an_unexpected_tool_call_are_reported_and_saved(
    qtbot: QtBot, start_client: Callable[..., EngineClient], store_path: Path
) -> None:
    call = ToolCallRequested("functions.search", '{"q": "x"}')
    first: list[ChatEvent] = [
        ChannelDelta("analysis", "hmm"),
        ReasoningCut("budget", 1024),
        call,
        TurnFinished("tool_call", STATS),
    ]
    session = FakeSession([first, scripted_turn("Done", "ok")])
    session.pending_tool_call = call
    client = start_client(session)
    store = HistoryStore(store_path)
    request = _request(store, client)
    updates: list[TurnUpdate] = []
    client.turn_progressed.connect(updates.append)
    with qtbot.waitSignal(client.turn_finished, timeout=TIMEOUT_MS) as finished:
        client.start_turn(request)
    result: TurnResult = finished.args[0]
    assert session.calls[1][0] == "tool"  # told that no tools exist, then it answered
    assert result.status == "complete" and result.stats["budget_cut"] is True
    assert any(u.cut == ReasoningCut("budget", 1024) for u in updates)
    assert any(call in u.tool_calls for u in updates)
    saved = store.get_message(request.message_id)
    assert saved.tool_calls[0].recipient == "functions.search"
    assert saved.content == "Done"
    store.close()


class WaitsForStop(FakeSession):
    """Writes a word, then holds the turn until it is cancelled, as a long answer would."""

    def _play(self, kind: str, text: str, cancel: threading.Event | None) -> Iterator[ChatEvent]:
        self.calls.append((kind, text))
        yield ChannelDelta("final", "Partly ")
        assert cancel is not None and cancel.wait(TIMEOUT_MS / 1000)
        yield TurnFinished("cancel", STATS, "Partly ")


def test_an_answer_cut_by_quitting_is_saved_as_interrupted_not_stopped(
    qtbot: QtBot, start_client: Callable[..., EngineClient], store_path: Path
) -> None:
    client = start_client(WaitsForStop([]))
    store = HistoryStore(store_path)
    request = _request(store, client)
    with qtbot.waitSignal(client.turn_progressed, timeout=TIMEOUT_MS):
        client.start_turn(request)
    assert client.shutdown()
    saved = store.get_message(request.message_id)
    assert (saved.status, saved.content) == ("interrupted", "Partly ")
    store.close()


def test_a_malformed_tool_call_is_answered_with_what_to_fix(
    qtbot: QtBot, start_client: Callable[..., EngineClient], store_path: Path
) -> None:
    problem = "The arguments are not valid JSON."
    call = ToolCallRequested("functions.search", '{"q": ', problem=problem)
    session = FakeSession([[call, TurnFinished("tool_call", STATS)], scripted_turn("Done", "ok")])
    session.pending_tool_call = call
    client = start_client(session)
    store = HistoryStore(store_path)
    request = _request(store, client)
    with qtbot.waitSignal(client.turn_finished, timeout=TIMEOUT_MS):
        client.start_turn(request)
    assert session.calls[1] == ("tool", json.dumps({"error": problem}))
    saved = store.get_message(request.message_id)
    assert saved.tool_calls[0].result == json.dumps({"error": problem})
    store.close()


def test_tokens_are_counted_on_the_worker_and_wait_for_the_model(
    qtbot: QtBot, store_path: Path
) -> None:
    worker = EngineWorker(history_path=None, loader=fake_loader())
    client = EngineClient(worker)
    try:
        with qtbot.waitSignal(client.tokens_counted, timeout=TIMEOUT_MS) as counted:
            client.count_tokens(7, "four words right here")
            client.load("/models/fake", "full")
        assert counted.args == [7, 4]
    finally:
        assert client.shutdown()


def test_a_model_that_cannot_load_is_an_error_value(qtbot: QtBot, tmp_path: Path) -> None:
    worker = EngineWorker(history_path=None)
    client = EngineClient(worker)
    try:
        with qtbot.waitSignal(client.load_failed, timeout=TIMEOUT_MS) as failed:
            client.load(str(tmp_path / "missing"), "full")
        problem = failed.args[0]
        assert not problem.is_bug and "is not a folder" in problem.text
        with qtbot.waitSignal(client.tokens_counted, timeout=TIMEOUT_MS) as counted:
            client.count_tokens(1, "text")
        assert counted.args == [1, -1]
    finally:
        assert client.shutdown()


# -- the prompt cache, on the real engine (tiny synthetic checkpoint, scripted tokens) ----------

REAL_TIMEOUT_MS = 30_000
DOCUMENT = "Please keep this document in mind: " + "the cache is on disk. " * 40


class Sessions:
    """Real ChatSessions whose tokens are scripted, remembered so a test can read them."""

    def __init__(self, tok: HarmonyTokenizer) -> None:
        self._tok = tok
        self.made: list[ChatSession] = []

    def __call__(self, model: Any, tokenizer: Any, history: Any) -> TurnSession:
        answer = [Message.assistant("Reading.", channel="analysis"), Message.assistant("Noted.")]
        sampler = ScriptedSampler(reply_ids(self._tok, answer) * 4)
        session = ChatSession.from_messages(model, tokenizer, history, sampler=sampler)
        self.made.append(session)
        return session


def _real_client(
    qtbot: QtBot, store_path: Path, folder: Path, sessions: Sessions, model_dir: Path
) -> EngineClient:
    worker = EngineWorker(
        history_path=store_path, session_factory=sessions, prompt_cache_dir=folder
    )
    client = EngineClient(worker)
    with qtbot.waitSignal(client.model_loaded, timeout=REAL_TIMEOUT_MS):
        client.load(str(model_dir), "full")
    return client


def _real_turn(
    qtbot: QtBot, client: EngineClient, store: HistoryStore, conversation: int, text: str,
    history: tuple[Message, ...],
) -> TurnResult:  # fmt: skip
    store.add_user_message(conversation, text)
    message_id = store.begin_assistant_message(conversation, "medium")
    request = TurnRequest(
        client.next_turn_id(), conversation, message_id, "send", text, history, "medium"
    )
    with qtbot.waitSignal(client.turn_finished, timeout=REAL_TIMEOUT_MS) as finished:
        client.start_turn(request)
    result: TurnResult = finished.args[0]
    assert result.status == "complete", result.error
    return result


def test_a_follow_up_after_a_restart_reuses_the_saved_cache(
    qtbot: QtBot, store_path: Path, tmp_path: Path, model_dir: Path, tok: HarmonyTokenizer
) -> None:
    folder = tmp_path / "prompts"
    store = HistoryStore(store_path)
    chat, other = store.create_conversation(), store.create_conversation()
    sessions = Sessions(tok)
    client = _real_client(qtbot, store_path, folder, sessions, model_dir)
    first = _real_turn(qtbot, client, store, chat, DOCUMENT, ())
    assert first.stats["reused_tokens"] == 0
    history = sessions.made[0].messages
    _real_turn(qtbot, client, store, other, "Something else.", ())
    saved = {f"{chat}.kv.safetensors", f"{other}.kv.safetensors"}
    # saved after turn_finished, so that the save never delays the answer
    qtbot.waitUntil(lambda: {p.name for p in folder.iterdir()} == saved, timeout=REAL_TIMEOUT_MS)
    store.delete_conversation(other)  # (the window does this; the worker is not told)
    assert client.shutdown()

    client = _real_client(qtbot, store_path, folder, sessions, model_dir)  # a restart
    assert {p.name for p in folder.iterdir()} == {f"{chat}.kv.safetensors"}  # tidied at load
    again = _real_turn(qtbot, client, store, chat, "What is on disk?", history)
    # what the open chat reuses: the first prompt (its reply's analysis is dropped now)
    assert again.stats["reused_tokens"] == first.stats["prompt_tokens"] > 200
    client.forget_conversation(chat)
    qtbot.waitUntil(
        lambda: not (folder / f"{chat}.kv.safetensors").exists(), timeout=REAL_TIMEOUT_MS
    )
    third = store.create_conversation()
    _real_turn(qtbot, client, store, third, DOCUMENT, ())
    qtbot.waitUntil((folder / f"{third}.kv.safetensors").exists, timeout=REAL_TIMEOUT_MS)
    size = (folder / f"{third}.kv.safetensors").stat().st_size
    with qtbot.waitSignal(client.prompt_cache_cleared, timeout=REAL_TIMEOUT_MS) as cleared:
        client.clear_prompt_cache()
    assert cleared.args == [size] and list(folder.iterdir()) == []
    assert client.shutdown()
    store.close()


def test_a_failed_save_is_shown_once_and_the_turns_complete(
    qtbot: QtBot,
    store_path: Path,
    tmp_path: Path,
    model_dir: Path,
    tok: HarmonyTokenizer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def disk_full(*args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_file, "write", disk_full)
    store = HistoryStore(store_path)
    chat = store.create_conversation()
    sessions = Sessions(tok)
    client = _real_client(qtbot, store_path, tmp_path / "prompts", sessions, model_dir)
    problems: list[Any] = []
    client.history_failed.connect(problems.append)
    _real_turn(qtbot, client, store, chat, DOCUMENT, ())
    _real_turn(qtbot, client, store, chat, "And again?", sessions.made[0].messages[:-1])
    qtbot.wait(50)  # let a second warning, if any, arrive
    assert len(problems) == 1 and problems[0].title == "Prompt cache not saved"
    assert "No space left on device" in problems[0].text
    assert problems[0].text.startswith("The prompt cache could not be saved in")
    assert client.shutdown()
    store.close()


def test_a_model_that_cannot_fit_is_refused_unless_chosen_anyway(
    monkeypatch: pytest.MonkeyPatch, model_dir: Path
) -> None:
    import app.engine_worker as worker_module

    tiny_mac = MachineBudget(2 * 10**6, 2 * 10**6, None, reserve=0)  # far less than the model
    monkeypatch.setattr(worker_module, "machine_budget", lambda: tiny_mac)
    with pytest.raises(ModelLoadError) as refused:
        load_engine(str(model_dir), "auto", lambda done, total: None)
    assert str(refused.value) == recommend(ModelArgs.from_model_dir(model_dir), tiny_mac).message
    _, _, info = load_engine(str(model_dir), "auto", lambda d, t: None, allow_oversized=True)
    assert not info.fits and info.fit_message == str(refused.value)


def test_the_app_loads_an_oversized_model_only_from_the_folder_chosen_anyway(
    monkeypatch: pytest.MonkeyPatch, model_dir: Path, tmp_path: Path
) -> None:
    import app.engine_worker as worker_module
    from app.launch import _loader_honouring_overrides
    from app.settings import SettingsStore

    monkeypatch.setattr(
        worker_module, "machine_budget", lambda: MachineBudget(2 * 10**6, 2 * 10**6, None, 0)
    )
    settings = SettingsStore.in_file(tmp_path / "settings.ini")
    load = _loader_honouring_overrides(settings)
    with pytest.raises(ModelLoadError):
        load(str(model_dir), "auto", lambda d, t: None)
    settings.update(oversized_model_dir=str(model_dir / ".." / model_dir.name))  # same folder
    _, _, info = load(str(model_dir), "auto", lambda d, t: None)
    assert not info.fits
