"""How stored chats read their documents again: a user message whose documents were searched
("browse") is given back to the engine as the same short note the model read then, not as the
documents' whole text, which would not fit the context. Qt-free.

The mode is not stored with the message, so it is decided again from the stored token counts
with the same rule as when sending, on the documents alone (the conversation around them is
not known here). A document searched only because the conversation was already long is read
whole on a rebuild; see the report of issue 11.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.history import StoredMessage
from app.history_bridge import document_of, engine_history, user_prompt
from engine import (
    AttachedDocument,
    DocumentDecision,
    Message,
    compose_turn_message,
    decide_document_mode,
)


def answer_room(context_tokens: int) -> int:
    """Tokens kept free for reasoning and the answer when deciding whether documents fit."""
    return min(8192, context_tokens // 4)


def context_budget(context_tokens: int) -> int:
    return context_tokens - answer_room(context_tokens)


def stored_decision(message: StoredMessage, context_tokens: int) -> DocumentDecision | None:
    """How this stored user message's documents are read (None: it has none)."""
    if not message.attachments:
        return None
    attached = [AttachedDocument(document_of(a), a.token_count) for a in message.attachments]
    return decide_document_mode(
        attached, prompt_tokens=0, context_budget=context_budget(context_tokens)
    )


def turn_prompt(message: StoredMessage, context_tokens: int) -> str:
    """The user message as the model read it."""
    decision = stored_decision(message, context_tokens)
    if decision is not None and decision.mode == "browse":
        return compose_turn_message(message.content, decision)
    return user_prompt(message)


def turn_history(stored: Sequence[StoredMessage], context_tokens: int) -> list[Message]:
    """engine_history, with each searched message as the note the model read."""
    users = iter([m for m in stored if m.role == "user"])
    history = []
    for message in engine_history(stored):
        if message.role == "user":
            message = Message.user(turn_prompt(next(users), context_tokens))
        history.append(message)
    return history
