"""Markdown and JSON exports, and atomic writes that never leave a half file or a temp file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from app.history import (
    HistoryError,
    HistoryStore,
    NewAttachment,
    conversation_from_json,
    export_json,
    export_markdown,
    write_atomically,
)
from app.history.records import ConversationSummary, StoredMessage

STATS = {
    "ttft_s": 0.35,
    "reasoning_tokens": 120,
    "answer_tokens": 812,
    "decode_tps": 41.25,
    "prefill_tps": 900.0,
    "thinking_s": 3.2,
    "budget_cut": True,
}


@pytest.fixture
def conversation(store: HistoryStore) -> tuple[ConversationSummary, list[StoredMessage]]:
    conv = store.create_conversation(effort="high")
    doc = NewAttachment("report.pdf", "pdf", "Revenue rose 12 %.", 9812, pages=12, sha256="f" * 64)
    store.add_user_message(conv, "Summarise the report — briefly, ünïcode OK?", [doc])
    answer = store.begin_assistant_message(conv, "high")
    store.append_to_message(answer, "Revenue rose **12 %**.", "Look at page 3. </details> oops")
    store.add_tool_call(answer, "python", "print('```')", result="```")
    store.finish_message(answer, "complete", STATS)
    store.add_user_message(conv, "And costs?")
    cut = store.begin_assistant_message(conv, "high")
    store.append_to_message(cut, "Costs were")
    store.finish_message(cut, "cancelled")
    return store.get_conversation(conv)


def test_markdown_has_title_turns_reasoning_attachments_and_stats(
    conversation: tuple[ConversationSummary, list[StoredMessage]],
) -> None:
    text = export_markdown(*conversation)
    assert text.startswith("# Summarise the report — briefly, ünïcode OK?\n")
    assert "reasoning effort: high" in text
    assert text.count("### You") == 2 and text.count("### Assistant") == 2
    assert "<details>\n<summary>Reasoning</summary>\n\nLook at page 3. &lt;/details> oops" in text
    assert text.count("</details>") == 1  # the one in the reasoning cannot close the block
    assert "Revenue rose **12 %**." in text
    assert "*Attached: report.pdf (pdf, 12 pages, 9,812 tokens)*" in text
    assert (
        "*High effort · thought for 3.2 s · 120 reasoning tokens · 812 answer tokens · "
        "41.2 tok/s · first token 0.35 s · the reasoning budget cut the thinking short*"
    ) in text
    assert "````json\nprint('```')\n````" in text  # the fence outgrows the backticks inside
    assert "*Stopped before the answer was finished.*" in text


def test_markdown_can_leave_out_the_reasoning(
    conversation: tuple[ConversationSummary, list[StoredMessage]],
) -> None:
    text = export_markdown(*conversation, include_reasoning=False)
    assert "<details>" not in text and "page 3" not in text


def test_json_is_versioned_and_round_trips_every_field(
    conversation: tuple[ConversationSummary, list[StoredMessage]],
) -> None:
    text = export_json(*conversation)
    document = json.loads(text)
    assert (document["format"], document["version"]) == ("oss-desk-conversation", 1)
    assert document["messages"][0]["attachments"][0]["name"] == "report.pdf"
    assert "ünïcode" in text  # readable, not \\u-escaped
    assert conversation_from_json(text) == (conversation[0], conversation[1])


def test_json_without_reasoning_blanks_it(
    conversation: tuple[ConversationSummary, list[StoredMessage]],
) -> None:
    _, messages = conversation_from_json(export_json(*conversation, include_reasoning=False))
    assert all(m.reasoning == "" for m in messages)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"format": "something-else", "version": 1}', "not an OSS Desk conversation"),
        ('{"format": "oss-desk-conversation", "version": 99}', "newer version"),
        ('{"format": "oss-desk-conversation", "version": 1}', "damaged or incomplete"),
        ("not json", "damaged or incomplete"),
    ],
)
def test_foreign_or_newer_json_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        conversation_from_json(text)


def test_write_atomically_replaces_the_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "chat.md"
    write_atomically(target, "first\n")
    target.chmod(0o640)
    write_atomically(target, "sécond\n")
    assert target.read_text(encoding="utf-8") == "sécond\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # the user's permissions are kept
    assert os.listdir(tmp_path) == ["chat.md"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.mkdir()  # os.replace cannot put a file over a folder
    with pytest.raises(HistoryError) as caught:
        write_atomically(target, "text")
    assert caught.value.kind == "export"
    assert str(caught.value).startswith(f"The conversation could not be saved to {target}.")
    assert os.listdir(tmp_path) == ["taken"]
