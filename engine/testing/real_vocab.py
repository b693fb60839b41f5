"""The real o200k_base vocabulary, rebuilt offline for conformance tests.

No package on the index ships `o200k_base.tiktoken` itself, but `quicktok-v1` (a test extra) ships
its ranks in its own binary layout: a little-endian u32 count, then per token a u16 length, the
token's bytes and a u32 rank. Rewritten as sorted `base64(token) rank` lines, that is the official
file byte for byte, which the sha256 proves; anything else is refused rather than half-trusted.

The folder it writes serves all three readers: our tokenizer (`o200k_base.tiktoken` or a full-size
`tokenizer.json`), tiktoken, and openai-harmony (`TIKTOKEN_ENCODINGS_BASE` names the folder).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from engine.tokenizer import O200K_BASE_FILENAME, O200K_BASE_SHA256, TOKENIZER_JSON_FILENAME

QUICKTOK_PACKAGE = "quicktok"
QUICKTOK_VOCAB = ("data", "o200k.vocab")
O200K_BASE_TOKENS = 199_998


class RealVocabularyError(RuntimeError):
    """The real vocabulary cannot be rebuilt here (package missing, or its data is not o200k)."""


@dataclass(frozen=True)
class RealVocabFiles:
    folder: Path  # holds both files; this is TIKTOKEN_ENCODINGS_BASE for openai-harmony
    tiktoken_file: Path
    tokenizer_json: Path


def quicktok_vocab_path() -> Path:
    """Where the installed quicktok-v1 keeps o200k's ranks, found without importing it."""
    spec = importlib.util.find_spec(QUICKTOK_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RealVocabularyError(
            "The real o200k vocabulary needs the quicktok-v1 package "
            "(pip install quicktok-v1==0.4.0)."
        )
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*QUICKTOK_VOCAB)
    if not path.is_file():
        raise RealVocabularyError(f"quicktok-v1 is installed but has no {path.name} at {path}.")
    return path


def parse_quicktok_vocab(data: bytes) -> dict[bytes, int]:
    """Ranks from quicktok's layout; a truncated or inconsistent file raises RealVocabularyError."""
    try:
        (count,) = struct.unpack_from("<I", data, 0)
        offset, ranks = 4, {}
        for _ in range(count):
            (length,) = struct.unpack_from("<H", data, offset)
            token = data[offset + 2 : offset + 2 + length]
            (rank,) = struct.unpack_from("<I", data, offset + 2 + length)
            offset += 6 + length
            ranks[token] = rank
    except struct.error as e:
        raise RealVocabularyError(f"quicktok's o200k.vocab is truncated ({e}).") from e
    if offset != len(data) or len(ranks) != count:
        raise RealVocabularyError("quicktok's o200k.vocab has trailing bytes or repeated tokens.")
    return ranks


def tiktoken_file_bytes(ranks: dict[bytes, int]) -> bytes:
    lines = (
        base64.b64encode(token) + b" " + str(rank).encode() + b"\n"
        for token, rank in sorted(ranks.items(), key=lambda item: item[1])
    )
    return b"".join(lines)


def official_o200k_base() -> tuple[bytes, dict[bytes, int]]:
    """The official file's bytes and its ranks, or RealVocabularyError if the sha256 differs."""
    ranks = parse_quicktok_vocab(quicktok_vocab_path().read_bytes())
    data = tiktoken_file_bytes(ranks)
    digest = hashlib.sha256(data).hexdigest()
    if digest != O200K_BASE_SHA256 or len(ranks) != O200K_BASE_TOKENS:
        raise RealVocabularyError(
            f"The vocabulary rebuilt from quicktok-v1 is not o200k_base (sha256 {digest}, "
            f"{len(ranks)} tokens); refusing to use it."
        )
    return data, ranks


def build_real_vocab(folder: str | os.PathLike[str]) -> RealVocabFiles:
    """Write (or reuse, once verified) `o200k_base.tiktoken` and a full-size `tokenizer.json`."""
    # Imported here: the tokenizer.json writer lives with the synthetic vocabulary it was made for.
    from engine.testing.synthetic_tokenizer import tokenizer_json_data

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tiktoken_file = folder / O200K_BASE_FILENAME
    tokenizer_json = folder / TOKENIZER_JSON_FILENAME
    stamp = folder / "tokenizer.json.sha256"
    if _sha256(tiktoken_file) != O200K_BASE_SHA256 or not _stamp_matches(stamp, tokenizer_json):
        data, ranks = official_o200k_base()
        _write_atomic(tiktoken_file, data)
        doc = json.dumps(tokenizer_json_data(ranks), ensure_ascii=False).encode("utf-8")
        _write_atomic(tokenizer_json, doc)
        _write_atomic(stamp, hashlib.sha256(doc).hexdigest().encode())
    return RealVocabFiles(folder=folder, tiktoken_file=tiktoken_file, tokenizer_json=tokenizer_json)


def _sha256(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _stamp_matches(stamp: Path, path: Path) -> bool:
    return stamp.is_file() and stamp.read_text().strip() == _sha256(path)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
