"""A question as an FTS5 query: its words, its word pairs, and which of them are too common.

A query's words are OR-ed, so a passage needs only some of them and one with more (and rarer)
words ranks higher: questions are phrased in words a page only partly shares. Adjacent word
pairs are added as phrases, so a passage with the words side by side, as asked, scores on top:
on the benchmark this lifts recall@5 of "rare phrase" questions from 0.90 to 0.99.

Very common words are dropped: English function words always, and on a big index any word in
more than COMMON_FRACTION of the passages. Scoring every passage that holds a common word is
most of a query's time, and BM25 gives such a word little weight anyway; the pairs keep phrases
made of common words ("value of the") findable.
"""

from __future__ import annotations

import itertools
import re
import sqlite3
import unicodedata
from collections.abc import Sequence

from engine.library.schema import TOKENIZER

MAX_QUERY_WORDS = 32
MAX_QUERY_PAIRS = 16
COMMON_FRACTION = 0.01
COMMON_MIN_PASSAGES = 1000
# unicode61 splits on everything but letters and digits (so also on "_"); the query must agree.
_WORD = re.compile(r"[^\W_]+")
_STOPWORDS = frozenset(
    """a about above after again all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers him his how i if in into is it its itself just me more
    most my no nor not now of off on once only or other our ours out over own same she should so
    some such than that the their theirs them then there these they this those through to too
    under until up very was we were what when where which while who whom why will with would you
    your yours""".split()  # noqa: SIM905 (a word list reads better as prose)
)


def words_of(text: str) -> list[str]:
    """Lower-cased words as the index's tokenizer sees them (diacritics kept)."""
    return [w.lower() for w in _WORD.findall(text)]


def query_words(text: str) -> list[str]:
    """The words of `text` worth searching for, in order, without repeats."""
    words = list(dict.fromkeys(words_of(text)))
    content = [w for w in words if w not in _STOPWORDS]
    # A query made only of common words ("to be or not to be") is still a query.
    return (content or words)[:MAX_QUERY_WORDS]


def query_pairs(text: str) -> list[str]:
    """Adjacent word pairs of `text` with at least one uncommon word, without repeats."""
    pairs = (
        f"{a} {b}"
        for a, b in itertools.pairwise(words_of(text))
        if a not in _STOPWORDS or b not in _STOPWORDS
    )
    return list(dict.fromkeys(pairs))[:MAX_QUERY_PAIRS]


def fts_query(words: Sequence[str], pairs: Sequence[str] = ()) -> str:
    # Quoted, so FTS5 syntax in the text (NEAR, AND, *, :, ^) is searched for literally.
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in (*words, *pairs))


def stems(conn: sqlite3.Connection, words: Sequence[str]) -> list[str]:
    """Each word as the index stores it ("values" -> "valu"), by the index's own tokenizer.

    A scratch FTS5 table with the same tokenizer (in this connection's memory) does the work, so
    stems and the index always agree.
    """
    conn.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_words USING fts5 "
        f"(word, tokenize = '{TOKENIZER}')"
    )
    conn.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_terms "
        "USING fts5vocab (temp, query_words, 'instance')"
    )
    conn.execute("DELETE FROM temp.query_words")
    conn.executemany("INSERT INTO temp.query_words (rowid, word) VALUES (?, ?)", enumerate(words))
    found = dict(conn.execute("SELECT doc, term FROM temp.query_terms WHERE offset = 0"))
    return [found.get(i, word) for i, word in enumerate(words)]


def drop_common(conn: sqlite3.Connection, words: list[str], word_stems: list[str]) -> list[str]:
    """`words` without those held by more than COMMON_FRACTION of a big index's passages."""
    (total,) = conn.execute("SELECT total(passages) FROM documents").fetchone()
    most = max(COMMON_MIN_PASSAGES, COMMON_FRACTION * total)
    if total <= most:
        return words
    frequency = {}
    for word, stem in zip(words, word_stems, strict=True):
        row = conn.execute("SELECT doc FROM passages_vocab WHERE term = ?", (stem,)).fetchone()
        frequency[word] = row[0] if row else 0
    kept = [w for w in words if frequency[w] <= most]
    return kept or [min(words, key=lambda w: frequency[w])]


def matches_in(line: str, word_stems: Sequence[str]) -> int:
    """About how many words of `line` the index would match to the stems (for choosing lines).

    The porter stem is nearly always a prefix of its words, give or take the last letter
    ("happi" for "happy"); a word matches when it starts with the stem minus that letter.
    """
    prefixes = tuple(s[:-1] if len(s) > 3 else s for s in word_stems)
    if not prefixes:
        return 0
    return sum(1 for w in words_of(_fold(line)) if w.startswith(prefixes))


def _fold(text: str) -> str:
    # remove_diacritics: "café" is indexed as "cafe".
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))
