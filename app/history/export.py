"""Export a conversation as Markdown (to read or share) or JSON (lossless, re-importable).

Both take what HistoryStore.get_conversation returns. The JSON schema is versioned: fields may be
added within a version; renaming or removing one needs JSON_VERSION + 1 and a reader for the old.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import stat
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from app.history.errors import HistoryError
from app.history.facts import facts_text
from app.history.records import (
    ConversationSummary,
    StoredAttachment,
    StoredMessage,
    ToolCall,
)

JSON_FORMAT = "oss-desk-conversation"
JSON_VERSION = 1

_SPEAKERS = {"user": "You", "assistant": "Assistant", "tool": "Tool", "system": "System"}
_STATUS_NOTES = {
    "streaming": "*The answer was still being written when this was exported.*",
    "cancelled": "*Stopped before the answer was finished.*",
    "interrupted": "*Interrupted: OSS Desk closed before the answer was finished.*",
}


def export_markdown(
    summary: ConversationSummary,
    messages: Sequence[StoredMessage],
    *,
    include_reasoning: bool = True,
) -> str:
    """The conversation as Markdown; reasoning sits in collapsed <details> blocks."""
    created = datetime.fromtimestamp(summary.created_at).astimezone()
    lines = [
        f"# {summary.title}",
        "",
        f"*{created:%Y-%m-%d %H:%M} · reasoning effort: {summary.reasoning_effort}"
        " · exported from OSS Desk*",
    ]
    if summary.instructions:
        quoted = "\n".join(f"> {line}".rstrip() for line in summary.instructions.splitlines())
        lines += ["", "**Instructions for this chat**", "", quoted]
    footnotes = _Footnotes()
    for message in messages:
        while lines[-1] == "":
            lines.pop()
        lines += ["", "---", "", f"### {_SPEAKERS[message.role]}{_version_note(message)}", ""]
        lines += _body(message, footnotes, include_reasoning)
        if message.alternatives:
            lines += _other_versions(message, footnotes, include_reasoning)
    return "\n".join(lines).rstrip("\n") + "\n"


def _version_note(message: StoredMessage) -> str:
    if not message.alternatives:
        return ""
    return f" · version {message.version} of {message.version_count}, the one shown"


def _other_versions(
    message: StoredMessage, footnotes: _Footnotes, include_reasoning: bool
) -> list[str]:
    """The versions not selected, after the shown one, each under a heading that says so."""
    count = message.version_count
    lines = ["#### Other versions of this answer", ""]
    for other in message.alternatives:
        lines += [f"##### Version {other.version} of {count} (not shown in the chat)", ""]
        lines += _body(other, footnotes, include_reasoning)
    return lines


def _body(message: StoredMessage, footnotes: _Footnotes, include_reasoning: bool) -> list[str]:
    lines: list[str] = []
    if include_reasoning and message.reasoning.strip():
        lines += _reasoning_block(message)
    if message.content:
        content, notes = footnotes.cite(message.content, message.stats.get("citations"))
        lines += [content, "", *notes]
    for call in message.tool_calls:
        lines += _tool_call_block(call)
    if message.attachments:
        names = ", ".join(_describe(a) for a in message.attachments)
        lines += [f"*Attached: {names}*", ""]
    if message.status == "error":
        lines += [f"*Error: {message.error or 'the answer failed'}*", ""]
    elif message.status in _STATUS_NOTES:
        lines += [_STATUS_NOTES[message.status], ""]
    if message.role == "assistant" and (stats_line := facts_text(message.effort, message.stats)):
        lines += [f"*{stats_line}*", ""]
    return lines


# gpt-oss's citations 【cursor†Lx-Ly】, as app.markdown_render reads them.
_CITATION = re.compile(r"【(\d{1,6})†L(\d{1,7})(?:-L?(\d{1,7}))?】")


class _Footnotes:
    """Citations become Markdown footnotes numbered across the whole export (footnote labels
    are global in a Markdown file); one pointing nowhere is kept, and says so."""

    def __init__(self) -> None:
        self.count = 0

    def cite(self, content: str, records: object) -> tuple[str, list[str]]:
        known: dict[tuple[int, int, int], dict[str, Any]] = {}
        for r in records if isinstance(records, list) else []:
            if isinstance(r, dict) and all(isinstance(r.get(k), int) for k in _RECORD_KEYS):
                known[(r["cursor"], r["first"], r["last"])] = r
        numbers: dict[tuple[int, int, int], int] = {}
        notes: list[str] = []

        def footnote(found: re.Match[str]) -> str:
            first = int(found.group(2))
            key = (int(found.group(1)), first, int(found.group(3) or first))
            if key not in numbers:
                self.count += 1
                numbers[key] = self.count
                notes.append(f"[^{self.count}]: {_where(known.get(key), found.group(0))}")
            return f"[^{numbers[key]}]"

        text = _CITATION.sub(footnote, content)
        return text, ([*notes, ""] if notes else [])


_RECORD_KEYS = ("cursor", "first", "last")


def _where(record: dict[str, Any] | None, written: str) -> str:
    if record is None or not isinstance(record.get("url"), str):
        return f"{written} points to nothing the model opened."
    lines = record.get("lines") or [record["first"], record["last"]]
    span = f"line {lines[0]}" if lines[0] == lines[-1] else f"lines {lines[0]}-{lines[-1]}"
    name = Path(str(record.get("path", ""))).name
    return f"{name}, page {record.get('page', 1)}, {span} (<{record['url']}>)"


def _reasoning_block(message: StoredMessage) -> list[str]:
    # A literal </details> in the reasoning would close the block early and show the rest.
    text = re.sub(r"</(details)", r"&lt;/\1", message.reasoning.strip(), flags=re.IGNORECASE)
    return ["<details>", "<summary>Reasoning</summary>", "", text, "", "</details>", ""]


def _tool_call_block(call: ToolCall) -> list[str]:
    if call.kind is not None:
        return _step_block(call)
    lines = [f"**Tool call** `{call.recipient}`", "", *_fenced(call.arguments, "json"), ""]
    if call.result is not None:
        lines += ["**Result**", "", *_fenced(call.result, "text"), ""]
    return lines


def _step_block(call: ToolCall) -> list[str]:
    """A python or MCP call as the reasoning pane showed it: what ran, then what came back."""
    took = "" if call.duration_s is None else f" · {_seconds(call.duration_s)}"
    name = call.title or call.recipient
    head = ("**Python**" if call.kind == "python" else f"**Tool call** {name}") + took
    lines = [head, "", *_fenced(call.arguments, call.language or "text"), ""]
    if call.declined:
        return [*lines, "*Not run: the user declined it.*", ""]
    if call.result is None:
        return [*lines, f"*{call.summary or 'Not run.'}*", ""]
    label = "**Output**" if call.ok else "**Error**"
    return [*lines, label, "", *_fenced(call.result, "text"), ""]


def _seconds(duration_s: float) -> str:
    return f"{duration_s * 1000:.0f} ms" if duration_s < 1 else f"{duration_s:.1f} s"


def _fenced(text: str, language: str) -> list[str]:
    """A code block whose fence is longer than any run of backticks inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{language}", text, fence]


def _describe(attachment: StoredAttachment) -> str:
    facts = [attachment.kind] if attachment.kind else []
    if attachment.pages is not None:
        facts.append(f"{attachment.pages} page{'s' if attachment.pages != 1 else ''}")
    facts.append(f"{attachment.token_count:,} tokens")
    return f"{attachment.name} ({', '.join(facts)})"


def export_json(
    summary: ConversationSummary,
    messages: Sequence[StoredMessage],
    *,
    include_reasoning: bool = True,
) -> str:
    """The conversation as versioned JSON; conversation_from_json reads it back unchanged."""
    document = {
        "format": JSON_FORMAT,
        "version": JSON_VERSION,
        "conversation": {
            "id": summary.id,
            "title": summary.title,
            "created_at": summary.created_at,  # Unix time in seconds, as stored
            "updated_at": summary.updated_at,
            "reasoning_effort": summary.reasoning_effort,
            "message_count": summary.message_count,
            "preview": summary.preview,
            "instructions": summary.instructions,
        },
        "messages": [_message_json(m, include_reasoning) for m in messages],
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def _message_json(message: StoredMessage, include_reasoning: bool) -> dict[str, Any]:
    return {
        "id": message.id,
        "conversation_id": message.conversation_id,
        "position": message.position,
        "role": message.role,
        "content": message.content,
        "reasoning": message.reasoning if include_reasoning else "",
        "status": message.status,
        "effort": message.effort,
        "created_at": message.created_at,
        "tool_calls": [c.to_json() for c in message.tool_calls],
        "stats": message.stats,
        "error": message.error,
        "attachments": [
            {
                "id": a.id,
                "name": a.name,
                "kind": a.kind,
                "pages": a.pages,
                "token_count": a.token_count,
                "sha256": a.sha256,
                "text": a.text,
            }
            for a in message.attachments
        ],
        "version": message.version,
        "alternatives": [_message_json(m, include_reasoning) for m in message.alternatives],
    }


def conversation_from_json(text: str) -> tuple[ConversationSummary, list[StoredMessage]]:
    """Read an export_json document back. ValueError if it is not one this version understands."""
    try:
        document = json.loads(text)
        if not isinstance(document, dict) or document.get("format") != JSON_FORMAT:
            raise ValueError("This file is not an OSS Desk conversation export.")
        if not isinstance(document.get("version"), int) or document["version"] > JSON_VERSION:
            raise ValueError(
                "This conversation was exported by a newer version of OSS Desk. "
                "Update OSS Desk to open it."
            )
        summary = ConversationSummary(**document["conversation"])
        messages = [_message_from_json(m) for m in document["messages"]]
    except (KeyError, TypeError, json.JSONDecodeError) as e:
        raise ValueError(f"This conversation export is damaged or incomplete ({e!r}).") from e
    return summary, messages


def _message_from_json(m: dict[str, Any]) -> StoredMessage:
    # "version" and "alternatives" came with answer versions; older exports lack them.
    return StoredMessage(
        **{
            **m,
            "tool_calls": tuple(ToolCall.from_json(c) for c in m["tool_calls"]),
            "attachments": tuple(StoredAttachment(**a) for a in m["attachments"]),
            "alternatives": tuple(_message_from_json(a) for a in m.get("alternatives", ())),
        }
    )


def write_atomically(path: Path | str, text: str) -> None:
    """Write UTF-8 text so that `path` holds either its old content or all of the new.

    The text goes to a temporary file in the same folder (os.replace cannot cross file systems),
    which is flushed to disk before it replaces the target. HistoryError if it cannot be written.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        # 0o666 lets the umask decide, as for any new file; tempfile would force 0o600.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with open(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            os.chmod(temporary, stat.S_IMODE(path.stat().st_mode))
        os.replace(temporary, path)
    except OSError as e:
        temporary.unlink(missing_ok=True)
        raise HistoryError("export", path, e.strerror or str(e)) from e
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    # Makes the rename itself durable; some file systems refuse to open a folder, which is fine.
    with contextlib.suppress(OSError):
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
