"""The o200k_harmony tokenizer on tiktoken, built offline from files next to the model.

gpt-oss uses o200k_base's byte-level BPE ranks and split pattern plus the harmony special tokens at
fixed ids (199998..201087). The vocabulary comes from the model folder's `tokenizer.json` (Hugging
Face byte-level BPE) or from an `o200k_base.tiktoken` file; nothing is ever downloaded.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Collection, Mapping, Sequence
from enum import IntEnum
from pathlib import Path
from typing import Any, Literal

import tiktoken

from engine.errors import ModelLoadError, TokenizerError
from engine.model_files import read_regular_file

log = logging.getLogger(__name__)

O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
O200K_BASE_FILENAME = "o200k_base.tiktoken"
O200K_BASE_URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
O200K_BASE_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
TOKENIZER_JSON_FILENAME = "tokenizer.json"
DEFAULT_RESOURCES_DIR = Path(__file__).resolve().parent.parent / "resources"

# gpt-oss's tokenizer.json is about 27 MB; o200k_base.tiktoken 3.6 MB.
MAX_TOKENIZER_BYTES = 256 << 20

FIRST_SPECIAL_ID = 199998
N_VOCAB = 201088


class SpecialToken(IntEnum):
    """Named harmony special tokens at their o200k_harmony ids."""

    STARTOFTEXT = 199998
    ENDOFTEXT = 199999
    RETURN = 200002
    CONSTRAIN = 200003
    CHANNEL = 200005
    START = 200006
    END = 200007
    MESSAGE = 200008
    CALL = 200012
    ENDOFPROMPT = 200018

    @property
    def text(self) -> str:
        # Every name is the token text in upper case: <|return|> is RETURN.
        return f"<|{self.name.lower()}|>"


# The model emits <|end|> between its analysis and final messages, so sampling stops only on these.
STOP_TOKENS_FOR_SAMPLING = frozenset({SpecialToken.RETURN, SpecialToken.CALL})


def reserved_token_text(token_id: int) -> str:
    return f"<|reserved_{token_id}|>"


# Id 200018 has two names: `<|endofprompt|>` (o200k_base, gpt-oss's tokenizer.json) and
# `<|reserved_200018|>` (openai-harmony, which decodes it so). Both encode to it; it decodes as
# harmony's name, the only one the renderer and parser ever see.
SPECIAL_TOKEN_ALIASES = {
    SpecialToken.ENDOFPROMPT.text: reserved_token_text(int(SpecialToken.ENDOFPROMPT))
}


def harmony_special_tokens() -> dict[str, int]:
    """All o200k_harmony specials, one name per id as gpt-oss's tokenizer.json has them: the named
    ones plus `<|reserved_N|>` for every other id (`SPECIAL_TOKEN_ALIASES` gives the others)."""
    named = {token.text: int(token) for token in SpecialToken}
    taken = set(named.values())
    reserved = {
        reserved_token_text(i): i for i in range(FIRST_SPECIAL_ID, N_VOCAB) if i not in taken
    }
    return named | reserved


def _byte_level_alphabet() -> dict[int, str]:
    # GPT-2's byte-level BPE stores each byte as a printable character: printable Latin-1 bytes
    # stand for themselves, the other 68 are shifted to U+0100 onwards in byte order.
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    alphabet = {b: chr(b) for b in printable}
    shifted = (b for b in range(256) if b not in alphabet)
    for n, b in enumerate(shifted):
        alphabet[b] = chr(256 + n)
    return alphabet


BYTE_TO_UNICODE = _byte_level_alphabet()
UNICODE_TO_BYTE = {c: b for b, c in BYTE_TO_UNICODE.items()}


def byte_level_encode(data: bytes) -> str:
    return "".join(BYTE_TO_UNICODE[b] for b in data)


def byte_level_decode(text: str) -> bytes:
    """Inverse of `byte_level_encode`; raises KeyError for a character outside the alphabet."""
    return bytes(UNICODE_TO_BYTE[c] for c in text)


class HarmonyTokenizer:
    """A `tiktoken.Encoding` for o200k_harmony with the queries the renderer and parser need."""

    def __init__(
        self,
        encoding: tiktoken.Encoding,
        special_tokens: Mapping[str, int],
        text_token_ids: Collection[int],
        *,
        pattern: str,
        source: Path | None = None,
    ) -> None:
        self._encoding = encoding
        self._special_tokens = dict(special_tokens)
        self._special_ids = frozenset(special_tokens.values())
        self._special_names = frozenset(special_tokens)
        # Names tiktoken does not know (it takes one name per id, the one decoding gives).
        self._aliases = {
            name: i for name, i in special_tokens.items() if name not in encoding.special_tokens_set
        }
        self._alias_pattern = re.compile("|".join(map(re.escape, self._aliases)) or "(?!)")
        self._text_ids = text_token_ids
        self.pattern = pattern
        self.source = source

    @classmethod
    def from_mergeable_ranks(
        cls,
        mergeable_ranks: Mapping[bytes, int],
        *,
        pattern: str = O200K_PATTERN,
        special_tokens: Mapping[str, int] | None = None,
        source: Path | None = None,
    ) -> HarmonyTokenizer:
        """Build from BPE ranks; `special_tokens` adds to (and must agree with) the harmony set."""
        where = str(source) if source else "the tokenizer vocabulary"
        specials = _merge_specials(special_tokens or {}, where)
        _check_ranks(mergeable_ranks, specials, where)
        decoded_as = {SPECIAL_TOKEN_ALIASES.get(name, name): i for name, i in specials.items()}
        try:
            encoding = tiktoken.Encoding(
                name="o200k_harmony",
                pat_str=pattern,
                mergeable_ranks=dict(mergeable_ranks),
                special_tokens=decoded_as,
            )
        except ValueError as e:  # tiktoken compiles the pattern here
            raise _BadPatternError(str(e)) from e
        ranks = sorted(mergeable_ranks.values())
        contiguous = ranks == list(range(len(ranks)))
        text_ids: Collection[int] = range(len(ranks)) if contiguous else frozenset(ranks)
        return cls(encoding, specials | decoded_as, text_ids, pattern=pattern, source=source)

    @classmethod
    def from_tiktoken_file(
        cls, path: str | os.PathLike[str], *, expected_sha256: str | None = None
    ) -> HarmonyTokenizer:
        """Load a `.tiktoken` file (one `base64(token) rank` per line), optionally hash-checked."""
        path = Path(path)
        data = _read_file(path)
        if expected_sha256 is not None:
            actual = hashlib.sha256(data).hexdigest()
            if actual != expected_sha256:
                raise TokenizerError(
                    f"The tokenizer file {path} is damaged or is not o200k_base. "
                    f"Its SHA-256 is {actual}, expected {expected_sha256}."
                )
        return cls.from_mergeable_ranks(_parse_tiktoken_bpe(data, path), source=path)

    @classmethod
    def from_tokenizer_json(cls, path: str | os.PathLike[str]) -> HarmonyTokenizer:
        """Convert a Hugging Face byte-level BPE `tokenizer.json` (as shipped with gpt-oss)."""
        path = Path(path)
        try:
            data = json.loads(_read_file(path))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise TokenizerError(f"The tokenizer file {path} is not valid JSON. {e}") from e
        ranks, specials = _ranks_from_tokenizer_json(data, path)
        pattern = _split_pattern(data.get("pre_tokenizer")) or O200K_PATTERN
        try:
            return cls.from_mergeable_ranks(
                ranks, pattern=pattern, special_tokens=specials, source=path
            )
        except _BadPatternError as e:
            # Hugging Face's regex dialect (Oniguruma) can differ from tiktoken's; the model's
            # split pattern is o200k's anyway.
            log.warning("%s: split regex rejected by tiktoken (%s); using o200k's", path, e)
            return cls.from_mergeable_ranks(ranks, special_tokens=specials, source=path)

    @classmethod
    def from_model_dir(
        cls,
        model_dir: str | os.PathLike[str],
        *,
        resources_dir: str | os.PathLike[str] | None = DEFAULT_RESOURCES_DIR,
        search_tiktoken_cache: bool = True,
        expected_sha256: str | None = O200K_BASE_SHA256,
    ) -> HarmonyTokenizer:
        """Load the tokenizer for the model in `model_dir`; see `find_tokenizer_file` for the order.

        `expected_sha256` checks any `o200k_base.tiktoken` that is found (None skips the check).
        """
        path = find_tokenizer_file(
            model_dir, resources_dir=resources_dir, search_tiktoken_cache=search_tiktoken_cache
        )
        if path.name == TOKENIZER_JSON_FILENAME:
            return cls.from_tokenizer_json(path)
        return cls.from_tiktoken_file(path, expected_sha256=expected_sha256)

    @property
    def encoding(self) -> tiktoken.Encoding:
        return self._encoding

    @property
    def n_vocab(self) -> int:
        return self._encoding.n_vocab

    @property
    def special_tokens(self) -> Mapping[str, int]:
        return self._special_tokens

    def encode(
        self, text: str, *, allowed_special: Literal["all"] | Collection[str] = ()
    ) -> list[int]:
        """Encode text; special-token text not in `allowed_special` is encoded as plain text."""
        every = allowed_special == "all"
        allowed = self._special_names if every else frozenset(allowed_special)
        aliases = [name for name in self._aliases if name in allowed and name in text]
        if not aliases:
            passed: Literal["all"] | frozenset[str] = "all" if every else allowed
            return self._encoding.encode(text, allowed_special=passed, disallowed_special=())
        # tiktoken splits the text at special tokens too, so splitting at the aliases first and
        # encoding the pieces gives the ids tiktoken would give if it knew them.
        ids: list[int] = []
        start = 0
        for match in self._alias_pattern.finditer(text):
            if match.group() in aliases:
                ids += self.encode(text[start : match.start()], allowed_special=allowed)
                ids.append(self._aliases[match.group()])
                start = match.end()
        return ids + self.encode(text[start:], allowed_special=allowed)

    def encode_ordinary(self, text: str) -> list[int]:
        return self._encoding.encode_ordinary(text)

    def decode_bytes(self, token_ids: Sequence[int]) -> bytes:
        try:
            return self._encoding.decode_bytes(list(token_ids))
        except (KeyError, OverflowError) as e:
            raise ValueError(f"token id not in the vocabulary: {e}") from e

    def decode(self, token_ids: Sequence[int]) -> str:
        return self.decode_bytes(token_ids).decode("utf-8", errors="replace")

    def is_special(self, token_id: int) -> bool:
        return token_id in self._special_ids

    def is_text_token(self, token_id: int) -> bool:
        return token_id in self._text_ids

    def token_bytes(self, token_id: int) -> bytes | None:
        """The bytes of one ordinary token, or None for special and unknown ids."""
        if token_id not in self._text_ids:
            return None
        return self._encoding.decode_single_token_bytes(token_id)

    def __repr__(self) -> str:
        return f"HarmonyTokenizer(n_vocab={self.n_vocab}, source={self.source})"


def find_tokenizer_file(
    model_dir: str | os.PathLike[str],
    *,
    resources_dir: str | os.PathLike[str] | None = DEFAULT_RESOURCES_DIR,
    search_tiktoken_cache: bool = True,
) -> Path:
    """First of: model_dir/o200k_base.tiktoken, model_dir/tokenizer.json,
    resources_dir/o200k_base.tiktoken, then tiktoken's download cache.

    The model's own files win so a small test model is never paired with the full vocabulary.
    """
    model_dir = Path(model_dir)
    candidates = [model_dir / O200K_BASE_FILENAME, model_dir / TOKENIZER_JSON_FILENAME]
    if resources_dir is not None:
        candidates.append(Path(resources_dir) / O200K_BASE_FILENAME)
    cached = tiktoken_cache_path() if search_tiktoken_cache else None
    if cached is not None:
        candidates.append(cached)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise TokenizerError(
        f"No tokenizer file was found for the model in {model_dir}. "
        f"Expected {TOKENIZER_JSON_FILENAME} or {O200K_BASE_FILENAME}; looked in: {looked}."
    )


def tiktoken_cache_path() -> Path | None:
    """Where tiktoken would have cached o200k_base after a download (None if caching is off)."""
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        cache_dir = os.environ["TIKTOKEN_CACHE_DIR"]
    elif "DATA_GYM_CACHE_DIR" in os.environ:
        cache_dir = os.environ["DATA_GYM_CACHE_DIR"]
    else:
        cache_dir = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    if not cache_dir:
        return None
    return Path(cache_dir) / hashlib.sha1(O200K_BASE_URL.encode()).hexdigest()


class _BadPatternError(ValueError):
    """tiktoken could not compile the split pattern."""


def _read_file(path: Path) -> bytes:
    try:
        return read_regular_file(path, MAX_TOKENIZER_BYTES)
    except FileNotFoundError as e:
        raise TokenizerError(f"The tokenizer file {path} does not exist.") from e
    except ModelLoadError as e:  # a pipe, a device or a huge file posing as the tokenizer
        raise TokenizerError(str(e)) from e


def _parse_tiktoken_bpe(data: bytes, path: Path) -> dict[bytes, int]:
    ranks: dict[bytes, int] = {}
    for lineno, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            token_b64, rank_text = line.split()
            token = base64.b64decode(token_b64, validate=True)
            rank = int(rank_text)
        except ValueError as e:  # also binascii.Error
            raise TokenizerError(
                f"The tokenizer file {path} is corrupt. Line {lineno} is not 'base64 rank'."
            ) from e
        if token in ranks:
            raise TokenizerError(
                f"The tokenizer file {path} is corrupt. Line {lineno} repeats a token."
            )
        ranks[token] = rank
    return ranks


def _ranks_from_tokenizer_json(data: Any, path: Path) -> tuple[dict[bytes, int], dict[str, int]]:
    def corrupt(problem: str) -> TokenizerError:
        return TokenizerError(
            f"The tokenizer file {path} is not a byte-level BPE tokenizer.json. {problem}"
        )

    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict) or model.get("type") != "BPE":
        raise corrupt("Its model.type is not BPE.")
    vocab = model.get("vocab")
    if not isinstance(vocab, dict) or not vocab:
        raise corrupt("It has no model.vocab.")
    added = data.get("added_tokens") or []
    if not isinstance(added, list):
        raise corrupt("Its added_tokens is not a list.")
    specials: dict[str, int] = {}
    for entry in added:
        content = entry.get("content") if isinstance(entry, dict) else None
        token_id = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(content, str) or not isinstance(token_id, int):
            raise corrupt(f"An added token has no content or id: {entry!r}.")
        # A non-special added word that is also in the vocabulary stays ordinary text.
        if entry.get("special", True) or vocab.get(content) != token_id:
            specials[content] = token_id
    ranks: dict[bytes, int] = {}
    for token_text, rank in vocab.items():
        if specials.get(token_text) == rank:
            continue  # some converters list the specials in the vocabulary too
        try:
            token = byte_level_decode(token_text)
        except KeyError:
            raise corrupt(f"Token {token_text!r} is not in the byte-level alphabet.") from None
        if not isinstance(rank, int) or isinstance(rank, bool):
            raise corrupt(f"Token {token_text!r} has a non-integer id.")
        ranks[token] = rank
    return ranks, specials


def _split_pattern(pre_tokenizer: Any) -> str | None:
    """The regex of the first `Split` pre-tokenizer, looking inside `Sequence`s."""
    if not isinstance(pre_tokenizer, dict):
        return None
    if pre_tokenizer.get("type") == "Sequence":
        for inner in pre_tokenizer.get("pretokenizers") or []:
            found = _split_pattern(inner)
            if found:
                return found
        return None
    pattern = pre_tokenizer.get("pattern")
    if pre_tokenizer.get("type") == "Split" and isinstance(pattern, dict):
        regex = pattern.get("Regex")
        if isinstance(regex, str) and regex:
            return regex
        literal = pattern.get("String")
        if isinstance(literal, str) and literal:
            return re.escape(literal)
    return None


def _merge_specials(extra: Mapping[str, int], where: str) -> dict[str, int]:
    specials = harmony_special_tokens()
    by_id = {i: text for text, i in specials.items()}
    for text, token_id in extra.items():
        if specials.get(text, token_id) != token_id:
            raise TokenizerError(
                f"{where} is not a harmony tokenizer. It puts {text} at id {token_id}, "
                f"not {specials[text]}."
            )
        named_here = by_id.get(token_id)
        if named_here is not None and named_here != text:
            if named_here.startswith("<|reserved_"):
                del specials[named_here]
            else:
                raise TokenizerError(
                    f"{where} is not a harmony tokenizer. Id {token_id} is {text}, "
                    f"not {named_here}."
                )
        specials[text] = token_id
        by_id[token_id] = text
    return specials


def _check_ranks(ranks: Mapping[bytes, int], specials: Mapping[str, int], where: str) -> None:
    # tiktoken panics (an uncatchable BaseException) on these, so check first.
    missing = [b for b in range(256) if bytes([b]) not in ranks]
    if missing:
        raise TokenizerError(
            f"{where} is incomplete. It lacks {len(missing)} of the 256 single-byte tokens."
        )
    ids = list(ranks.values())
    if len(set(ids)) != len(ids):
        raise TokenizerError(f"{where} is corrupt. Two tokens share one id.")
    special_ids = set(specials.values())
    clash = next((i for i in ids if i < 0 or i in special_ids), None)
    if clash is not None:
        raise TokenizerError(f"{where} is corrupt. Token id {clash} is invalid or a special id.")
