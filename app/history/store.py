"""HistoryStore: conversations in one SQLite file (WAL), every write in its own transaction.

Thread-safety rule: a HistoryStore belongs to the thread that opened it. sqlite3 enforces this
(using it from another thread raises sqlite3.ProgrammingError). A second thread opens its own
HistoryStore on the same path (recover_interrupted=False skips a recovery that would find nothing:
the streams of this process are live); WAL lets readers run beside the one writer, and the busy
timeout queues writers instead of failing them.

One writing process: a store holds its process's share of an exclusive lock on
`history.sqlite3.lock` (lock.py), so a second OSS Desk on the same folder, however the folder is
spelled, is refused with HistoryError kind "in_use" instead of writing beside the first.

Durability: synchronous=NORMAL. A commit is in the WAL file before the call returns, so killing
the app (even SIGKILL) loses nothing already appended; a power cut may lose the last moments of
writes but never corrupts the file. Full fsync on every 50 ms delta would cost battery and SSD
wear for no gain against the common failure, which is the app being killed.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Self

from app.handover import default_data_folder
from app.history import lock, schema, versions
from app.history import queries as q
from app.history.errors import HistoryError, from_sqlite, is_database_failure
from app.history.records import (
    EFFORTS,
    FINAL_STATUSES,
    ConversationSummary,
    NewAttachment,
    SearchHit,
    StoredMessage,
    ToolCall,
    check_choice,
)
from app.history.search import search

FILE_NAME = "history.sqlite3"


class HistoryStore:
    """All conversations, messages and attachments of one user, in one SQLite file.

    Every method raises HistoryError when the file or the disk fails (see errors.py for how the
    GUI reacts). Unknown ids raise KeyError, except in the calls made for each streamed event
    (append_to_message, set_message_text, finish_message): they return False, because a user may
    delete a conversation while its answer is still streaming.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        recover_interrupted: bool = True,
        timeout_s: float = 5.0,
        wait_s: float = 0.0,
    ) -> None:
        """Open (creating or migrating) the file; wait_s: how long another process may take to
        let go of it (a relaunch while the previous OSS Desk is still quitting)."""
        self.path = Path(path)
        self._lock = _lock_for(self.path, wait_s)
        try:
            self._conn = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None)
        except sqlite3.Error as e:
            self._lock.release()
            raise from_sqlite(e, self.path) from e
        try:
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            if schema.user_version(self._conn) > schema.SCHEMA_VERSION:
                raise HistoryError("newer", self.path)
            schema.migrate(self._conn)
            # Ids of answers that were streaming when the app died; the GUI may point them out.
            self.recovered_message_ids: tuple[int, ...] = (
                self._recover_interrupted() if recover_interrupted else ()
            )
        except sqlite3.Error as e:
            self.close()
            if is_database_failure(e):
                raise from_sqlite(e, self.path) from e
            raise
        except BaseException:
            self.close()
            raise

    @classmethod
    def default(cls, **kwargs: Any) -> Self:
        """The store in the user's data folder (~/Library/Application Support/OSS Desk)."""
        folder = default_data_folder()
        folder.mkdir(parents=True, exist_ok=True)
        return cls(folder / FILE_NAME, **kwargs)

    def close(self) -> None:
        self._conn.close()
        self._lock.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self, mode: str) -> Iterator[sqlite3.Connection]:
        """BEGIN mode ... COMMIT; rolls back on any error and reports file failures as HistoryError.

        Writes use IMMEDIATE: taking the write lock up front lets busy_timeout wait for it, whereas
        upgrading a read transaction fails at once with SQLITE_BUSY under WAL.
        """
        try:
            self._conn.execute(f"BEGIN {mode}")
            yield self._conn
            self._conn.execute("COMMIT")
        except BaseException as e:
            if self._conn.in_transaction:  # SQLite has already rolled back after SQLITE_FULL
                self._conn.execute("ROLLBACK")
            if isinstance(e, sqlite3.Error) and is_database_failure(e):
                raise from_sqlite(e, self.path) from e
            raise

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._transaction("IMMEDIATE")

    def _read(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._transaction("DEFERRED")  # one snapshot across the statements of a read

    def _recover_interrupted(self) -> tuple[int, ...]:
        # This process holds the lock, so a stream of any other writer has no one left to finish
        # it; a stream of this process (another store, another thread) is still live.
        with self._write() as db:
            rows = db.execute(
                "UPDATE messages SET status = 'interrupted' WHERE status = 'streaming' "
                "AND writer IS NOT ? RETURNING id",
                (lock.writer_token(),),
            ).fetchall()
        return tuple(sorted(row[0] for row in rows))

    # Conversations

    def create_conversation(self, title: str | None = None, effort: str = "medium") -> int:
        """A new, empty conversation; without a title it is named after its first message."""
        effort = check_choice(effort, EFFORTS, "effort")
        now = time.time()
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO conversations (title, title_is_auto, reasoning_effort, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?)",
                (title or q.DEFAULT_TITLE, title is None, effort, now, now),
            )
            conversation_id = q.rowid(cursor)
            q.touch(db, conversation_id)
        return conversation_id

    def list_conversations(self) -> list[ConversationSummary]:
        """Every conversation, most recently used first."""
        with self._read() as db:
            rows = db.execute(
                q.SUMMARY + "ORDER BY c.updated_at DESC, c.id DESC", {"preview": q.PREVIEW_CHARS}
            ).fetchall()
        return [q.summary(row) for row in rows]

    def get_conversation(
        self, conversation_id: int
    ) -> tuple[ConversationSummary, list[StoredMessage]]:
        """The conversation and its messages in order. KeyError if it does not exist."""
        with self._read() as db:
            row = db.execute(
                q.SUMMARY + "WHERE c.id = :id", {"preview": q.PREVIEW_CHARS, "id": conversation_id}
            ).fetchone()
            if row is None:
                raise KeyError(f"conversation {conversation_id} does not exist")
            messages = db.execute(
                q.MESSAGE + "WHERE conversation_id = ? ORDER BY position", (conversation_id,)
            ).fetchall()
            attachments = db.execute(
                q.ATTACHMENT + " FROM attachments AS a JOIN messages AS m ON m.id = a.message_id "
                "WHERE m.conversation_id = ? ORDER BY a.message_id, a.position",
                (conversation_id,),
            ).fetchall()
            others = versions.alternatives(db, conversation_id)
        return q.summary(row), q.messages(messages, attachments, others)

    def get_message(self, message_id: int) -> StoredMessage:
        """One message with its attachments. KeyError if it does not exist."""
        with self._read() as db:
            row = db.execute(q.MESSAGE + "WHERE id = ?", (message_id,)).fetchone()
            if row is None:
                raise KeyError(f"message {message_id} does not exist")
            attachments = db.execute(
                q.ATTACHMENT + " FROM attachments AS a WHERE a.message_id = ? ORDER BY a.position",
                (message_id,),
            ).fetchall()
        return q.messages([row], attachments)[0]

    def rename_conversation(self, conversation_id: int, title: str) -> None:
        """Set a title chosen by the user; it is never replaced by an automatic one afterwards."""
        title = " ".join(title.split()) or q.DEFAULT_TITLE
        with self._write() as db:
            db.execute(
                "UPDATE conversations SET title = ?, title_is_auto = 0 WHERE id = ?",
                (title, conversation_id),
            )

    def set_effort(self, conversation_id: int, effort: str) -> None:
        effort = check_choice(effort, EFFORTS, "effort")
        with self._write() as db:
            db.execute(
                "UPDATE conversations SET reasoning_effort = ? WHERE id = ?",
                (effort, conversation_id),
            )

    def conversation_instructions(self, conversation_id: int) -> str | None:
        """The chat's own custom instructions; None: it has none (the app-wide ones apply).
        KeyError if the conversation does not exist."""
        with self._read() as db:
            row = db.execute(
                "SELECT instructions FROM conversations WHERE id = ?", (conversation_id,)
            ).fetchone()
        if row is None:
            raise KeyError(f"conversation {conversation_id} does not exist")
        instructions: str | None = row[0]
        return instructions

    def set_conversation_instructions(self, conversation_id: int, text: str | None) -> None:
        """Keep `text` exactly as given ("" is an explicit "no instructions" for this chat);
        None removes the chat's own. KeyError if the conversation does not exist."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE conversations SET instructions = ? WHERE id = ?", (text, conversation_id)
            )
        if cursor.rowcount == 0:
            raise KeyError(f"conversation {conversation_id} does not exist")

    def delete_conversation(self, conversation_id: int) -> None:
        """Delete it with its messages, attachments and search entries; a missing id is a no-op."""
        with self._write() as db:
            db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    # Messages

    def add_user_message(
        self, conversation_id: int, text: str, attachments: Sequence[NewAttachment] = ()
    ) -> int:
        """Append the user's message; the first one also names an untitled conversation."""
        with self._write() as db:
            return self._insert_user_message(db, conversation_id, text, attachments)

    def _insert_user_message(
        self,
        db: sqlite3.Connection,
        conversation_id: int,
        text: str,
        attachments: Sequence[NewAttachment],
    ) -> int:
        position = q.next_position(db, conversation_id)
        cursor = db.execute(
            "INSERT INTO messages (conversation_id, position, role, content, status, created_at) "
            "VALUES (?, ?, 'user', ?, 'complete', ?)",
            (conversation_id, position, text, time.time()),
        )
        message_id = q.rowid(cursor)
        db.executemany(
            "INSERT INTO attachments (message_id, position, name, kind, pages, token_count, text, "
            "sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (message_id, i, a.name, a.kind, a.pages, a.token_count, a.text, a.sha256)
                for i, a in enumerate(attachments)
            ],
        )
        if position == 0:
            db.execute(
                "UPDATE conversations SET title = ? WHERE id = ? AND title_is_auto",
                (q.auto_title(text, attachments), conversation_id),
            )
        q.touch(db, conversation_id)
        return message_id

    def begin_assistant_message(self, conversation_id: int, effort: str) -> int:
        """An empty answer in status "streaming", to be filled by append_to_message."""
        effort = check_choice(effort, EFFORTS, "effort")
        with self._write() as db:
            message_id = self._insert_answer(db, conversation_id, effort)
            q.touch(db, conversation_id)
        return message_id

    def _insert_answer(self, db: sqlite3.Connection, conversation_id: int, effort: str) -> int:
        cursor = db.execute(
            "INSERT INTO messages (conversation_id, position, role, status, effort, "
            "created_at, writer) VALUES (?, ?, 'assistant', 'streaming', ?, ?, ?)",
            (
                conversation_id,
                q.next_position(db, conversation_id),
                effort,
                time.time(),
                lock.writer_token(),
            ),
        )
        return q.rowid(cursor)

    def append_to_message(
        self, message_id: int, content_delta: str = "", reasoning_delta: str = ""
    ) -> bool:
        """Add streamed text to a streaming answer. False if the answer was deleted.

        The whole delta is committed or none of it: after a HistoryError, send it again.
        HistoryError kind "taken" if the answer exists but no longer streams (another process
        marked it interrupted, or it was finished): text sent then would be lost without a word.
        """
        if not content_delta and not reasoning_delta:
            return True
        with self._write() as db:
            cursor = db.execute(
                "UPDATE messages SET content = content || ?, reasoning = reasoning || ? "
                "WHERE id = ? AND status = 'streaming'",
                (content_delta, reasoning_delta, message_id),
            )
            if cursor.rowcount == 1:
                return True
            row = db.execute("SELECT status FROM messages WHERE id = ?", (message_id,)).fetchone()
        if row is None:
            return False
        raise HistoryError("taken", self.path, f"message {message_id} is {row[0]}, not streaming")

    def set_message_text(self, message_id: int, content: str, reasoning: str = "") -> bool:
        """Overwrite an answer's text, e.g. to resync from memory after a failed append."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE messages SET content = ?, reasoning = ? WHERE id = ?",
                (content, reasoning, message_id),
            )
        return cursor.rowcount == 1

    def add_tool_call(
        self, message_id: int, recipient: str, arguments: str, result: str | None = None
    ) -> int:
        """Record a tool call on an answer; returns its index for set_tool_result."""
        with self._write() as db:
            calls = q.load_tool_calls(db, message_id)
            calls.append(ToolCall(recipient, arguments, result))
            q.save_tool_calls(db, message_id, calls)
        return len(calls) - 1

    def add_tool_step(self, message_id: int, step: ToolCall) -> int:
        """Record a call the tool loop ran (or declined) with what the pane shows of it."""
        with self._write() as db:
            calls = q.load_tool_calls(db, message_id)
            calls.append(step)
            q.save_tool_calls(db, message_id, calls)
        return len(calls) - 1

    def set_tool_result(self, message_id: int, index: int, result: str) -> None:
        with self._write() as db:
            calls = q.load_tool_calls(db, message_id)
            call = calls[index]
            calls[index] = ToolCall(call.recipient, call.arguments, result)
            q.save_tool_calls(db, message_id, calls)

    def finish_message(
        self,
        message_id: int,
        status: str,
        stats: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> bool:
        """End a stream as complete, cancelled, interrupted or error; this also makes it searchable.

        HistoryError kind "taken" if the answer no longer streams: its stored end stands.
        """
        status = check_choice(status, FINAL_STATUSES, "status")
        stats_json = json.dumps(stats or {}, sort_keys=True)
        with self._write() as db:
            row = db.execute(
                "SELECT conversation_id, status FROM messages WHERE id = ?", (message_id,)
            ).fetchone()
            if row is None:
                return False
            if row[1] != "streaming":
                raise HistoryError("taken", self.path, f"message {message_id} is {row[1]}")
            db.execute(
                "UPDATE messages SET status = ?, stats = ?, error = ? WHERE id = ?",
                (status, stats_json, error, message_id),
            )
            q.touch(db, row[0])
        return True

    def delete_messages_from(self, conversation_id: int, position: int) -> int:
        """Delete the message at `position` and every later one; returns how many went."""
        with self._write() as db:
            cursor = db.execute(
                "DELETE FROM messages WHERE conversation_id = ? AND position >= ?",
                (conversation_id, position),
            )
            q.touch(db, conversation_id)
        return cursor.rowcount

    def prepare_regenerate(self, conversation_id: int) -> StoredMessage:
        """Drop everything after the last user message (its answer's versions too) and return
        that message to answer again; regenerate_answer keeps the answer as a version instead."""
        with self._write() as db:
            position = q.last_user_position(db, conversation_id)
            db.execute(
                "DELETE FROM messages WHERE conversation_id = ? AND position > ?",
                (conversation_id, position),
            )
            q.touch(db, conversation_id)
            message_id = db.execute(
                "SELECT id FROM messages WHERE conversation_id = ? AND position = ?",
                (conversation_id, position),
            ).fetchone()[0]
        return self.get_message(message_id)

    def regenerate_answer(self, conversation_id: int, effort: str) -> int:
        """Answer the last user message again: its answer becomes an empty streaming version
        (the earlier ones are kept, see versions.py) and its id is returned to stream into.

        ValueError if the conversation has no user message."""
        effort = check_choice(effort, EFFORTS, "effort")
        with self._write() as db:
            message_id = versions.begin_again(db, conversation_id, effort, lock.writer_token())
            if message_id is None:
                message_id = self._insert_answer(db, conversation_id, effort)
            q.touch(db, conversation_id)
        return message_id

    def answer_versions(self, message_id: int) -> list[StoredMessage]:
        """Every version of an answer by number (1 first), the selected one among them.
        KeyError if the message does not exist."""
        with self._read() as db:
            return versions.of_answer(db, message_id)

    def select_version(self, message_id: int, version: int) -> StoredMessage:
        """Show `version` of an answer, continue the chat from it, and load it when the chat
        reopens; returns it. KeyError for an unknown answer or version, ValueError while the
        answer is being written."""
        with self._write() as db:
            versions.select(db, message_id, version)
        return self.get_message(message_id)

    def edit_last_user_message(
        self,
        conversation_id: int,
        text: str,
        attachments: Sequence[NewAttachment] | None = None,
    ) -> int:
        """Replace the last user message (and what followed) by an edited one; returns its id.

        attachments=None keeps the old message's attachments.
        """
        with self._write() as db:
            position = q.last_user_position(db, conversation_id)
            if attachments is None:
                attachments = [
                    NewAttachment(name, kind, text_, tokens, pages, sha)
                    for name, kind, text_, tokens, pages, sha in db.execute(
                        "SELECT a.name, a.kind, a.text, a.token_count, a.pages, a.sha256 "
                        "FROM attachments AS a JOIN messages AS m ON m.id = a.message_id "
                        "WHERE m.conversation_id = ? AND m.position = ? ORDER BY a.position",
                        (conversation_id, position),
                    )
                ]
            db.execute(
                "DELETE FROM messages WHERE conversation_id = ? AND position >= ?",
                (conversation_id, position),
            )
            return self._insert_user_message(db, conversation_id, text, attachments)

    def search(self, text: str, limit: int = 50) -> list[SearchHit]:
        """Conversations whose title, answers or reasoning contain every word typed."""
        with self._read() as db:
            return search(db, text, limit)


def _lock_for(path: Path, wait_s: float) -> lock.ProcessLock:
    try:  # beside the real file, so that a symlink to it does not get a lock of its own
        return lock.acquire(f"{os.path.realpath(path)}.lock", wait_s=wait_s)
    except lock.LockHeld as e:
        who = f"process {e.owner_pid}" if e.owner_pid else "another process"
        raise HistoryError("in_use", path, f"{e.path} is held by {who}") from e
    except OSError as e:
        raise HistoryError("unavailable", path, e.strerror or str(e)) from e
