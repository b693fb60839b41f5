"""Full-text search over titles, answers and reasoning (FTS5), safe and quick for any text typed.

What the user types becomes a bounded query (`fts_query`): control characters are dropped, each
word is quoted (FTS syntax is searched literally), repeated words count once, and a word matches
as a prefix only from MIN_PREFIX_CHARS characters on: one letter as a prefix merges the index
entries of every word starting with it, in one SQLite call that no progress handler can stop.

The work per search is bounded too: relevance is computed for the newest CANDIDATES matching
messages, and highlights only for what is shown (benchmarks/history_search.py measures it). A
caller that wants to cancel a search installs a progress handler on the connection; the
OperationalError it causes ("interrupted") reaches the caller.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from typing import Any

from app.history.records import MATCH_END, MATCH_START, SearchHit

SNIPPET_TOKENS = 12
MIN_PREFIX_CHARS = 2  # the schema's FTS5 tables keep prefix indexes of 2 and 3 characters
# A pasted paragraph searches for its longest words: the rarest, so the quickest to look up and
# the surest to find it (all words must match, so fewer words never miss a chat that has all).
MAX_WORDS = 8
MAX_WORD_CHARS = 64  # cut and matched as a prefix, so a longer word still finds itself
# A word found in thousands of messages is ranked among the newest of them: ranking all 40,000
# messages of 10,000 chats took 50-80 ms, and such a word says little about which chat is meant.
CANDIDATES = 2000
# An answer is what the user usually remembers; reasoning matches rank a little lower.
_CONTENT_WEIGHT, _REASONING_WEIGHT = 1.0, 0.5

# C0 and C1 controls (NUL, the MATCH_START/END marks, ...) and lone surrogates, which SQLite
# cannot take. Whitespace among them separates words; the others are dropped, so that text
# pasted with a NUL after each letter (UTF-16 read as bytes) still reads as its words.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# What FTS5's unicode61 tokenizer keeps as a word: letters and digits; "_" and punctuation split.
_TOKEN = re.compile(r"[^\W_]+")

_TITLE_IDS = """
SELECT c.id FROM conversations_fts JOIN conversations AS c ON c.id = conversations_fts.rowid
WHERE conversations_fts MATCH :query ORDER BY c.updated_at DESC LIMIT :limit
"""

# FTS5 streams rows in rowid order and stops at the LIMIT; bm25 runs for those rows only.
_CANDIDATES = """
SELECT rowid, bm25(messages_fts, :content_weight, :reasoning_weight) FROM messages_fts
WHERE messages_fts MATCH :query ORDER BY rowid DESC LIMIT :candidates
"""

# "+rowid IN" filters the matching rows rather than restarting the full-text query once per id
# (which merges a long prefix's index entries every time); BETWEEN bounds the rows read.
_TITLES_MARKED = """
SELECT f.rowid, c.title, highlight(conversations_fts, 0, :start, :end)
FROM conversations_fts AS f JOIN conversations AS c ON c.id = f.rowid
WHERE conversations_fts MATCH :query AND f.rowid BETWEEN :low AND :high AND +f.rowid IN ({ids})
"""
_PASSAGES = """
SELECT f.rowid, c.title,
       snippet(messages_fts, 0, :start, :end, '…', :tokens),
       snippet(messages_fts, 1, :start, :end, '…', :tokens)
FROM messages_fts AS f JOIN messages AS m ON m.id = f.rowid
JOIN conversations AS c ON c.id = m.conversation_id
WHERE messages_fts MATCH :query AND f.rowid BETWEEN :low AND :high AND +f.rowid IN ({ids})
"""


def search_words(text: str) -> list[str]:
    """The words of `text` that are searched: distinct, without controls, and at most MAX_WORDS
    (the longest ones, in their order)."""
    text = _CONTROL.sub(lambda m: " " if m.group().isspace() else "", text)
    spellings: set[str] = set()
    seen: set[tuple[str, ...]] = set()
    words: list[tuple[str, int]] = []
    for word in text.split():
        word = word[:MAX_WORD_CHARS]
        if (folded := word.casefold()) in spellings:
            continue  # a paste repeats itself; the tokens of a spelling need finding once
        spellings.add(folded)
        key = tuple(_TOKEN.findall(folded))
        if not key or key in seen:  # "*" or "--" alone tokenise to nothing
            continue
        seen.add(key)
        words.append((word, sum(map(len, key))))
    if len(words) > MAX_WORDS:
        longest = sorted(range(len(words)), key=lambda i: -words[i][1])[:MAX_WORDS]
        words = [words[i] for i in sorted(longest)]
    return [word for word, _ in words]


def fts_query(text: str) -> str | None:
    """The user's words as an FTS5 query: every word must appear. None when nothing is searchable.

    Each word is quoted, so FTS syntax in user input (AND, NEAR, *, ^, ", :, parentheses) is
    searched for literally instead of raising a syntax error. A word whose last token has at
    least MIN_PREFIX_CHARS characters matches as a prefix ("pyth" finds "python"); "a", or the
    "t" of "don't", must match whole.
    """
    terms = []
    for word in search_words(text):
        quoted = '"' + word.replace('"', '""') + '"'
        last = _TOKEN.findall(word)[-1]
        terms.append(quoted + "*" if len(last) >= MIN_PREFIX_CHARS else quoted)
    return " ".join(terms) or None


def search(conn: sqlite3.Connection, text: str, limit: int = 50) -> list[SearchHit]:
    """One hit per conversation: title matches first (newest first), then by passage relevance.

    A title match shows the conversation's best passage when one is among the ranked messages.
    """
    query = fts_query(text)
    if query is None or limit <= 0:
        return []
    marks = {"start": MATCH_START, "end": MATCH_END, "query": query, "tokens": SNIPPET_TOKENS}
    try:
        titled = [row[0] for row in conn.execute(_TITLE_IDS, {"query": query, "limit": limit})]
        ranked = conn.execute(
            _CANDIDATES,
            {
                "query": query,
                "candidates": CANDIDATES,
                "content_weight": _CONTENT_WEIGHT,
                "reasoning_weight": _REASONING_WEIGHT,
            },
        ).fetchall()
        ranked.sort(key=lambda row: row[1])  # bm25: lower is more relevant
        best = _best_messages(conn, [row[0] for row in ranked], limit - len(titled), set(titled))
        passages = _marked(conn, _PASSAGES, marks, list(best.values()))
        titles = _marked(conn, _TITLES_MARKED, marks, [c for c in titled if c not in best])
    except sqlite3.OperationalError as e:
        # fts_query quotes everything, so this is a defence, not a path we expect to take.
        if str(e).startswith("fts5:"):
            return []
        raise
    hits: list[SearchHit] = []
    for conversation_id in [*titled, *(c for c in best if c not in titled)]:
        message_id = best.get(conversation_id)
        if message_id is None:
            title, highlighted = titles[conversation_id]
            hits.append(SearchHit(conversation_id, title, highlighted, None))
        else:
            title, content, reasoning = passages[message_id]
            in_reasoning = MATCH_START not in content
            passage = " ".join((reasoning if in_reasoning else content).split())
            hits.append(SearchHit(conversation_id, title, passage, message_id, in_reasoning))
    return hits[:limit]


def _best_messages(
    conn: sqlite3.Connection, ranked: list[int], wanted: int, titled: set[int]
) -> dict[int, int]:
    """conversation id -> its best message id, best first, until `wanted` conversations beyond
    the `titled` ones are found; message ids are resolved a chunk at a time, in rank order."""
    best: dict[int, int] = {}
    found = 0
    chunk = max(4 * wanted, 64)  # several messages of one conversation often match
    for start in range(0, len(ranked), chunk):
        if start and found >= wanted:  # the first chunk also serves the title matches
            break
        ids = ranked[start : start + chunk]
        placeholders = ",".join("?" * len(ids))
        conversation_of = dict(
            conn.execute(
                f"SELECT id, conversation_id FROM messages WHERE id IN ({placeholders})", ids
            )
        )
        for message_id in ids:
            conversation_id = conversation_of[message_id]
            if conversation_id in best or (conversation_id not in titled and found >= wanted):
                continue
            best[conversation_id] = message_id
            found += conversation_id not in titled
    return best


def _marked(
    conn: sqlite3.Connection, sql: str, marks: dict[str, object], ids: Sequence[int]
) -> dict[int, tuple[Any, ...]]:
    """rowid -> the rest of its row, for the rows of `sql` (_TITLES_MARKED or _PASSAGES)."""
    if not ids:
        return {}
    rows = conn.execute(
        sql.format(ids=",".join(str(int(i)) for i in ids)),
        {**marks, "low": min(ids), "high": max(ids)},
    )
    return {rowid: tuple(rest) for rowid, *rest in rows}
