"""Counting a view's tokens the way gpt-oss's reference browser does, with any o200k encoder.

The reference measures a token by the length of its text decoded alone (a token holding part of
a multi-byte character decodes to U+FFFD), and it tokenizes at most (view_tokens + 1) times the
longest token's length. Both quirks move where a view ends, so both are reproduced: the app
passes the model's HarmonyTokenizer, the conformance test tiktoken's o200k_base, and the views
come out the same.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Protocol


class TokenEncoder(Protocol):
    """What is needed of a tokenizer: engine.tokenizer.HarmonyTokenizer and tiktoken both fit."""

    @property
    def n_vocab(self) -> int: ...

    def encode_ordinary(self, text: str, /) -> list[int]: ...

    def decode(self, tokens: Sequence[int], /) -> str: ...


_LONGEST: weakref.WeakKeyDictionary[TokenEncoder, int] = weakref.WeakKeyDictionary()


class ViewCounter:
    """Token offsets of a text in decoded-token characters, with a per-token length cache."""

    def __init__(self, encoder: TokenEncoder) -> None:
        self._encoder = encoder
        self._lengths: dict[int, int] = {}

    def longest_token(self) -> int:
        """Characters in the vocabulary's longest token (computed once per encoder, ~0.3 s)."""
        longest = _LONGEST.get(self._encoder)
        if longest is None:
            longest = max(self._length(i) for i in range(self._encoder.n_vocab))
            _LONGEST[self._encoder] = longest
        return longest

    def char_offset_of_token(self, text: str, index: int) -> int | None:
        """Where token `index` of `text` starts (None if `text` has no more than `index` tokens).

        Special-token text counts as ordinary text, as in the reference.
        """
        tokens = self._encoder.encode_ordinary(text)
        if len(tokens) <= index:
            return None
        return sum(self._length(t) for t in tokens[:index])

    def _length(self, token: int) -> int:
        length = self._lengths.get(token)
        if length is None:
            try:
                length = len(self._encoder.decode([token]))
            except (KeyError, ValueError):
                length = 1  # ids with no token (gaps before the specials) count as one
            self._lengths[token] = length
        return length
