"""How a chat's messages read their documents, the first time and when the chat is rebuilt from
the store. Qt-free.

A user message with documents decides from its own: read whole, or searched ("browse") when they
do not fit. A message without documents goes on searching the documents an earlier message of the
chat searched (a follow-up about them needs the browser as much as the first question did), and
one that asks to "search my library" searches the whole library (attached documents and the
watched folders). A searched message is given to the engine as the short note the model read,
never as the documents' whole text, which would not fit the context.

The mode is not stored with the message, so it is decided again from the stored token counts
with the same rules as when sending, on the documents alone (the conversation around them is
not known here). A document searched only because the conversation was already long is read
whole on a rebuild; see the report of issue 11.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from app.history import HistoryError, HistoryStore, StoredMessage
from app.history_bridge import document_of, engine_history, user_prompt
from engine import (
    AttachedDocument,
    DocumentDecision,
    Message,
    compose_turn_message,
    decide_document_mode,
)

# "search my library", "look through my notes", "what does my document library say"...
LIBRARY_REQUEST = re.compile(
    r"\b(?:search|look (?:through|in)|check)\s+my\s+(?:documents|files|notes|folders)\b"
    r"|\bmy\s+(?:document\s+)?library\b",
    re.IGNORECASE,
)


def answer_room(context_tokens: int) -> int:
    """Tokens kept free for reasoning and the answer when deciding whether documents fit."""
    return min(8192, context_tokens // 4)


def context_budget(context_tokens: int) -> int:
    return context_tokens - answer_room(context_tokens)


def asks_for_library(text: str) -> bool:
    """Whether the user asks the model to search their document library."""
    return LIBRARY_REQUEST.search(text) is not None


def searched_before(
    earlier: Sequence[StoredMessage], context_tokens: int
) -> list[AttachedDocument]:
    """The documents that earlier user messages searched, once each (by content), oldest first."""
    found: dict[str, AttachedDocument] = {}
    for message in earlier:
        decision = _own_decision(message, context_tokens) if message.role == "user" else None
        if decision is not None and decision.mode == "browse":
            for attached in decision.documents:
                found.setdefault(attached.document.sha256, attached)
    return list(found.values())


def message_decision(
    message: StoredMessage,
    earlier: Sequence[StoredMessage],
    context_tokens: int,
    *,
    library: bool = True,
) -> DocumentDecision | None:
    """How this stored user message reads documents (None: it reads none)."""
    own = _own_decision(message, context_tokens)
    return own if own is not None else _follow_up(message.content, earlier, context_tokens, library)


def stored_decision(
    message: StoredMessage, context_tokens: int, store: HistoryStore | None = None
) -> DocumentDecision | None:
    """message_decision, with the messages before it read from `store` (without a store, only
    its own documents count)."""
    return message_decision(message, _earlier(store, message), context_tokens)


def follow_up_decision(
    store: HistoryStore,
    conversation_id: int | None,
    context_tokens: int,
    text: str,
    *,
    library: bool = True,
) -> DocumentDecision | None:
    """For a new message without documents: go on searching, or search the library (None:
    neither). `library` False: this window has no library to search."""
    earlier: Sequence[StoredMessage] = ()
    if conversation_id is not None:
        try:
            earlier = store.get_conversation(conversation_id)[1]
        except (HistoryError, KeyError):
            earlier = ()  # the send reports the store's problem itself
    return _follow_up(text, earlier, context_tokens, library)


def turn_prompt(
    message: StoredMessage, context_tokens: int, earlier: Sequence[StoredMessage] = ()
) -> str:
    """The user message as the model read it."""
    decision = message_decision(message, earlier, context_tokens)
    if decision is not None and decision.mode == "browse":
        return compose_turn_message(message.content, decision)
    return user_prompt(message)


def turn_history(stored: Sequence[StoredMessage], context_tokens: int) -> list[Message]:
    """engine_history, with each searched message as the note the model read."""
    users = iter([(i, m) for i, m in enumerate(stored) if m.role == "user"])
    history = []
    for message in engine_history(stored):
        if message.role == "user":
            i, user = next(users)
            message = Message.user(turn_prompt(user, context_tokens, stored[:i]))
        history.append(message)
    return history


def _own_decision(message: StoredMessage, context_tokens: int) -> DocumentDecision | None:
    if not message.attachments:
        return None
    attached = [AttachedDocument(document_of(a), a.token_count) for a in message.attachments]
    return decide_document_mode(
        attached, prompt_tokens=0, context_budget=context_budget(context_tokens)
    )


def _follow_up(
    text: str, earlier: Sequence[StoredMessage], context_tokens: int, library: bool
) -> DocumentDecision | None:
    if not library:
        return None
    if asks_for_library(text):
        return decide_document_mode((), prompt_tokens=0, context_budget=1, search_requested=True)
    documents = searched_before(earlier, context_tokens)
    if not documents:
        return None
    names = ", ".join(d.document.name for d in documents)
    note = f"The model can search {names} again, as earlier in this chat."
    return DocumentDecision("browse", note, None, tuple(documents))


def _earlier(store: HistoryStore | None, message: StoredMessage) -> Sequence[StoredMessage]:
    if store is None:
        return ()
    try:
        stored = store.get_conversation(message.conversation_id)[1]
    except (HistoryError, KeyError):
        return ()
    return [m for m in stored if m.position < message.position]
