"""o200k_harmony tokenizer: both loading routes, special ids, lookup order, clear errors."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import TokenizerError
from engine.testing.synthetic_tokenizer import (
    TRAINING_TEXT,
    synthetic_mergeable_ranks,
    synthetic_tokenizer,
    tokenizer_json_data,
    write_synthetic_tokenizer,
    write_tiktoken_file,
    write_tokenizer_json,
)
from engine.tokenizer import (
    FIRST_SPECIAL_ID,
    N_VOCAB,
    O200K_BASE_FILENAME,
    O200K_PATTERN,
    STOP_TOKENS_FOR_SAMPLING,
    HarmonyTokenizer,
    SpecialToken,
    byte_level_decode,
    byte_level_encode,
    tiktoken_cache_path,
)

SAMPLES = [
    TRAINING_TEXT,
    "",
    "Hello, world! 123456 numbers and   spaces\n\n\ttabs",
    "héllo wörld 日本語 🎉 Ünïcödé it's we'll they've",
    "<|start|>user<|message|>hi<|end|>",
    "def f(x):\r\n    return x ** 2  # comment",
]

EXPECTED_IDS = {
    "<|startoftext|>": 199998,
    "<|endoftext|>": 199999,
    "<|return|>": 200002,
    "<|constrain|>": 200003,
    "<|channel|>": 200005,
    "<|start|>": 200006,
    "<|end|>": 200007,
    "<|message|>": 200008,
    "<|call|>": 200012,
}


@pytest.fixture(scope="module")
def both_routes(tmp_path_factory: pytest.TempPathFactory) -> tuple[HarmonyTokenizer, ...]:
    files = write_synthetic_tokenizer(tmp_path_factory.mktemp("tok"))
    return (
        HarmonyTokenizer.from_tokenizer_json(files.tokenizer_json),
        HarmonyTokenizer.from_tiktoken_file(files.tiktoken_file),
    )


def test_synthetic_vocabulary_is_small_with_real_special_ids() -> None:
    ranks = synthetic_mergeable_ranks()
    assert 256 < len(ranks) < 1000
    assert sorted(ranks.values()) == list(range(len(ranks)))
    tok = synthetic_tokenizer()
    assert tok.n_vocab == N_VOCAB == 201088
    for word in ("assistant", "analysis", "final", "commentary", "user", "system"):
        assert len(tok.encode_ordinary(word)) <= 2


@pytest.mark.parametrize("text", SAMPLES)
def test_tokenizer_json_and_tiktoken_routes_encode_identically(
    both_routes: tuple[HarmonyTokenizer, ...], text: str
) -> None:
    from_json, from_tiktoken = both_routes
    assert from_json.encode(text, allowed_special="all") == from_tiktoken.encode(
        text, allowed_special="all"
    )
    assert from_json.decode(from_json.encode(text)) == text


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=80))
def test_routes_agree_on_any_text(both_routes: tuple[HarmonyTokenizer, ...], text: str) -> None:
    from_json, from_tiktoken = both_routes
    ids = from_json.encode(text)
    assert ids == from_tiktoken.encode(text)
    assert from_json.decode(ids) == text


def test_tokenizer_json_matches_hugging_face_tokenizers(tmp_path: Path) -> None:
    tokenizers = pytest.importorskip("tokenizers")
    path = write_tokenizer_json(tmp_path / "tokenizer.json")
    hf = tokenizers.Tokenizer.from_file(str(path))
    ours = HarmonyTokenizer.from_tokenizer_json(path)
    # Hugging Face renumbers added tokens past a vocabulary gap, so compare ordinary text only.
    for text in (t for t in SAMPLES if "<|" not in t):
        assert hf.encode(text).ids == ours.encode_ordinary(text), text


def test_named_special_tokens_have_their_harmony_ids() -> None:
    tok = synthetic_tokenizer()
    for text, token_id in EXPECTED_IDS.items():
        assert tok.encode(text, allowed_special="all") == [token_id]
        assert tok.decode([token_id]) == text
        assert tok.is_special(token_id) and not tok.is_text_token(token_id)
        assert tok.token_bytes(token_id) is None
    assert {t.text: int(t) for t in SpecialToken} == EXPECTED_IDS | {"<|endofprompt|>": 200018}
    assert sorted(STOP_TOKENS_FOR_SAMPLING) == [200002, 200012]


def test_every_id_above_the_text_vocabulary_is_a_named_or_reserved_special() -> None:
    tok = synthetic_tokenizer()
    assert all(tok.is_special(i) for i in range(FIRST_SPECIAL_ID, N_VOCAB))
    assert tok.decode([200000]) == "<|reserved_200000|>"
    assert tok.decode([200013]) == "<|reserved_200013|>"
    assert tok.decode([201087]) == "<|reserved_201087|>"
    # Every id has one name when decoding; only 200018 has a second one (see the next test).
    names_by_id: dict[int, list[str]] = {}
    for name, token_id in tok.special_tokens.items():
        names_by_id.setdefault(token_id, []).append(name)
    assert {i: n for i, n in names_by_id.items() if len(n) > 1} == {
        200018: ["<|endofprompt|>", "<|reserved_200018|>"]
    }


@pytest.mark.parametrize("route", ["tokenizer.json", "tiktoken"])
def test_id_200018_has_both_names_and_decodes_as_harmony_does(
    both_routes: tuple[HarmonyTokenizer, ...], route: str
) -> None:
    # harmony and tiktoken accept <|reserved_200018|>; gpt-oss's tokenizer.json and o200k_base
    # call the id <|endofprompt|>. Decoding follows openai-harmony (checked against it in
    # tests/engine/harmony/test_golden_real_vocab.py).
    tok = both_routes[0 if route == "tokenizer.json" else 1]
    text = "a<|reserved_200018|>b<|endofprompt|>c<|end|>"
    assert tok.encode(text, allowed_special="all") == [
        *tok.encode_ordinary("a"),
        200018,
        *tok.encode_ordinary("b"),
        200018,
        *tok.encode_ordinary("c"),
        200007,
    ]
    assert tok.encode(text) == tok.encode_ordinary(text)
    only_alias = tok.encode(text, allowed_special={"<|endofprompt|>"})
    assert only_alias.count(200018) == 1 and 200007 not in only_alias
    assert tok.encode("<|endofprompt|><|endofprompt|>", allowed_special="all") == [200018] * 2
    assert tok.decode([200018]) == "<|reserved_200018|>"
    assert tok.is_special(200018) and tok.token_bytes(200018) is None


def test_special_token_text_is_plain_text_unless_allowed() -> None:
    tok = synthetic_tokenizer()
    plain = tok.encode("<|start|>x<|end|>")
    assert not any(tok.is_special(i) for i in plain)
    assert tok.decode(plain) == "<|start|>x<|end|>"
    assert tok.encode("<|end|>", allowed_special={"<|end|>"}) == [200007]
    assert tok.encode_ordinary("<|end|>") == tok.encode("<|end|>")


def test_decoding_an_unknown_id_is_a_value_error() -> None:
    tok = synthetic_tokenizer()
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.decode([150_000])
    assert tok.token_bytes(150_000) is None and tok.token_bytes(-1) is None


def test_byte_level_alphabet_round_trips_every_byte() -> None:
    data = bytes(range(256))
    assert byte_level_decode(byte_level_encode(data)) == data
    assert byte_level_encode(b" \n!") == "\u0120\u010a!"  # GPT-2's Ġ and Ċ


def test_split_regex_from_tokenizer_json_is_preferred(tmp_path: Path) -> None:
    data = tokenizer_json_data(synthetic_mergeable_ranks())
    data["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = r"\S+|\s+"
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(data))
    assert HarmonyTokenizer.from_tokenizer_json(path).pattern == r"\S+|\s+"
    del data["pre_tokenizer"]
    path.write_text(json.dumps(data))
    assert HarmonyTokenizer.from_tokenizer_json(path).pattern == O200K_PATTERN


def test_unusable_split_regex_falls_back_to_o200k(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tokenizer_json_data(synthetic_mergeable_ranks())
    data["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(?<unclosed"
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING):
        tok = HarmonyTokenizer.from_tokenizer_json(path)
    assert tok.pattern == O200K_PATTERN
    assert "split regex" in caplog.text


# -- where the vocabulary comes from ---------------------------------------------------------


@pytest.fixture
def no_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    return cache


def _load(model_dir: Path, resources: Path | None = None) -> HarmonyTokenizer:
    return HarmonyTokenizer.from_model_dir(model_dir, resources_dir=resources, expected_sha256=None)


def test_model_dir_tokenizer_json_is_used(tmp_path: Path, no_cache: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    write_tokenizer_json(model / "tokenizer.json")
    assert _load(model, tmp_path / "resources").source == model / "tokenizer.json"


def test_lookup_order_model_dir_then_resources_then_cache(tmp_path: Path, no_cache: Path) -> None:
    model, resources = tmp_path / "model", tmp_path / "resources"
    for folder in (model, resources, no_cache):
        folder.mkdir()
    cached = tiktoken_cache_path()
    assert cached is not None and cached.parent == no_cache
    write_tiktoken_file(cached)
    assert _load(model, resources).source == cached
    write_tiktoken_file(resources / O200K_BASE_FILENAME)
    assert _load(model, resources).source == resources / O200K_BASE_FILENAME
    write_tokenizer_json(model / "tokenizer.json")
    assert _load(model, resources).source == model / "tokenizer.json"
    write_tiktoken_file(model / O200K_BASE_FILENAME)
    assert _load(model, resources).source == model / O200K_BASE_FILENAME


def test_o200k_base_file_is_hash_checked(tmp_path: Path, no_cache: Path) -> None:
    write_tiktoken_file(tmp_path / O200K_BASE_FILENAME)
    with pytest.raises(TokenizerError, match=r"damaged or is not o200k_base.*SHA-256"):
        HarmonyTokenizer.from_model_dir(tmp_path, resources_dir=None)


def test_no_tokenizer_anywhere_names_the_model_folder(tmp_path: Path, no_cache: Path) -> None:
    with pytest.raises(TokenizerError, match="No tokenizer file was found") as info:
        _load(tmp_path / "missing-model", tmp_path)
    assert str(tmp_path / "missing-model") in str(info.value)


# -- corrupt files ---------------------------------------------------------------------------


def _write_json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: "not json {", "not valid JSON"),
        (lambda d: {"model": {"type": "WordPiece"}}, "not BPE"),
        (lambda d: {"model": {"type": "BPE", "vocab": {}}}, "no model.vocab"),
        (lambda d: d | {"model": d["model"] | {"vocab": {"\u3042": 0}}}, "byte-level alphabet"),
        (lambda d: d | {"added_tokens": [{"id": 5, "content": "<|start|>"}]}, "at id 5"),
        (lambda d: d | {"added_tokens": [{"content": "x"}]}, "no content or id"),
        (lambda d: d | {"model": d["model"] | {"vocab": {"a": 0}}}, "single-byte tokens"),
    ],
)
def test_corrupt_tokenizer_json_gives_a_clear_error(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], object], message: str
) -> None:
    result = mutate(tokenizer_json_data(synthetic_mergeable_ranks()))
    path = tmp_path / "tokenizer.json"
    if isinstance(result, str):
        path.write_text(result)
    else:
        _write_json(path, result)
    with pytest.raises(TokenizerError, match=message) as info:
        HarmonyTokenizer.from_tokenizer_json(path)
    assert str(info.value).startswith(("The tokenizer file " + str(path), str(path)))


def test_corrupt_tiktoken_file_gives_a_clear_error(tmp_path: Path) -> None:
    path = write_tiktoken_file(tmp_path / "v.tiktoken")
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines[:10], "!!notbase64 12", *lines[10:]]))
    with pytest.raises(TokenizerError, match=r"v\.tiktoken is corrupt\. Line 11"):
        HarmonyTokenizer.from_tiktoken_file(path)
    path.write_text("\n".join(lines[:100]))
    with pytest.raises(TokenizerError, match="single-byte tokens"):
        HarmonyTokenizer.from_tiktoken_file(path)
    path.write_text("\n".join([*lines, lines[0].split()[0] + " 9999"]))
    with pytest.raises(TokenizerError, match="repeats a token"):
        HarmonyTokenizer.from_tiktoken_file(path)


def test_missing_tokenizer_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(TokenizerError, match="does not exist"):
        HarmonyTokenizer.from_tiktoken_file(tmp_path / "nope.tiktoken")
    with pytest.raises(TokenizerError, match="does not exist"):
        HarmonyTokenizer.from_tokenizer_json(tmp_path / "tokenizer.json")


def test_specials_also_listed_in_the_vocabulary_are_accepted(tmp_path: Path) -> None:
    data = tokenizer_json_data(synthetic_mergeable_ranks())
    data["model"]["vocab"] |= {t["content"]: t["id"] for t in data["added_tokens"]}
    tok = HarmonyTokenizer.from_tokenizer_json(_write_json(tmp_path / "tokenizer.json", data))
    assert tok.encode("<|start|>", allowed_special="all") == [SpecialToken.START]
    assert tok.encode_ordinary("hello") == synthetic_tokenizer().encode_ordinary("hello")


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: os.mkfifo(p), "is a named pipe, not an ordinary file"),
        (lambda p: p.symlink_to("/dev/zero"), "is a device, not an ordinary file"),
    ],
    ids=["fifo", "dev-zero"],
)
def test_a_tokenizer_file_that_is_no_file_is_refused_at_once(
    tmp_path: Path, make: Callable[[Path], None], expected: str
) -> None:
    # Reading either would block for ever or fill the memory.
    path = tmp_path / "tokenizer.json"
    make(path)
    with pytest.raises(TokenizerError, match=expected):
        HarmonyTokenizer.from_tokenizer_json(path)
