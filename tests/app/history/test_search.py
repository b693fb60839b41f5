"""Full-text search over titles, answers and reasoning, with whatever the user types."""

from __future__ import annotations

import sqlite3

import pytest

from app.history import MATCH_END, MATCH_START, HistoryStore, SearchHit
from app.history import search as search_module
from app.history.search import MAX_WORD_CHARS, MAX_WORDS, fts_query, search_words


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
    assert fts_query('ab"cd AND') == '"ab""cd"* "AND"*'


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


# -- what the user types, made safe and bounded ------------------------------------------------


def test_one_letter_matches_a_whole_word_and_two_letters_a_prefix(store: HistoryStore) -> None:
    word = _chat(store, "q", "Plan a trip")
    _chat(store, "q", "Apples and avocados")
    assert fts_query("a") == '"a"' and fts_query("av") == '"av"*'
    assert _found(store, "a") == [word]  # not every word that starts with "a"
    assert len(store.search("av")) == 1


def test_a_short_last_token_is_matched_whole(store: HistoryStore) -> None:
    conv = _chat(store, "q", "We don't parse XML, e.g. with regexes")
    assert fts_query("don't") == '"don\'t"'  # "t" as a prefix would merge every word in t...
    assert fts_query("e.g.") == '"e.g."'
    assert _found(store, "don't") == [conv]
    assert _found(store, "e.g.") == [conv]


def test_repeated_words_are_searched_once(store: HistoryStore) -> None:
    conv = _chat(store, "q", "memory bandwidth")
    assert fts_query("memory " * 80) == '"memory"*'
    assert fts_query("Memory memory MEMORY, memory") == '"Memory"*'
    assert _found(store, "memory " * 80) == [conv]


def test_control_characters_are_dropped_and_nul_padded_text_still_reads(
    store: HistoryStore,
) -> None:
    conv = _chat(store, "q", "salt and pepper")
    utf16_as_bytes = "salt pepper".encode("utf-16-le").decode("latin-1")
    assert "\x00" in utf16_as_bytes
    assert search_words(utf16_as_bytes) == ["salt", "pepper"]
    assert search_words("salt\tpep\x00per\r\nx\x7f\x9fy") == ["salt", "pepper", "xy"]
    for typed in (utf16_as_bytes, "\x00salt", "sa\x00lt\x00", "pepper\x02\x03", "\ud800salt"):
        assert _found(store, typed) == [conv], repr(typed)
    assert store.search("\x00\x00\x01\x1f") == []


def test_long_pastes_search_for_their_longest_words() -> None:
    words = [f"w{i}" for i in range(3 * MAX_WORDS)]  # w0 ... w9 are the shortest
    assert search_words(" ".join(words)) == words[10 : 10 + MAX_WORDS]  # longest, first ones
    long_word = "x" * 10_000
    assert search_words(long_word) == ["x" * MAX_WORD_CHARS]
    query = fts_query(("lorem ipsum " * 20_000) + " ".join(words))
    assert query is not None and len(query) < MAX_WORDS * (MAX_WORD_CHARS + 4)


def test_a_pasted_paragraph_finds_its_chat(store: HistoryStore) -> None:
    paragraph = (
        "Quantisation stores the experts in four bits, and the attention stays in bfloat16, "
        "which is why the model fits in sixteen gigabytes of unified memory on a laptop."
    )
    conv = _chat(store, "q", paragraph)
    _chat(store, "q", "the model is in the memory of a laptop, which fits in the bits")
    assert len(paragraph.split()) > MAX_WORDS
    assert _found(store, paragraph) == [conv]


def test_a_word_cut_short_still_finds_itself(store: HistoryStore) -> None:
    long_word = "pneumonoultramicroscopicsilicovolcanoconiosis" * 2  # 90 letters
    conv = _chat(store, "q", f"the word {long_word} is long")
    assert len(long_word) > MAX_WORD_CHARS
    assert _found(store, long_word) == [conv]


def test_common_words_are_ranked_among_the_newest_matches(
    store: HistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    chats = [_chat(store, f"chat {i}", "walrus " * (1 + i % 2)) for i in range(6)]
    assert sorted(_found(store, "walrus")) == sorted(chats)
    monkeypatch.setattr(search_module, "CANDIDATES", 3)
    newest = chats[-3:]
    found = _found(store, "walrus")
    assert sorted(found) == sorted(newest)
    assert found[0] == chats[5]  # "walrus walrus" ranks above a single "walrus"


def test_title_matches_come_first_with_their_best_passage(store: HistoryStore) -> None:
    by_text = _chat(store, "q", "the heron waded")
    by_title = _chat(store, "Heron photos", "a grey heron, a heron again")
    only_title = _chat(store, "q", "no such bird here")
    store.rename_conversation(only_title, "heron nests")
    hits = store.search("heron")
    assert [h.conversation_id for h in hits] == [only_title, by_title, by_text]
    assert hits[0].message_id is None and hits[0].snippet.startswith(f"{MATCH_START}heron")
    assert hits[1].message_id is not None and ("Heron", True) in hits[1].parts()
    assert [h.title for h in hits] == ["heron nests", "Heron photos", "q"]


def test_the_limit_counts_conversations(store: HistoryStore) -> None:
    for i in range(12):
        _chat(store, f"otter {i}" if i % 3 == 0 else f"chat {i}", "otter " * (i + 1))
    hits = store.search("otter", limit=5)
    assert len(hits) == 5 and len({h.conversation_id for h in hits}) == 5
    assert store.search("otter", limit=0) == []
