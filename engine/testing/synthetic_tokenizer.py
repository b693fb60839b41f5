"""A small o200k_harmony look-alike for tests: a few hundred BPE tokens plus the real special ids.

The vocabulary is learned by a tiny byte-level BPE trainer over the text below, so English and the
harmony header words encode into short sequences. Text token ids are 0..n-1 (n < 1000); the
specials keep their real ids 199998..201087, exactly as in gpt-oss's tokenizer.json, so the
vocabulary has a gap. The same ranks can be written as a Hugging Face `tokenizer.json` and as a
`.tiktoken` file, to test both loading routes.
"""

from __future__ import annotations

import base64
import functools
import itertools
import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import regex

from engine.tokenizer import (
    O200K_PATTERN,
    HarmonyTokenizer,
    SpecialToken,
    byte_level_encode,
    harmony_special_tokens,
)

DEFAULT_MERGES = 420

# gpt-oss's tokenizer.json lists the specials up to <|endofprompt|>; the loader fills the rest.
_LAST_LISTED_SPECIAL = SpecialToken.ENDOFPROMPT

TRAINING_TEXT = """\
You are ChatGPT, a large language model trained by OpenAI.
Knowledge cutoff: 2024-06
Current date: 2025-06-28

Reasoning: low
Reasoning: medium
Reasoning: high

# Valid channels: analysis, commentary, final. Channel must be included for every message.
Calls to these tools must go to the commentary channel: 'functions'.

# Instructions

Answer the user's questions clearly and briefly.

# Tools

## functions

namespace functions {

// Gets the current weather in the provided location.
type get_current_weather = (_: {
// The city and state, e.g. San Francisco, CA
location: string,
format?: "celsius" | "fahrenheit", // default: celsius
}) => any;

} // namespace functions


The user asks what the weather is like in the city today. We need to call the weather tool
with the location, then read the result and answer in one short sentence. The answer should
mention the temperature and whether it is sunny, cloudy or raining.

{"location": "San Francisco", "format": "celsius"}
{"temperature": 20, "description": "sunny"}
{"query": "current weather", "topn": 10, "source": "news"}

What is 2 + 2? The answer is 4. What about 9 / 2? That is 4.5, or four and a half.
What is the capital of the largest country in the world? Russia is the largest country, and
its capital is Moscow. Let me think about this step by step before I give the final answer.

A tokenizer splits text into pieces, and the model reads those pieces one at a time. Every
message has a header with a role and a channel, then the content of the message, and then an
end marker. The reasoning goes to the analysis channel, and the answer to the final channel.
When the model wants to use a tool, it writes the arguments as JSON and waits for the result.

def add(a: int, b: int) -> int:
    return a + b

print(add(2, 2))
for i in range(10):
    print(i * i)
"""

# Repeated so each header word becomes a token or two, as in the real vocabulary.
HARMONY_WORDS = """\
system
developer
user
assistant
tool
functions
browser
python
analysis
commentary
final
to=functions.get_current_weather
to=browser.search
to=python
json
code
Reasoning
"""


def train_bpe(text: str, n_merges: int, pattern: str = O200K_PATTERN) -> dict[bytes, int]:
    """Byte-level BPE: all 256 bytes (rank = byte value), then up to `n_merges` learned merges."""
    ranks = {bytes([b]): b for b in range(256)}
    words: Counter[tuple[bytes, ...]] = Counter(
        tuple(bytes([b]) for b in piece.encode()) for piece in regex.findall(pattern, text)
    )
    for _ in range(n_merges):
        pairs: Counter[tuple[bytes, bytes]] = Counter()
        for word, count in words.items():
            for pair in itertools.pairwise(word):
                pairs[pair] += count
        if not pairs:
            break
        # Ties go to the pair of older tokens, so training is deterministic.
        (left, right), count = max(
            pairs.items(), key=lambda kv: (kv[1], -ranks[kv[0][0]], -ranks[kv[0][1]])
        )
        if count < 2:
            break
        merged = left + right
        ranks.setdefault(merged, len(ranks))
        words = Counter({_merge(word, left, right): n for word, n in words.items()})
    return ranks


def _merge(word: tuple[bytes, ...], left: bytes, right: bytes) -> tuple[bytes, ...]:
    out: list[bytes] = []
    i = 0
    while i < len(word):
        if i + 1 < len(word) and word[i] == left and word[i + 1] == right:
            out.append(left + right)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


@functools.cache
def _cached_ranks(n_merges: int) -> tuple[tuple[bytes, int], ...]:
    return tuple(train_bpe(TRAINING_TEXT + HARMONY_WORDS * 8, n_merges).items())


def synthetic_mergeable_ranks(n_merges: int = DEFAULT_MERGES) -> dict[bytes, int]:
    return dict(_cached_ranks(n_merges))


@functools.cache
def synthetic_tokenizer(n_merges: int = DEFAULT_MERGES) -> HarmonyTokenizer:
    """The synthetic vocabulary as a tokenizer, built in memory (no files)."""
    return HarmonyTokenizer.from_mergeable_ranks(synthetic_mergeable_ranks(n_merges))


def _merges(ranks: dict[bytes, int]) -> list[list[str]]:
    # As Hugging Face's tiktoken converter does: every split of a token into two older tokens is a
    # merge, ordered by the rank of the result, which makes BPE-by-merges equal BPE-by-ranks.
    found: list[tuple[int, int, int, bytes, bytes]] = []
    for token, rank in ranks.items():
        for cut in range(1, len(token)):
            left, right = token[:cut], token[cut:]
            left_rank, right_rank = ranks.get(left), ranks.get(right)
            if left_rank is None or right_rank is None:
                continue
            if left_rank < rank and right_rank < rank:
                found.append((rank, left_rank, right_rank, left, right))
    found.sort()
    return [[byte_level_encode(left), byte_level_encode(right)] for *_, left, right in found]


def tokenizer_json_data(ranks: dict[bytes, int]) -> dict[str, Any]:
    """A `tokenizer.json` document with the structure of gpt-oss's (byte-level BPE, o200k split)."""
    vocab = {byte_level_encode(token): rank for token, rank in sorted(ranks.items(), key=_rank)}
    listed = sorted(
        (token_id, text)
        for text, token_id in harmony_special_tokens().items()
        if token_id <= _LAST_LISTED_SPECIAL
    )
    added_tokens = [
        {
            "id": token_id,
            "content": text,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for token_id, text in listed
    ]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added_tokens,
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {
                    "type": "Split",
                    "pattern": {"Regex": O200K_PATTERN},
                    "behavior": "Isolated",
                    "invert": False,
                },
                {
                    "type": "ByteLevel",
                    "add_prefix_space": False,
                    "trim_offsets": True,
                    "use_regex": False,
                },
            ],
        },
        "post_processor": None,
        "decoder": {
            "type": "ByteLevel",
            "add_prefix_space": True,
            "trim_offsets": True,
            "use_regex": True,
        },
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": True,
            "vocab": vocab,
            "merges": _merges(ranks),
        },
    }


def _rank(item: tuple[bytes, int]) -> int:
    return item[1]


def write_tokenizer_json(
    path: str | os.PathLike[str], ranks: dict[bytes, int] | None = None
) -> Path:
    path = Path(path)
    data = tokenizer_json_data(ranks if ranks is not None else synthetic_mergeable_ranks())
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def write_tiktoken_file(
    path: str | os.PathLike[str], ranks: dict[bytes, int] | None = None
) -> Path:
    path = Path(path)
    ranks = ranks if ranks is not None else synthetic_mergeable_ranks()
    lines = (
        f"{base64.b64encode(token).decode('ascii')} {rank}\n"
        for token, rank in sorted(ranks.items(), key=_rank)
    )
    path.write_text("".join(lines), encoding="ascii")
    return path


@dataclass(frozen=True)
class SyntheticTokenizerFiles:
    tokenizer_json: Path
    tiktoken_file: Path


def write_synthetic_tokenizer(
    directory: str | os.PathLike[str],
    *,
    tiktoken_name: str = "synthetic.tiktoken",
    n_merges: int = DEFAULT_MERGES,
) -> SyntheticTokenizerFiles:
    """Write `tokenizer.json` and the equivalent `.tiktoken` file into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ranks = synthetic_mergeable_ranks(n_merges)
    return SyntheticTokenizerFiles(
        tokenizer_json=write_tokenizer_json(directory / "tokenizer.json", ranks),
        tiktoken_file=write_tiktoken_file(directory / tiktoken_name, ranks),
    )
