"""Full-text search over titles, answers and reasoning (FTS5), safe for any text a user types."""

from __future__ import annotations

import sqlite3

from app.history.records import MATCH_END, MATCH_START, SearchHit

SNIPPET_TOKENS = 12
# An answer is what the user usually remembers; reasoning matches rank a little lower.
_CONTENT_WEIGHT, _REASONING_WEIGHT = 1.0, 0.5

_MESSAGE_HITS = """
SELECT m.conversation_id, m.id,
       snippet(messages_fts, 0, :start, :end, '…', :tokens),
       snippet(messages_fts, 1, :start, :end, '…', :tokens)
FROM messages_fts JOIN messages AS m ON m.id = messages_fts.rowid
WHERE messages_fts MATCH :query
ORDER BY bm25(messages_fts, :content_weight, :reasoning_weight)
LIMIT :limit
"""

_TITLE_HITS = """
SELECT c.id, c.title, highlight(conversations_fts, 0, :start, :end)
FROM conversations_fts JOIN conversations AS c ON c.id = conversations_fts.rowid
WHERE conversations_fts MATCH :query
ORDER BY c.updated_at DESC
LIMIT :limit
"""


def fts_query(text: str) -> str | None:
    """The user's words as an FTS5 query: every word must appear, each as a prefix.

    Each word is quoted, so FTS syntax in user input (AND, NEAR, *, ^, ", :, parentheses) is
    searched for literally instead of raising a syntax error. None when nothing is searchable.
    """
    terms = [
        '"' + word.replace('"', '""') + '"*'
        for word in text.split()
        if any(ch.isalnum() for ch in word)  # "*" or "--" alone tokenise to nothing
    ]
    return " ".join(terms) or None


def search(conn: sqlite3.Connection, text: str, limit: int = 50) -> list[SearchHit]:
    """One hit per conversation: title matches first (newest first), then by passage relevance."""
    query = fts_query(text)
    if query is None:
        return []
    marks = {"start": MATCH_START, "end": MATCH_END, "query": query, "limit": limit}
    try:
        titles = conn.execute(_TITLE_HITS, marks).fetchall()
        messages = conn.execute(
            _MESSAGE_HITS,
            {
                **marks,
                "tokens": SNIPPET_TOKENS,
                "content_weight": _CONTENT_WEIGHT,
                "reasoning_weight": _REASONING_WEIGHT,
                "limit": limit * 20,  # several messages of one conversation may match
            },
        ).fetchall()
    except sqlite3.OperationalError as e:
        # fts_query quotes everything, so this is a defence, not a path we expect to take.
        if str(e).startswith("fts5:"):
            return []
        raise
    passages: dict[int, tuple[int, str, bool]] = {}
    for conversation_id, message_id, content, reasoning in messages:
        if conversation_id not in passages:
            in_reasoning = MATCH_START not in content
            passage = reasoning if in_reasoning else content
            passages[conversation_id] = (message_id, " ".join(passage.split()), in_reasoning)
    hits: list[SearchHit] = []
    for conversation_id, title, highlighted in titles:
        message_id, snippet, in_reasoning = passages.pop(
            conversation_id, (None, highlighted, False)
        )
        hits.append(SearchHit(conversation_id, title, snippet, message_id, in_reasoning))
    if passages:
        ids = list(passages)
        placeholders = ",".join("?" * len(ids))
        title_of = dict(
            conn.execute(f"SELECT id, title FROM conversations WHERE id IN ({placeholders})", ids)
        )
        for conversation_id, (message_id, snippet, in_reasoning) in passages.items():
            hits.append(
                SearchHit(
                    conversation_id, title_of[conversation_id], snippet, message_id, in_reasoning
                )
            )
    return hits[:limit]
