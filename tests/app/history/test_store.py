"""Conversations and messages: create, list, read, rename, delete, stream, regenerate, edit."""

from __future__ import annotations

import sqlite3
import threading
import time
from enum import StrEnum
from pathlib import Path

import pytest

from app import handover
from app.history import HistoryError, HistoryStore, NewAttachment, ToolCall

REPORT = NewAttachment("report.pdf", "pdf", "Quarterly numbers…", 1234, pages=3, sha256="ab" * 32)


def test_new_conversation_is_listed_with_defaults(store: HistoryStore) -> None:
    conv = store.create_conversation(effort="high")
    [summary] = store.list_conversations()
    assert (summary.id, summary.title, summary.reasoning_effort) == (conv, "New chat", "high")
    assert (summary.message_count, summary.preview) == (0, "")
    assert summary.created_at <= summary.updated_at <= time.time()


def test_get_conversation_returns_messages_in_order(store: HistoryStore) -> None:
    conv = store.create_conversation()
    store.add_user_message(conv, "first")
    answer = store.begin_assistant_message(conv, "low")
    store.append_to_message(answer, "reply")
    store.finish_message(answer, "complete")
    store.add_user_message(conv, "second")
    summary, messages = store.get_conversation(conv)
    assert [(m.position, m.role, m.content) for m in messages] == [
        (0, "user", "first"),
        (1, "assistant", "reply"),
        (2, "user", "second"),
    ]
    assert summary.message_count == 3
    assert summary.preview == "second"
    assert [m.effort for m in messages] == [None, "low", None]


def test_unknown_ids_raise_key_error(store: HistoryStore) -> None:
    with pytest.raises(KeyError):
        store.get_conversation(42)
    with pytest.raises(KeyError):
        store.get_message(42)
    with pytest.raises(KeyError):
        store.add_user_message(42, "hello")
    with pytest.raises(KeyError):
        store.begin_assistant_message(42, "low")


def test_invalid_enum_values_are_refused(store: HistoryStore) -> None:
    with pytest.raises(ValueError, match="effort"):
        store.create_conversation(effort="extreme")
    conv = store.create_conversation()
    answer = store.begin_assistant_message(conv, "medium")
    with pytest.raises(ValueError, match="status"):
        store.finish_message(answer, "streaming")


def test_string_enums_are_stored_as_their_values(store: HistoryStore) -> None:
    class ReasoningEffort(StrEnum):  # as the engine defines it
        HIGH = "high"

    conv = store.create_conversation(effort=ReasoningEffort.HIGH)
    answer = store.begin_assistant_message(conv, ReasoningEffort.HIGH)
    store.finish_message(answer, "complete", {"answer_tokens": 1})
    message = store.get_message(answer)
    effort = store.get_conversation(conv)[0].reasoning_effort
    assert type(effort) is str and effort == "high"
    assert type(message.effort) is str and hash(message)


def test_list_is_newest_first_and_follows_activity(store: HistoryStore) -> None:
    a = store.create_conversation()
    b = store.create_conversation()
    c = store.create_conversation()
    assert [s.id for s in store.list_conversations()] == [c, b, a]
    store.add_user_message(a, "bump")
    assert [s.id for s in store.list_conversations()] == [a, c, b]


def test_rename_and_effort_persist_across_reopen(store: HistoryStore, db_path: Path) -> None:
    conv = store.create_conversation()
    store.rename_conversation(conv, "  Trip   to Lisbon ")
    store.set_effort(conv, "low")
    store.close()
    with HistoryStore(db_path) as reopened:
        summary, _ = reopened.get_conversation(conv)
    assert (summary.title, summary.reasoning_effort) == ("Trip to Lisbon", "low")


def test_first_user_message_names_the_conversation(store: HistoryStore) -> None:
    conv = store.create_conversation()
    store.add_user_message(conv, "\n  How do   I bake bread?\nWith details please")
    store.add_user_message(conv, "Another question")
    assert store.get_conversation(conv)[0].title == "How do I bake bread?"


def test_long_first_message_title_is_cut_at_a_word(store: HistoryStore) -> None:
    conv = store.create_conversation()
    store.add_user_message(conv, "word " * 40)
    title = store.get_conversation(conv)[0].title
    assert title.endswith("word…") and len(title) <= 61


def test_attachment_only_message_is_named_after_the_file(store: HistoryStore) -> None:
    conv = store.create_conversation()
    store.add_user_message(conv, "", [REPORT])
    assert store.get_conversation(conv)[0].title == "report.pdf"


def test_user_chosen_title_is_kept(store: HistoryStore) -> None:
    conv = store.create_conversation(title="Mine")
    store.add_user_message(conv, "something else")
    other = store.create_conversation()
    store.rename_conversation(other, "Also mine")
    store.add_user_message(other, "words")
    assert store.get_conversation(conv)[0].title == "Mine"
    assert store.get_conversation(other)[0].title == "Also mine"


def test_attachments_round_trip(store: HistoryStore) -> None:
    conv = store.create_conversation()
    notes = NewAttachment("notes.txt", "text", "plain", 2)
    message = store.add_user_message(conv, "Summarise these", [REPORT, notes])
    stored = store.get_message(message).attachments
    assert [(a.name, a.kind, a.pages, a.token_count, a.text, a.sha256) for a in stored] == [
        ("report.pdf", "pdf", 3, 1234, "Quarterly numbers…", "ab" * 32),
        ("notes.txt", "text", None, 2, "plain", ""),
    ]


def test_streaming_answer_accumulates_and_finishes(store: HistoryStore) -> None:
    conv = store.create_conversation()
    store.add_user_message(conv, "hi")
    answer = store.begin_assistant_message(conv, "medium")
    assert store.get_message(answer).status == "streaming"
    for i in range(5):
        assert store.append_to_message(answer, reasoning_delta=f"think{i} ")
    assert store.append_to_message(answer, content_delta="Hello")
    assert store.append_to_message(answer, content_delta=" there")
    stats = {"ttft_s": 0.25, "answer_tokens": 2, "decode_tps": 41.5, "budget_cut": False}
    assert store.finish_message(answer, "complete", stats)
    message = store.get_message(answer)
    assert (message.content, message.status, message.stats) == ("Hello there", "complete", stats)
    assert message.reasoning == "think0 think1 think2 think3 think4 "
    with pytest.raises(HistoryError) as late:  # a finished answer is frozen, never silently
        store.append_to_message(answer, "late")
    assert late.value.kind == "taken"
    with pytest.raises(HistoryError, match="another OSS Desk took over"):
        store.finish_message(answer, "error", error="too late")
    assert store.get_message(answer).content == "Hello there"
    assert store.get_message(answer).status == "complete"


def test_error_and_cancel_are_recorded(store: HistoryStore) -> None:
    conv = store.create_conversation()
    failed = store.begin_assistant_message(conv, "low")
    store.finish_message(failed, "error", error="The prompt does not fit in the context.")
    stopped = store.begin_assistant_message(conv, "low")
    store.append_to_message(stopped, "Half an ans")
    store.finish_message(stopped, "cancelled")
    assert store.get_message(failed).error == "The prompt does not fit in the context."
    assert (store.get_message(stopped).status, store.get_message(stopped).content) == (
        "cancelled",
        "Half an ans",
    )


def test_calls_for_a_deleted_stream_return_false(store: HistoryStore) -> None:
    conv = store.create_conversation()
    answer = store.begin_assistant_message(conv, "low")
    store.delete_conversation(conv)
    assert not store.append_to_message(answer, "x")
    assert not store.set_message_text(answer, "x")
    assert not store.finish_message(answer, "complete")


def test_set_message_text_resyncs_a_stream(store: HistoryStore) -> None:
    conv = store.create_conversation()
    answer = store.begin_assistant_message(conv, "low")
    store.append_to_message(answer, "par")
    assert store.set_message_text(answer, "partial answer", "the reasoning")
    store.append_to_message(answer, "!")
    message = store.get_message(answer)
    assert (message.content, message.reasoning) == ("partial answer!", "the reasoning")


def test_tool_calls_and_results_are_kept_in_order(store: HistoryStore) -> None:
    conv = store.create_conversation()
    answer = store.begin_assistant_message(conv, "high")
    first = store.add_tool_call(answer, "browser.search", '{"query": "mlx"}')
    second = store.add_tool_call(answer, "python", "print(1)", result="1")
    store.set_tool_result(answer, first, "3 results")
    assert (first, second) == (0, 1)
    assert store.get_message(answer).tool_calls == (
        ToolCall("browser.search", '{"query": "mlx"}', "3 results"),
        ToolCall("python", "print(1)", "1"),
    )


def test_delete_cascades_to_messages_and_attachments(
    store: HistoryStore, raw: sqlite3.Connection
) -> None:
    keep = store.create_conversation()
    store.add_user_message(keep, "stay", [REPORT])
    doomed = store.create_conversation()
    store.add_user_message(doomed, "go", [REPORT])
    store.begin_assistant_message(doomed, "low")
    store.delete_conversation(doomed)
    store.delete_conversation(doomed)  # deleting twice is harmless
    assert [s.id for s in store.list_conversations()] == [keep]
    assert raw.execute("SELECT count(*) FROM messages").fetchone() == (1,)
    assert raw.execute("SELECT count(*) FROM attachments").fetchone() == (1,)


def test_regenerate_drops_the_answer_and_returns_the_prompt(store: HistoryStore) -> None:
    conv = store.create_conversation()
    store.add_user_message(conv, "question one")
    store.finish_message(store.begin_assistant_message(conv, "low"), "complete")
    prompt = store.add_user_message(conv, "question two", [REPORT])
    old = store.begin_assistant_message(conv, "low")
    store.add_tool_call(old, "python", "1+1")
    store.append_to_message(old, "old answer")
    store.finish_message(old, "complete")
    user = store.prepare_regenerate(conv)
    assert (user.id, user.content, user.attachments[0].name) == (
        prompt,
        "question two",
        "report.pdf",
    )
    new = store.begin_assistant_message(conv, "high")
    _, messages = store.get_conversation(conv)
    assert [m.id for m in messages][-2:] == [prompt, new]
    assert messages[-1].position == 3


def test_edit_last_user_message_replaces_it_and_keeps_attachments(store: HistoryStore) -> None:
    conv = store.create_conversation()
    store.add_user_message(conv, "Sumarise this", [REPORT])
    answer = store.begin_assistant_message(conv, "low")
    store.finish_message(answer, "complete")
    edited = store.edit_last_user_message(conv, "Summarise this")
    summary, messages = store.get_conversation(conv)
    assert [(m.id, m.content) for m in messages] == [(edited, "Summarise this")]
    assert messages[0].attachments[0].name == "report.pdf"
    assert summary.title == "Summarise this"  # the automatic title follows the edit
    replaced = store.edit_last_user_message(conv, "Just this", attachments=[])
    assert store.get_message(replaced).attachments == ()


def test_regenerate_without_a_user_message_is_refused(store: HistoryStore) -> None:
    conv = store.create_conversation()
    with pytest.raises(ValueError, match="no user message"):
        store.prepare_regenerate(conv)


def test_delete_messages_from_a_position(store: HistoryStore) -> None:
    conv = store.create_conversation()
    for text in ("a", "b", "c", "d"):
        store.add_user_message(conv, text)
    assert store.delete_messages_from(conv, 2) == 2
    assert [m.content for m in store.get_conversation(conv)[1]] == ["a", "b"]
    store.add_user_message(conv, "e")
    assert [m.position for m in store.get_conversation(conv)[1]] == [0, 1, 2]


def test_appends_are_cheap(store: HistoryStore) -> None:
    conv = store.create_conversation()
    answer = store.begin_assistant_message(conv, "low")
    start = time.perf_counter()
    for _ in range(300):
        store.append_to_message(answer, "token ", "thought ")
    # The GUI appends every ~50 ms; each must take a small fraction of that.
    assert (time.perf_counter() - start) / 300 < 0.01


def test_default_store_lives_in_the_user_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, str]] = []

    def fake_user_data_dir(name: str, author: str) -> str:
        calls.append((name, author))
        return str(tmp_path / "data" / name)

    monkeypatch.setattr(handover.platformdirs, "user_data_dir", fake_user_data_dir)
    with HistoryStore.default() as store:
        assert store.path == tmp_path / "data" / "OSS Desk" / "history.sqlite3"
        assert store.path.exists()
    assert calls == [("OSS Desk", "OSS Desk")]


def test_each_thread_uses_its_own_store(store: HistoryStore, db_path: Path) -> None:
    conv = store.create_conversation()
    errors: list[BaseException] = []

    def writer(tag: str) -> None:
        try:
            with HistoryStore(db_path, recover_interrupted=False) as mine:
                for i in range(50):
                    mine.add_user_message(conv, f"{tag}{i}")
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(tag,)) for tag in "xyz"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.get_conversation(conv)[0].message_count == 150


def test_a_store_refuses_other_threads(store: HistoryStore) -> None:
    caught: list[BaseException] = []

    def use() -> None:
        try:
            store.list_conversations()
        except BaseException as e:
            caught.append(e)

    thread = threading.Thread(target=use)
    thread.start()
    thread.join()
    assert len(caught) == 1 and isinstance(caught[0], sqlite3.ProgrammingError)
