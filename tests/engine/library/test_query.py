"""Questions into FTS5 queries: stems from the index's own tokenizer, common words dropped."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from engine.library import Library, index_files
from engine.library import query as q
from tests.engine.library.documents import write_text


@pytest.fixture
def indexed(tmp_path: Path, docs: Path) -> Path:
    paths = [write_text(docs / f"d{i}.md", f"Common values text {i}.") for i in range(30)]
    paths.append(write_text(docs / "zebra.md", "Common values and one zebra."))
    path = tmp_path / "lib.sqlite3"
    with Library(path) as library:
        index_files(library, paths)
    return path


def test_stems_come_from_the_index_tokenizer(indexed: Path) -> None:
    with closing(sqlite3.connect(indexed)) as conn:
        assert q.stems(conn, ["values", "running", "café", "東京", "x2y"]) == [
            "valu",
            "run",
            "cafe",
            "東京",
            "x2y",
        ]


def test_common_words_are_dropped_only_from_big_indexes(
    indexed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    words = ["values", "zebra", "common"]
    with closing(sqlite3.connect(indexed)) as conn:
        stems = q.stems(conn, words)
        assert q.drop_common(conn, words, stems) == words  # 31 passages: a small index
        monkeypatch.setattr(q, "COMMON_MIN_PASSAGES", 5)
        assert q.drop_common(conn, words, stems) == ["zebra"]
        # With nothing rare left, the rarest word stays.
        assert q.drop_common(conn, ["values", "common"], q.stems(conn, ["values", "common"])) == [
            "values"
        ]


def test_pairs_keep_phrases_of_common_words() -> None:
    assert q.query_pairs("The value of the field, the value!") == [
        "the value",
        "value of",
        "the field",
        "field the",
    ]
    assert q.query_pairs("to be or not") == []


def test_fts_query_quotes_everything() -> None:
    assert q.fts_query(['a"b', "NEAR"], ["x y"]) == '"a""b" OR "NEAR" OR "x y"'


def test_matching_lines_follow_the_stems() -> None:
    stems = ["valu", "happi", "run", "cafe"]
    assert q.matches_in("The Values were valued", stems) == 2
    assert q.matches_in("so happy, happiness", stems) == 2
    assert q.matches_in("a Café, running", stems) == 2
    assert q.matches_in("nothing here", stems) == 0
    assert q.matches_in("anything", []) == 0
