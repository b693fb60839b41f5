"""Full-text search over titles, answers and reasoning, with whatever the user types."""

from __future__ import annotations

import sqlite3

import pytest

from app.history import MATCH_END, MATCH_START, HistoryStore, SearchHit
from app.history.search import fts_query


def _chat(store: HistoryStore, question: str, answer: str = "", reasoning: str = "") -> int:
    conv = store.create_conversation()
    store.add_user_message(conv, question)
    message = store.begin_assistant_message(conv, "medium")
    store.append_to_message(message, answer, reasoning)
    store.finish_message(message, "complete")
    return conv


def _found(store: HistoryStore, text: str) -> list[int]:
    return [hit.conversation_id for hit in store.search(text)]


def test_finds_words_in_answers_with_a_marked_snippet(store: HistoryStore) -> None:
    conv = _chat(store, "Dinner ideas?", "Try a saffron risotto with peas and lemon zest.")
    _chat(store, "Something else", "Unrelated text")
    [hit] = store.search("saffron")
    assert (hit.conversation_id, hit.title, hit.in_reasoning) == (conv, "Dinner ideas?", False)
    assert f"{MATCH_START}saffron{MATCH_END}" in hit.snippet
    assert ("saffron", True) in hit.parts()


def test_finds_words_in_the_reasoning(store: HistoryStore) -> None:
    conv = _chat(store, "Plan my week", "Here is a plan.", "The user probably wants Pomodoro")
    [hit] = store.search("pomodoro")
    assert (hit.conversation_id, hit.in_reasoning) == (conv, True)
    assert f"{MATCH_START}Pomodoro{MATCH_END}" in hit.snippet


def test_finds_titles_even_without_matching_messages(store: HistoryStore) -> None:
    conv = _chat(store, "hello", "hi")
    store.rename_conversation(conv, "Kyoto itinerary")
    [hit] = store.search("kyoto")
    assert (hit.conversation_id, hit.message_id) == (conv, None)
    assert hit.snippet == f"{MATCH_START}Kyoto{MATCH_END} itinerary"
    store.rename_conversation(conv, "Osaka")
    assert _found(store, "kyoto") == []


def test_changed_text_keeps_the_words_it_shares_with_the_old(
    store: HistoryStore, raw: sqlite3.Connection
) -> None:
    conv = _chat(store, "q", "alpha beta")
    store.rename_conversation(conv, "Kyoto itinerary")
    answer = store.get_conversation(conv)[1][-1].id
    store.set_message_text(answer, "alpha gamma")
    store.rename_conversation(conv, "Kyoto trip")
    assert _found(store, "alpha") == [conv] and _found(store, "beta") == []
    assert [h.message_id for h in store.search("kyoto")] == [None]
    assert _found(store, "itinerary") == []
    raw.execute("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")


def test_every_word_must_match_and_words_match_as_prefixes(store: HistoryStore) -> None:
    both = _chat(store, "q", "Python and Rust compared")
    _chat(store, "q", "Only Python here")
    assert _found(store, "pyth rus") == [both]
    assert len(store.search("python")) == 2


def test_one_hit_per_conversation(store: HistoryStore) -> None:
    conv = _chat(store, "walrus facts", "walrus walrus")
    store.add_user_message(conv, "more walrus please")
    assert _found(store, "walrus") == [conv]


@pytest.mark.parametrize(
    "typed",
    ['"', '""', "AND", "OR NOT", "*", "-", "NEAR(", "foo:bar", "^x", "(a", 'say "hi', "a AND"],
)
def test_fts_syntax_in_user_input_never_raises(store: HistoryStore, typed: str) -> None:
    _chat(store, "q", "say hi and bye: a foo bar NEAR x")
    assert isinstance(store.search(typed), list)


def test_operators_are_searched_as_plain_words(store: HistoryStore) -> None:
    conv = _chat(store, "q", "salt AND pepper")
    _chat(store, "q", "nothing relevant")
    assert _found(store, "AND") == [conv]
    assert _found(store, '"pepper"') == [conv]


def test_blank_or_punctuation_only_queries_find_nothing(store: HistoryStore) -> None:
    _chat(store, "q", "text")
    assert store.search("") == [] and store.search("  * -- ") == []
    assert fts_query("  ") is None
    assert fts_query('a"b AND') == '"a""b"* "AND"*'


def test_unicode_text_and_accents(store: HistoryStore) -> None:
    cafe = _chat(store, "q", "Un café à Zürich")
    japanese = _chat(store, "q", "日本語 の 文章")
    emoji = _chat(store, "q", "party 🎉 time")
    assert _found(store, "cafe") == [cafe]  # accents folded both ways
    assert _found(store, "ZÜRICH") == [cafe]
    assert _found(store, "日本") == [japanese]
    assert _found(store, "🎉 party") == [emoji]


def test_a_streaming_answer_becomes_searchable_when_finished(store: HistoryStore) -> None:
    conv = store.create_conversation()
    answer = store.begin_assistant_message(conv, "low")
    store.append_to_message(answer, "quokka")
    assert _found(store, "quokka") == []
    store.finish_message(answer, "complete")
    assert _found(store, "quokka") == [conv]


def test_regenerated_and_edited_text_leaves_the_index(store: HistoryStore) -> None:
    conv = _chat(store, "armadillo question", "pangolin answer")
    store.prepare_regenerate(conv)
    assert _found(store, "pangolin") == []
    store.edit_last_user_message(conv, "okapi question")
    assert _found(store, "armadillo") == []
    assert _found(store, "okapi") == [conv]


def test_deleting_a_conversation_removes_its_index_rows(
    store: HistoryStore, raw: sqlite3.Connection
) -> None:
    conv = _chat(store, "zebra title", "zebra answer", "zebra thinking")
    keep = _chat(store, "giraffe", "giraffe")
    store.delete_conversation(conv)
    assert _found(store, "zebra") == []
    assert _found(store, "giraffe") == [keep]
    raw.execute("CREATE VIRTUAL TABLE temp.words USING fts5vocab(main, messages_fts, 'row')")
    raw.execute("CREATE VIRTUAL TABLE temp.titles USING fts5vocab(main, conversations_fts, 'row')")
    assert {w for (w,) in raw.execute("SELECT term FROM temp.words")} == {"giraffe"}
    assert {w for (w,) in raw.execute("SELECT term FROM temp.titles")} == {"giraffe"}
    raw.execute("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")
    raw.execute(
        "INSERT INTO conversations_fts (conversations_fts, rank) VALUES ('integrity-check', 1)"
    )


def test_search_hit_parts_split_the_marks() -> None:
    hit = SearchHit(1, "t", f"a {MATCH_START}b{MATCH_END} c {MATCH_START}d{MATCH_END}", 2)
    assert hit.parts() == [("a ", False), ("b", True), (" c ", False), ("d", True)]
