"""Answer versions (Regenerate keeps the earlier answers), per-chat instructions, and the v3
migration that adds both to a file written by the previous schema."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from app.history import (
    HistoryStore,
    conversation_from_json,
    export_json,
    export_markdown,
    schema,
)

STATS = {"thinking_s": 1.5, "reasoning_tokens": 12, "answer_tokens": 30, "decode_tps": 20.0}


def answer(store: HistoryStore, message_id: int, text: str, reasoning: str = "") -> None:
    store.append_to_message(message_id, text, reasoning)
    store.finish_message(message_id, "complete", {**STATS, "answer_tokens": len(text)})


def three_versions(store: HistoryStore) -> tuple[int, int]:
    """A chat whose one answer was regenerated twice: (conversation, answer id)."""
    conv = store.create_conversation()
    store.add_user_message(conv, "Name a colour")
    first = store.begin_assistant_message(conv, "low")
    answer(store, first, "Crimson", "warm ones first")
    for text, reasoning in (("Teal", "a cool one now"), ("Ochre", "earthy this time")):
        again = store.regenerate_answer(conv, "high")
        assert again == first  # the same answer, a new version of it
        answer(store, again, text, reasoning)
    return conv, first


def test_regenerating_twice_keeps_three_versions_and_shows_the_newest(
    store: HistoryStore,
) -> None:
    conv, message_id = three_versions(store)
    versions = store.answer_versions(message_id)
    assert [(v.version, v.content, v.reasoning) for v in versions] == [
        (1, "Crimson", "warm ones first"),
        (2, "Teal", "a cool one now"),
        (3, "Ochre", "earthy this time"),
    ]
    assert [v.effort for v in versions] == ["low", "high", "high"]
    assert [v.stats["answer_tokens"] for v in versions] == [7, 4, 5]
    summary, messages = store.get_conversation(conv)
    assert summary.message_count == 2  # versions are not messages
    shown = messages[-1]
    assert (shown.id, shown.version, shown.version_count, shown.content) == (
        message_id,
        3,
        3,
        "Ochre",
    )
    assert [m.content for m in shown.alternatives] == ["Crimson", "Teal"]


def test_the_selected_version_is_what_the_reopened_chat_holds_and_searches(
    store: HistoryStore, db_path: Path
) -> None:
    conv, message_id = three_versions(store)
    selected = store.select_version(message_id, 1)
    assert (selected.version, selected.content, selected.reasoning) == (
        1,
        "Crimson",
        "warm ones first",
    )
    store.close()
    with HistoryStore(db_path) as reopened:
        shown = reopened.get_conversation(conv)[1][-1]
        assert (shown.version, shown.content, shown.effort) == (1, "Crimson", "low")
        assert shown.stats["answer_tokens"] == 7
        assert [(m.version, m.content) for m in shown.alternatives] == [(2, "Teal"), (3, "Ochre")]
        # The search index follows the selection: the shown answer is found, hidden ones not.
        assert [h.message_id for h in reopened.search("crimson")] == [message_id]
        assert reopened.search("ochre") == []


def test_regenerating_after_a_switch_adds_the_next_number(store: HistoryStore) -> None:
    conv, message_id = three_versions(store)
    store.select_version(message_id, 2)
    assert store.regenerate_answer(conv, "medium") == message_id
    assert store.get_message(message_id).status == "streaming"
    answer(store, message_id, "Indigo")
    versions = store.answer_versions(message_id)
    assert [(v.version, v.content) for v in versions] == [
        (1, "Crimson"),
        (2, "Teal"),
        (3, "Ochre"),
        (4, "Indigo"),
    ]


def test_an_answer_stopped_before_it_wrote_anything_is_not_kept(store: HistoryStore) -> None:
    conv = store.create_conversation()
    store.add_user_message(conv, "Hi")
    first = store.begin_assistant_message(conv, "low")
    answer(store, first, "Hello!")
    empty = store.regenerate_answer(conv, "low")
    store.finish_message(empty, "cancelled")
    again = store.regenerate_answer(conv, "low")
    answer(store, again, "Hi there!")
    assert [(v.version, v.content) for v in store.answer_versions(first)] == [
        (1, "Hello!"),
        (2, "Hi there!"),
    ]


def test_regenerating_a_chat_whose_answer_is_missing_starts_one(store: HistoryStore) -> None:
    conv = store.create_conversation()
    store.add_user_message(conv, "Hi")
    message_id = store.regenerate_answer(conv, "low")
    stored = store.get_message(message_id)
    assert (stored.role, stored.status, stored.position, stored.version) == (
        "assistant",
        "streaming",
        1,
        1,
    )
    with pytest.raises(ValueError, match="no user message"):
        store.regenerate_answer(store.create_conversation(), "low")


def test_switching_is_refused_while_streaming_and_for_unknown_versions(
    store: HistoryStore,
) -> None:
    conv, message_id = three_versions(store)
    with pytest.raises(KeyError, match="no version 9"):
        store.select_version(message_id, 9)
    with pytest.raises(KeyError):
        store.select_version(message_id + 100, 1)
    store.regenerate_answer(conv, "low")
    with pytest.raises(ValueError, match="still being written"):
        store.select_version(message_id, 1)
    assert store.select_version(message_id, 4).status == "streaming"  # already shown: no-op


def test_editing_the_question_or_deleting_the_chat_drops_the_versions(
    store: HistoryStore, raw: sqlite3.Connection
) -> None:
    conv, _ = three_versions(store)
    store.edit_last_user_message(conv, "Name a fruit")
    assert raw.execute("SELECT count(*) FROM answer_versions").fetchone() == (0,)
    conv, _ = three_versions(store)
    store.delete_conversation(conv)
    assert raw.execute("SELECT count(*) FROM answer_versions").fetchone() == (0,)


def test_per_chat_instructions_are_stored_exactly(store: HistoryStore, db_path: Path) -> None:
    conv = store.create_conversation()
    other = store.create_conversation()
    assert store.conversation_instructions(conv) is None
    store.set_conversation_instructions(conv, "Answer in French.\nBe brief.")
    store.set_conversation_instructions(other, "")
    store.close()
    with HistoryStore(db_path) as reopened:
        assert reopened.conversation_instructions(conv) == "Answer in French.\nBe brief."
        assert reopened.conversation_instructions(other) == ""  # explicitly none, not None
        reopened.set_conversation_instructions(conv, None)
        assert reopened.conversation_instructions(conv) is None
        with pytest.raises(KeyError):
            reopened.conversation_instructions(other + 1)
        with pytest.raises(KeyError):
            reopened.set_conversation_instructions(other + 1, "x")


def test_exports_keep_a_chats_instructions(store: HistoryStore) -> None:
    conv, _ = three_versions(store)
    store.set_conversation_instructions(conv, "Answer in French.\n\nBe brief.")
    summary, messages = store.get_conversation(conv)
    assert summary.instructions == "Answer in French.\n\nBe brief."
    text = export_markdown(summary, messages)
    assert "**Instructions for this chat**\n\n> Answer in French.\n>\n> Be brief.\n" in text
    assert conversation_from_json(export_json(summary, messages))[0] == summary
    store.set_conversation_instructions(conv, None)
    assert "Instructions for this chat" not in export_markdown(*store.get_conversation(conv))


def test_exports_show_the_selected_version_then_the_others_marked(store: HistoryStore) -> None:
    conv, message_id = three_versions(store)
    store.select_version(message_id, 2)
    summary, messages = store.get_conversation(conv)
    text = export_markdown(summary, messages)
    assert "### Assistant · version 2 of 3, the one shown" in text
    shown, others = text.split("#### Other versions of this answer")
    assert "Teal" in shown and "a cool one now" in shown
    assert "Crimson" not in shown and "Ochre" not in shown
    assert others.index("##### Version 1 of 3 (not shown in the chat)") < others.index("Crimson")
    assert others.index("Crimson") < others.index("##### Version 3 of 3") < others.index("Ochre")
    assert "earthy this time" in others and "Low effort" in others
    back = conversation_from_json(export_json(summary, messages))[1][-1]
    assert back == messages[-1]
    assert [(m.version, m.content) for m in back.alternatives] == [(1, "Crimson"), (3, "Ochre")]


def test_an_export_from_before_versions_still_reads(store: HistoryStore) -> None:
    conv, _ = three_versions(store)
    document = json.loads(export_json(*store.get_conversation(conv)))
    for message in document["messages"]:
        del message["version"], message["alternatives"]
    _, messages = conversation_from_json(json.dumps(document))
    assert (messages[-1].content, messages[-1].version, messages[-1].alternatives) == (
        "Ochre",
        1,
        (),
    )


def _previous_schema_file(path: Path) -> None:
    """A history file as OSS Desk wrote it before this version: the released migrations v1-v2,
    filled with the SQL that version's store ran (its triggers index the text)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    assert schema.migrate(conn, schema.MIGRATIONS[:2]) == 0
    conn.execute(
        "INSERT INTO conversations (id, title, title_is_auto, reasoning_effort, created_at, "
        "updated_at) VALUES (7, 'Old chat', 0, 'high', 1000.0, 2000.0)"
    )
    rows = [
        (70, 0, "user", "What is a quokka?", "", "complete", None, "{}", None),
        (
            71,
            1,
            "assistant",
            "A small marsupial.",
            "think",
            "complete",
            "high",
            '{"ttft_s": 1}',
            None,
        ),
        (72, 2, "user", "Where?", "", "complete", None, "{}", None),
        (73, 3, "assistant", "Rottnest", "", "streaming", "high", "{}", "dead-writer"),
    ]
    conn.executemany(
        "INSERT INTO messages (id, conversation_id, position, role, content, reasoning, status, "
        "effort, stats, writer, created_at) VALUES (?, 7, ?, ?, ?, ?, ?, ?, ?, ?, 1500.0)",
        rows,
    )
    conn.execute(
        "INSERT INTO attachments (message_id, position, name, kind, pages, token_count, text) "
        "VALUES (70, 0, 'notes.txt', 'text', NULL, 5, 'quokkas smile')"
    )
    conn.close()


def test_a_file_from_the_previous_schema_upgrades_without_losing_anything(
    tmp_path: Path,
) -> None:
    path = tmp_path / "history.sqlite3"
    _previous_schema_file(path)
    with HistoryStore(path) as store:
        assert schema.user_version(store._conn) == schema.SCHEMA_VERSION == 4
        assert store.recovered_message_ids == (73,)  # the old stream still counts as cut off
        summary, messages = store.get_conversation(7)
        assert (summary.title, summary.reasoning_effort, summary.updated_at) == (
            "Old chat",
            "high",
            2000.0,
        )
        assert [(m.id, m.role, m.content, m.version, m.alternatives) for m in messages] == [
            (70, "user", "What is a quokka?", 1, ()),
            (71, "assistant", "A small marsupial.", 1, ()),
            (72, "user", "Where?", 1, ()),
            (73, "assistant", "Rottnest", 1, ()),
        ]
        assert messages[1].reasoning == "think" and messages[1].stats == {"ttft_s": 1}
        assert messages[0].attachments[0].text == "quokkas smile"
        assert [h.message_id for h in store.search("marsupial")] == [71]
        assert store.conversation_instructions(7) is None
        # The upgraded answer becomes version 1 when it is regenerated.
        assert store.regenerate_answer(7, "low") == 73
        answer(store, 73, "Western Australia")
        assert [(v.version, v.content, v.status) for v in store.answer_versions(73)] == [
            (1, "Rottnest", "interrupted"),
            (2, "Western Australia", "complete"),
        ]


def test_version_rows_need_a_real_answer(store: HistoryStore, raw: sqlite3.Connection) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        raw.execute("PRAGMA foreign_keys = ON")
        raw.execute(
            "INSERT INTO answer_versions (message_id, version, status, created_at) "
            "VALUES (999, 1, 'complete', 0)"
        )
