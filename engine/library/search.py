"""BM25 passage ranking over the library's FTS5 index, safe for any query text.

Ranking is per passage (see engine.library.query for how a question becomes a query); the caller
gets at most one hit per page, its best passage, narrowed to the window of `PASSAGE_LINES` lines
holding the most query words and described by the line of the first of them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from engine.library.lines import merge_whitespace
from engine.library.paging import PASSAGE_LINES
from engine.library.query import (
    drop_common,
    fts_query,
    matches_in,
    query_pairs,
    query_words,
    stems,
)
from engine.library.schema import PASSAGE_ID_BITS, passage_rowid_range

SNIPPET_CHARS = 240
# Enough passages per wanted page that a page whose passages crowd the top still leaves room.
_PASSAGES_PER_HIT = 4


@dataclass(frozen=True)
class RankedPassage:
    document_id: int
    page: int
    first_line: int
    last_line: int
    match_line: int
    snippet: str
    score: float


def rank_passages(
    conn: sqlite3.Connection,
    query: str,
    limit: int,
    document_ids: Collection[int] | None = None,
) -> list[RankedPassage]:
    """The best passage of each of the `limit` best pages; [] when no word is searchable."""
    words = query_words(query)
    if not words or limit <= 0:
        return []
    word_stems = stems(conn, words)
    match = fts_query(drop_common(conn, words, word_stems), query_pairs(query))
    wanted = limit * _PASSAGES_PER_HIT
    if document_ids is None:
        rows = conn.execute(
            "SELECT rowid, page, bm25(passages) AS score FROM passages "
            "WHERE passages MATCH ? ORDER BY score LIMIT ?",
            (match, wanted),
        ).fetchall()
    else:
        # One seek per document (a rowid range) beats filtering the whole index; BM25 statistics
        # are the index's, so scores from separate queries compare.
        rows = []
        for document_id in sorted(set(document_ids)):
            first, last = passage_rowid_range(document_id)
            rows += conn.execute(
                "SELECT rowid, page, bm25(passages) AS score FROM passages "
                "WHERE passages MATCH ? AND rowid BETWEEN ? AND ? ORDER BY score LIMIT ?",
                (match, first, last, wanted),
            ).fetchall()
        rows.sort(key=lambda row: row[2])
    best: dict[tuple[int, int], tuple[int, float]] = {}
    for rowid, page, score in rows:
        key = (rowid >> PASSAGE_ID_BITS, page)
        if key not in best:
            best[key] = (rowid, score)
        if len(best) == limit:
            break
    return [_describe(conn, rowid, score, word_stems) for rowid, score in best.values()]


def _describe(
    conn: sqlite3.Connection, rowid: int, score: float, word_stems: Sequence[str]
) -> RankedPassage:
    page, first_line, text = conn.execute(
        "SELECT page, first_line, text FROM passages WHERE rowid = ?", (rowid,)
    ).fetchone()
    lines = text.split("\n")
    counts = [matches_in(line, word_stems) for line in lines]
    start, end = densest_window(counts, PASSAGE_LINES)
    at = next((i for i in range(start, end) if counts[i]), start)
    return RankedPassage(
        document_id=rowid >> PASSAGE_ID_BITS,
        page=page,
        first_line=first_line + start,
        last_line=first_line + end - 1,
        match_line=first_line + at,
        snippet=shorten(merge_whitespace(" ".join(lines[at:end])), SNIPPET_CHARS),
        score=score,
    )


def densest_window(counts: list[int], size: int) -> tuple[int, int]:
    """The [start, end) window of at most `size` items with the largest sum (earliest on ties)."""
    size = min(size, len(counts))
    best = total = sum(counts[:size])
    start = 0
    for i in range(size, len(counts)):
        total += counts[i] - counts[i - size]
        if total > best:
            best, start = total, i - size + 1
    return start, start + size


def shorten(text: str, limit: int) -> str:
    """`text` cut at a word boundary to at most `limit` characters, with "…" when cut."""
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > limit // 2 else limit - 1].rstrip() + "…"
