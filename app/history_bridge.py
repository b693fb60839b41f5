"""Stored history <-> engine messages, and the facts line of an answer. Qt-free.

The store keeps what the user typed and each attachment's text apart; the model saw them
composed into one user message, so restoring a conversation composes them the same way, and the
engine's prompt matches the one the answer was written for.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.history import NewAttachment, StoredAttachment, StoredMessage, ToolCall
from engine import (
    DECLINED_TEXT,
    ExtractedDocument,
    Message,
    ReasoningCut,
    ToolStep,
    TurnStats,
    compose_user_message,
)

# engine.documents.Kind; a kind it does not know (from a newer export) reads as text.
_KINDS: tuple[str, ...] = ("text", "markdown", "pdf", "docx", "html", "csv", "code")


def document_of(attachment: StoredAttachment | NewAttachment) -> ExtractedDocument:
    """A stored attachment as the document the model was given."""
    kind = attachment.kind if attachment.kind in _KINDS else "text"
    return ExtractedDocument(
        name=attachment.name,
        path=Path(attachment.name),
        kind=kind,  # type: ignore[arg-type]
        text=attachment.text,
        pages=attachment.pages,
        page_offsets=(),
        sha256=attachment.sha256,
        size_bytes=len(attachment.text.encode()),
    )


def new_attachment(doc: ExtractedDocument, token_count: int) -> NewAttachment:
    return NewAttachment(doc.name, doc.kind, doc.text, token_count, doc.pages, doc.sha256)


def reattach(attachment: StoredAttachment) -> NewAttachment:
    """A saved attachment, to save again with an edited message."""
    a = attachment
    return NewAttachment(a.name, a.kind, a.text, a.token_count, a.pages, a.sha256)


def user_prompt(message: StoredMessage) -> str:
    """The user message the model saw: attachments first, then the typed text."""
    return compose_user_message(message.content, [document_of(a) for a in message.attachments])


def engine_history(messages: Sequence[StoredMessage]) -> list[Message]:
    """Stored messages as the engine's conversation (reasoning as analysis, answers as final).

    Tool calls are replayed with their results so the harmony conversation stays well formed;
    an answer that never got text (stopped during the reasoning) keeps only its analysis.
    """
    history: list[Message] = []
    for message in messages:
        if message.role == "user":
            history.append(Message.user(user_prompt(message)))
        elif message.role == "assistant":
            if message.reasoning:
                history.append(Message.assistant(message.reasoning, channel="analysis"))
            for call in message.tool_calls:
                history.extend(_replayed_call(call))
            if message.content:
                history.append(Message.assistant(message.content))
    return history


def _replayed_call(call: ToolCall) -> list[Message]:
    """A call and its result as the model wrote and read them: python, a built-in tool, is
    called with code on analysis and answers there; functions take JSON on commentary."""
    if call.kind == "python":
        asked = Message.tool_call(
            call.recipient, call.arguments, channel="analysis", content_type="code"
        )
        answer_channel = "analysis"
    else:
        asked, answer_channel = Message.tool_call(call.recipient, call.arguments), "commentary"
    if call.result is None:
        return [asked]
    return [asked, Message.tool_result(call.recipient, call.result, channel=answer_channel)]


def continues(session: Sequence[Message], history: Sequence[Message]) -> bool:
    """Whether a live session already holds `history` (a turn's), so the engine may go on with
    it. The questions and the answers must both match: after the user picked another version
    of an answer, the session still holds the one it wrote. For Regenerate and Edit the history
    ends with the question, and the session may hold one answer more."""
    said, heard = _dialogue(session), _dialogue(history)
    return said[: len(heard)] == heard and all(role != "user" for role, _ in said[len(heard) :])


def _dialogue(messages: Sequence[Message]) -> list[tuple[str, str]]:
    # Reasoning and tool calls are left out: the final answers and the questions decide.
    return [
        (m.role, m.text)
        for m in messages
        if m.role == "user" or (m.role == "assistant" and m.channel == "final")
    ]


def stats_record(
    stats: TurnStats, *, thinking_s: float, cut: ReasoningCut | None, reason: str
) -> dict[str, Any]:
    """What the store keeps about a turn (keys documented in app.history.records)."""
    return {
        "ttft_s": round(stats.ttft_s, 3),
        "thinking_s": round(thinking_s, 3),
        "reasoning_tokens": stats.reasoning_tokens,
        "answer_tokens": stats.answer_tokens,
        "decode_tps": round(stats.decode_tokens_per_s, 2),
        "prefill_tps": round(stats.prefill_tokens_per_s, 2),
        "prompt_tokens": stats.prompt_tokens,
        "reused_tokens": stats.reused_tokens,
        "generated_tokens": stats.generated_tokens,
        "elapsed_s": round(stats.elapsed_s, 3),
        "budget_cut": cut is not None,
        "cut_reason": cut.reason if cut is not None else None,
        "finish_reason": reason,
    }


def step_record(step: ToolStep) -> ToolCall:
    """A python or function step as the history keeps it. The result is what the model read
    (the declined note when declined; None when the call never ran)."""
    result: str | None = step.output if step.output or step.ok else None
    if step.declined:
        result = DECLINED_TEXT
    return ToolCall(
        recipient=step.recipient,
        arguments=step.arguments,
        result=result,
        kind=step.kind,
        title=step.title,
        language=step.language,
        summary=step.summary,
        ok=step.ok,
        duration_s=None if step.duration_s is None else round(step.duration_s, 3),
        declined=step.declined,
    )


def stored_step(call: ToolCall, number: int) -> ToolStep | None:
    """The step a stored call was, for the reasoning pane of a reopened chat; None for a call
    that was not a python or function step."""
    if call.kind not in ("python", "function"):
        return None
    return ToolStep(
        "python" if call.kind == "python" else "function",
        call.summary,
        call.ok,
        call.recipient,
        number,
        title=call.title,
        arguments=call.arguments,
        language=call.language,
        output="" if call.declined or call.result is None else call.result,
        duration_s=call.duration_s,
        declined=call.declined,
    )
