"""Python and MCP calls kept as steps of an answer (schema v4): a v3 file opens and keeps its
plain tool calls, steps are written beside them, a regenerated answer keeps its own, and both
exports carry them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from app.history import HistoryStore, ToolCall, schema
from app.history.export import conversation_from_json, export_json, export_markdown

PLAIN = {"recipient": "functions.lookup", "arguments": '{"q": 1}', "result": "{}"}
PLAIN_CALL = ToolCall("functions.lookup", '{"q": 1}', "{}")
STEP = ToolCall(
    "python",
    "print(6 * 7)",
    "42\n",
    kind="python",
    title="Python",
    language="python",
    summary="ran Python (12 ms)",
    duration_s=0.012,
)


def _v3_file(path: Path) -> None:
    """A history file as the previous version wrote it: migrations v1-v3 and a plain call."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    assert schema.migrate(conn, schema.MIGRATIONS[:3]) == 0
    conn.execute(
        "INSERT INTO conversations (id, title, reasoning_effort, created_at, updated_at) "
        "VALUES (5, 'Tools', 'low', 1000.0, 1000.0)"
    )
    conn.execute(
        "INSERT INTO messages (id, conversation_id, position, role, content, status, created_at) "
        "VALUES (50, 5, 0, 'user', 'Look it up.', 'complete', 1000.0)"
    )
    conn.execute(
        "INSERT INTO messages (id, conversation_id, position, role, content, status, effort, "
        "tool_calls, created_at) VALUES (51, 5, 1, 'assistant', 'Found.', 'complete', 'low', ?, "
        "1001.0)",
        (json.dumps([PLAIN]),),
    )
    conn.close()


def test_a_v3_file_opens_and_its_answers_take_steps(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    _v3_file(path)
    with HistoryStore(path) as store:
        assert schema.user_version(store._conn) == schema.SCHEMA_VERSION == 4
        (old,) = store.get_conversation(5)[1][1].tool_calls
        assert old == PLAIN_CALL and old.kind is None  # read as it was written
        assert store.add_tool_step(51, STEP) == 1
    with HistoryStore(path) as reopened:
        summary, messages = reopened.get_conversation(5)
    assert messages[1].tool_calls == (PLAIN_CALL, STEP)
    # The plain call is stored in the old shape; the step adds only the keys it sets.
    raw = sqlite3.connect(path).execute("SELECT tool_calls FROM messages WHERE id = 51")
    stored = json.loads(raw.fetchone()[0])
    assert stored[0] == PLAIN
    assert set(stored[1]) == {*PLAIN, "kind", "title", "language", "summary", "duration_s"}

    markdown = export_markdown(summary, messages)
    assert "**Tool call** `functions.lookup`" in markdown  # as before
    python = "```python\nprint(6 * 7)\n```\n\n**Output**\n\n```text\n42\n\n```"
    assert f"**Python** · 12 ms\n\n{python}" in markdown
    _, back = conversation_from_json(export_json(summary, messages))
    assert back[1].tool_calls == (PLAIN_CALL, STEP)


def test_a_step_from_a_newer_version_reads_without_its_unknown_keys() -> None:
    data = {**STEP.to_json(), "sandbox": "seatbelt"}
    assert ToolCall.from_json(data) == STEP


def test_a_regenerated_answer_keeps_its_own_steps(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "history.sqlite3") as store:
        chat = store.create_conversation()
        store.add_user_message(chat, "Compute.")
        first = store.begin_assistant_message(chat, "low")
        store.add_tool_step(first, STEP)
        store.finish_message(first, "complete")
        second = store.regenerate_answer(chat, "low")
        declined = ToolCall("python", "1/0", "declined", kind="python", ok=False, declined=True)
        store.add_tool_step(second, declined)
        store.finish_message(second, "complete")
        answer = store.get_conversation(chat)[1][-1]
    assert answer.tool_calls == (declined,)
    assert [m.tool_calls for m in answer.alternatives] == [(STEP,)]
