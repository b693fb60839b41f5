"""Structured outputs: the final channel's message constrained to a JSON schema, with llguidance.

A schema compiles once per tokenizer (cached by its canonical text); each turn gets a
`FinalChannelConstraint`, which leaves the analysis free and, from the first token of a final
message, masks every token the grammar cannot take next. `<|return|>` is the only end token the
mask ever allows, and only once the JSON is complete, so a turn that stops ("stop") has written
a JSON value that validates. One that runs out of answer tokens ("length") has not.

Why llguidance, measured on this machine (Linux x86_64, one core of two) with the real
o200k_harmony vocabulary (201,088 ids) on an object schema with a bounded string, an integer
range, an enum array and a number range, random allowed tokens until the end:
- llguidance 1.9.1: takes the tiktoken `Encoding` as it is (`lltokenizer_from_encoding`, 1.0 s
  once per tokenizer; the ids between the synthetic test vocabulary and the specials work too);
  compile 0.9 ms; mask median 0.05 ms, mean 0.2 ms, worst 2 ms per token; enforces `minimum`
  and `maximum`; names the problem in a bad schema ("Invalid type: strng", "Pointer '/nope'
  does not exist"); no Python dependencies; released often (Microsoft's guidance-ai, used by
  vLLM, SGLang and llama.cpp).
- xgrammar 0.2.9: the fastest mask (median 0.004 ms, mean 0.014 ms), but needs the vocabulary
  as a list of token bytes built by hand, and installs torch, transformers and triton, which a
  Mac app bundle should not carry; compile 31 ms.
- outlines-core 0.2.14: needs a bytes -> ids map built by hand, 2.0 s to build the index for one
  schema, returns allowed ids as a list, and ignored `minimum`/`maximum` (it produced a
  400-digit "age" for `maximum: 120`).
At 0.05-0.2 ms per token the mask is under 1% of a 20b decode step (~25 ms on a Mac), so
llguidance's mask speed is not the bottleneck; its tiktoken support and lack of dependencies
decide it.
"""

from __future__ import annotations

import json
import logging
import threading
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mlx.core as mx
import numpy as np
from llguidance import LLMatcher, LLTokenizer
from llguidance.tiktoken import lltokenizer_from_encoding

from engine.errors import OutputSchemaError
from engine.sampling import Sampler
from engine.tokenizer import HarmonyTokenizer, SpecialToken

if TYPE_CHECKING:
    from llguidance._lib import JsonCompileOptions

log = logging.getLogger(__name__)

# No free whitespace: a model that pads JSON with spaces (a random one does) could fill its
# whole answer budget with them. Separators as json.dumps writes them.
JSON_OPTIONS: JsonCompileOptions = {
    "whitespace_flexible": False,
    "item_separator": ", ",
    "key_separator": ": ",
}
END_TOKEN = int(SpecialToken.RETURN)
# Indexed by an unpacked mask bit: an add of this row costs half of an mx.where on the CPU.
_BIAS = np.array([-np.inf, 0.0], dtype=np.float32)
MAX_CACHED_SCHEMAS = 64

_lock = threading.Lock()


class _TokenizerGrammars:
    """One tokenizer's llguidance vocabularies (by logits size) and its compiled schemas."""

    def __init__(self) -> None:
        self.vocabularies: dict[int, LLTokenizer] = {}
        self.schemas: OrderedDict[tuple[int, str], CompiledSchema] = OrderedDict()


# Building a vocabulary takes about a second at the real size, so every session shares it.
_by_tokenizer: weakref.WeakKeyDictionary[HarmonyTokenizer, _TokenizerGrammars] = (
    weakref.WeakKeyDictionary()
)


@dataclass(frozen=True)
class CompiledSchema:
    """A schema checked and compiled for one tokenizer and vocabulary size."""

    schema: Mapping[str, Any]
    text: str  # as JSON, the cache key
    grammar: str
    vocabulary: LLTokenizer
    n_vocab: int


def compile_schema(
    tokenizer: HarmonyTokenizer, schema: Mapping[str, Any], n_vocab: int
) -> CompiledSchema:
    """Checks `schema` and compiles it for `tokenizer` (logits rows of `n_vocab` ids); raises
    OutputSchemaError naming the problem. Cached by the schema's JSON text."""
    if not isinstance(schema, Mapping):
        raise _schema_error(f"it must be a JSON object, not {type(schema).__name__}")
    try:  # key order kept: the JSON's properties come in the schema's order
        text = json.dumps(schema, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise _schema_error(f"it is not plain JSON ({e})") from e
    key = (n_vocab, text)
    with _lock:
        grammars = _by_tokenizer.setdefault(tokenizer, _TokenizerGrammars())
        cached = grammars.schemas.get(key)
        if cached is not None:
            grammars.schemas.move_to_end(key)
            return cached
        if n_vocab not in grammars.vocabularies:
            grammars.vocabularies[n_vocab] = lltokenizer_from_encoding(
                tokenizer.encoding, n_vocab=n_vocab, eos_token=END_TOKEN
            )
        vocabulary = grammars.vocabularies[n_vocab]
    try:
        grammar = LLMatcher.grammar_from_json_schema(text, overrides=JSON_OPTIONS)
    except ValueError as e:
        raise _schema_error(str(e)) from e
    failed, problems = LLMatcher.validate_grammar_with_warnings(grammar, vocabulary)
    if failed:
        raise _schema_error("; ".join(problems))
    for warning in problems:
        log.warning("output schema: %s", warning)
    compiled = CompiledSchema(json.loads(text), text, grammar, vocabulary, n_vocab)
    with _lock:
        grammars.schemas[key] = compiled
        while len(grammars.schemas) > MAX_CACHED_SCHEMAS:
            grammars.schemas.popitem(last=False)
    return compiled


def _schema_error(detail: str) -> OutputSchemaError:
    return OutputSchemaError(
        f"Fix the JSON schema for structured output, or remove it: {detail.strip()}"
    )


class FinalChannelConstraint:
    """One turn's grammar state. The run calls `begin()` when a final message opens (recipient
    none) and `consume(token)` for each token sampled while it is active; `wrap(sampler)` gives
    the sampler that masks while it is active. Engine thread only."""

    def __init__(self, compiled: CompiledSchema) -> None:
        self._matcher = LLMatcher(compiled.vocabulary, compiled.grammar)
        self._n_vocab = compiled.n_vocab
        self._bits = np.zeros((compiled.n_vocab + 31) // 32, dtype=np.int32)
        self._active = False
        self.tokens: list[int] = []  # what the grammar consumed, for tests and the benchmark

    @property
    def active(self) -> bool:
        return self._active

    @property
    def complete(self) -> bool:
        """The JSON written so far is a whole value the schema accepts."""
        return self._matcher.is_accepting()

    def begin(self) -> None:
        self._active = True

    def consume(self, token: int) -> None:
        if not self._active or token == END_TOKEN:
            return
        self.tokens.append(token)
        if not self._matcher.consume_token(token):
            log.warning("structured output: token %d refused: %s", token, self._matcher.get_error())

    def allowed(self) -> np.ndarray:
        """The next token's mask over the logits row (bool, n_vocab). If the grammar failed
        (it never should), only the end token, so the turn ends rather than write garbage."""
        return self._unpacked().view(np.bool_)

    def bias(self) -> np.ndarray:
        """`allowed()` as a row to add to log-probabilities: 0 where allowed, -inf elsewhere."""
        return _BIAS[self._unpacked()]

    def wrap(self, sampler: Sampler) -> Sampler:
        """`sampler` on the masked row while active. Not renormalized: mlx-lm's samplers
        (categorical, top-p over the total mass, top-k, greedy) do not need it."""

        def constrained(logprobs: mx.array) -> mx.array:
            if not self._active:
                return sampler(logprobs)
            # The forward pass runs while the grammar computes the mask on this thread.
            mx.async_eval(logprobs)
            return sampler(logprobs + mx.array(self.bias()))

        return constrained

    def _unpacked(self) -> np.ndarray:
        self._matcher.unsafe_compute_mask_ptr(self._bits.ctypes.data, self._bits.nbytes)
        bits = np.unpackbits(self._bits.view(np.uint8), count=self._n_vocab, bitorder="little")
        if self._matcher.is_error() or not bits.any():
            log.warning("structured output: no token allowed: %s", self._matcher.get_error())
            bits[:] = 0
            bits[END_TOKEN] = 1
        return bits
