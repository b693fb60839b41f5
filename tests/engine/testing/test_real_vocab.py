"""The real-vocabulary builder: it refuses anything but o200k_base, and its two files agree."""

from __future__ import annotations

import struct
from pathlib import Path

import openai_harmony as oh
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.testing import real_vocab as real_vocab_module
from engine.testing.real_vocab import (
    RealVocabFiles,
    RealVocabularyError,
    build_real_vocab,
    parse_quicktok_vocab,
    quicktok_vocab_path,
)
from engine.tokenizer import HarmonyTokenizer

MULTILINGUAL = [
    "The quick brown fox jumps over the lazy dog. It's 12:45; we'll see.",
    "Größenordnung, naïve café, Ærøskøbing, Łódź, İstanbul",
    "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Ἐν ἀρχῇ ἦν ὁ λόγος — Κύριε ἐλέησον",
    "天气怎么样？今天北京晴，气温二十五度。東京は雨です。",
    "한국어 문장을 토큰으로 나눕니다. 서울특별시",
    "مرحبا بالعالم، كيف حالك؟ שלום עולם",
    "हिन्दी में लिखा गया वाक्य। தமிழ் எழுத்து. ภาษาไทยง่ายนิดเดียว",
    "🙂👍🏽👨‍👩‍👧‍👦🇫🇷 emoji, ZWJ and flags ✈️",
    "def f(x):\r\n\treturn {'a': [1, 2.5e-3, None]}  # ∑ x² ≤ ∞\n\n\n   ",
    "1234567890 3.14159 1e20 -0.0 0x1F 1,000,000",
    "<|start|>assistant<|channel|>final<|message|>not special here<|end|>",
    "\u200b\u00a0\u3000\x00\x7f\ufeff mixed spaces\u2028and separators",
]


@pytest.fixture(scope="module")
def both(real_vocab: RealVocabFiles) -> tuple[HarmonyTokenizer, HarmonyTokenizer]:
    return (
        HarmonyTokenizer.from_tiktoken_file(real_vocab.tiktoken_file),
        HarmonyTokenizer.from_tokenizer_json(real_vocab.tokenizer_json),
    )


@pytest.fixture(scope="module")
def harmony(real_vocab: RealVocabFiles) -> oh.HarmonyEncoding:
    return oh.load_harmony_encoding(oh.HarmonyEncodingName.HARMONY_GPT_OSS)


def _entry_offsets(data: bytes, n: int) -> list[int]:
    """Where the first `n` entries of a quicktok file start (u16 length, bytes, u32 rank)."""
    offsets, offset = [], 4
    for _ in range(n):
        offsets.append(offset)
        (length,) = struct.unpack_from("<H", data, offset)
        offset += 6 + length
    return offsets


def _use_vocab_file(monkeypatch: pytest.MonkeyPatch, path: Path, data: bytes) -> None:
    path.write_bytes(data)
    monkeypatch.setattr(real_vocab_module, "quicktok_vocab_path", lambda: path)


def test_the_installed_quicktok_data_is_o200k_base() -> None:
    ranks = parse_quicktok_vocab(quicktok_vocab_path().read_bytes())
    assert len(ranks) == 199_998 and sorted(ranks.values()) == list(range(199_998))


def test_a_truncated_quicktok_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = quicktok_vocab_path().read_bytes()
    _use_vocab_file(monkeypatch, tmp_path / "o200k.vocab", data[:1000])
    with pytest.raises(RealVocabularyError, match="truncated"):
        build_real_vocab(tmp_path / "out")
    assert not (tmp_path / "out" / "o200k_base.tiktoken").exists()


def test_trailing_bytes_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = quicktok_vocab_path().read_bytes()
    _use_vocab_file(monkeypatch, tmp_path / "o200k.vocab", data + b"\x00")
    with pytest.raises(RealVocabularyError, match="trailing bytes"):
        build_real_vocab(tmp_path / "out")


def test_a_vocabulary_with_the_wrong_sha256_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Same tokens and count, two ranks swapped: it parses, only the hash can tell.
    data = bytearray(quicktok_vocab_path().read_bytes())
    first, second = _entry_offsets(bytes(data), 2)
    rank_at = [o + 2 + struct.unpack_from("<H", data, o)[0] for o in (first, second)]
    rank_a, rank_b = (data[r : r + 4] for r in rank_at)
    data[rank_at[0] : rank_at[0] + 4], data[rank_at[1] : rank_at[1] + 4] = rank_b, rank_a
    _use_vocab_file(monkeypatch, tmp_path / "o200k.vocab", bytes(data))
    with pytest.raises(RealVocabularyError, match="sha256"):
        build_real_vocab(tmp_path / "out")
    assert not (tmp_path / "out" / "o200k_base.tiktoken").exists()


def test_a_small_well_formed_vocabulary_is_not_taken_for_o200k(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = b"".join(struct.pack("<H", 1) + bytes([b]) + struct.pack("<I", b) for b in range(256))
    _use_vocab_file(monkeypatch, tmp_path / "o200k.vocab", struct.pack("<I", 256) + entries)
    with pytest.raises(RealVocabularyError, match="256 tokens"):
        build_real_vocab(tmp_path / "out")


def test_a_verified_folder_is_reused_without_quicktok(
    real_vocab: RealVocabFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing() -> Path:
        raise RealVocabularyError("quicktok must not be read for a verified folder")

    monkeypatch.setattr(real_vocab_module, "quicktok_vocab_path", missing)
    assert build_real_vocab(real_vocab.folder) == real_vocab


@pytest.mark.parametrize("text", MULTILINGUAL)
def test_both_files_tokenize_alike_and_as_harmony_does(
    both: tuple[HarmonyTokenizer, HarmonyTokenizer], harmony: oh.HarmonyEncoding, text: str
) -> None:
    from_tiktoken, from_json = both
    ids = from_tiktoken.encode_ordinary(text)
    assert from_json.encode_ordinary(text) == ids
    assert harmony.encode(text, disallowed_special=()) == ids
    assert from_json.decode(ids) == from_tiktoken.decode(ids) == text


@settings(max_examples=200, deadline=None)
@given(text=st.text(st.characters(codec="utf-8"), max_size=60))
def test_both_files_tokenize_any_text_alike(
    both: tuple[HarmonyTokenizer, HarmonyTokenizer], harmony: oh.HarmonyEncoding, text: str
) -> None:
    from_tiktoken, from_json = both
    ids = from_tiktoken.encode(text, allowed_special="all")
    assert from_json.encode(text, allowed_special="all") == ids
    assert harmony.encode(text, disallowed_special=()) == from_json.encode_ordinary(text)
