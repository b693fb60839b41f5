"""Structured output on the real engine: a random-weight model writes garbage, so only the schema's
constraint can make its final message valid JSON. The analysis stays the model's own.

OSS_DESK_STRUCTURED_CASES sets how many random schemas the validation test draws (CI: 12; a hand
run: OSS_DESK_STRUCTURED_CASES=100).
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from typing import Any

import jsonschema
import mlx.core as mx
import numpy as np
import pytest

from engine import (
    ChannelDelta,
    ChatSession,
    HarmonyTokenizer,
    LoadedModel,
    OutputSchemaError,
    ReasoningBudget,
    ReasoningCut,
    TurnFinished,
)
from engine.chat.structured import compile_schema
from engine.sampling import Sampler, SamplingSettings, make_sampler
from engine.tokenizer import SpecialToken

CASES = int(os.environ.get("OSS_DESK_STRUCTURED_CASES", "12"))
MAX_ANSWER_TOKENS = 256
SHORT_ANALYSIS = (
    "<|channel|>analysis<|message|>Fill in the form.<|end|>"
    "<|start|>assistant<|channel|>final<|message|>"
)
PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 8},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}


class _Sampler:
    """The model's own samples, among the ids the synthetic tokenizer can write (it leaves ids
    ~1000..199997 empty, which a random model picks nearly always; the real vocabulary has no
    such gap), after an optional script of harmony tokens."""

    def __init__(self, tok: HarmonyTokenizer, script: list[int], seed: int) -> None:
        allowed = np.zeros(SpecialToken.ENDOFPROMPT + 1, dtype=bool)
        allowed[[i for i in range(SpecialToken.STARTOFTEXT) if tok.is_text_token(i)]] = True
        allowed[SpecialToken.RETURN] = True
        self._allowed = mx.array(np.pad(allowed, (0, 201088 - allowed.size)))
        self._script = list(script)
        self._sample: Sampler = make_sampler(SamplingSettings(seed=seed))

    def __call__(self, logprobs: mx.array) -> mx.array:
        if self._script:
            return mx.array([self._script.pop(0)], dtype=mx.uint32)
        return self._sample(mx.where(self._allowed, logprobs, -mx.inf))


def _session(
    model: LoadedModel,
    tok: HarmonyTokenizer,
    *,
    seed: int,
    scripted: bool,
    answer_tokens: int = MAX_ANSWER_TOKENS,
) -> ChatSession:
    script = tok.encode(SHORT_ANALYSIS, allowed_special="all") if scripted else []
    return ChatSession(
        model,
        tok,
        effort="low",
        budget=ReasoningBudget(low=32),  # more than the scripted analysis
        max_answer_tokens=answer_tokens,
        sampler=_Sampler(tok, script, seed),
    )


def _turn(session: ChatSession, text: str = "Who is it?") -> tuple[str, TurnFinished, list[Any]]:
    events = list(session.send(text))
    finished = events[-1]
    assert isinstance(finished, TurnFinished)
    analysis = "".join(
        e.text for e in events if isinstance(e, ChannelDelta) and e.channel == "analysis"
    )
    return analysis, finished, events


# -- random schemas ---------------------------------------------------------------------------


def _scalar(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(["string", "integer", "number", "boolean", "enum", "null"])
    if kind == "string":
        longest = rng.randint(0, 6)
        return {"type": "string", "minLength": rng.randint(0, longest), "maxLength": longest}
    if kind == "integer":
        low = rng.randint(-1000, 1000)
        return {"type": "integer", "minimum": low, "maximum": low + rng.randint(0, 500)}
    if kind == "number":
        start = round(rng.uniform(-100, 100), 2)
        bound = "exclusiveMaximum" if rng.random() < 0.5 else "maximum"
        return {"type": "number", "minimum": start, bound: start + rng.choice([0.5, 3, 250])}
    if kind == "enum":
        values = [
            rng.choice(["red", "green", "blue", "x y", 7, -2.5, True, None]) for _ in range(3)
        ]
        return {"enum": _unique(values)}
    return {"type": kind}


def _unique(values: list[Any]) -> list[Any]:
    seen: dict[str, Any] = {}
    for value in values:
        seen.setdefault(json.dumps(value), value)
    return list(seen.values())


def random_schema(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    """Objects, arrays, enums, bounded numbers and strings, nested up to three levels."""
    kind = rng.choice(["object", "object", "array", "scalar"]) if depth < 2 else "scalar"
    if depth == 0:
        kind = "object" if rng.random() < 0.85 else "array"
    if kind == "scalar":
        return _scalar(rng)
    if kind == "array":
        most = rng.randint(1, 3)
        items = random_schema(rng, depth + 1)
        return {"type": "array", "items": items, "minItems": rng.randint(0, most), "maxItems": most}
    names = rng.sample(["id", "tag", "n", "ok", "kind", "at"], rng.randint(1, 3))
    properties = {name: random_schema(rng, depth + 1) for name in names}
    required = [name for name in names if rng.random() < 0.7]
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _schemas(count: int) -> Iterator[tuple[int, dict[str, Any]]]:
    rng = random.Random(13)
    for i in range(count):
        yield i, random_schema(rng)


# -- tests ------------------------------------------------------------------------------------


def test_random_schemas_give_answers_that_validate(
    model: LoadedModel, tok: HarmonyTokenizer
) -> None:
    failures = []
    for i, schema in _schemas(CASES):
        session = _session(model, tok, seed=i, scripted=True)
        session.set_output_schema(schema)
        _, finished, _ = _turn(session)
        try:
            assert finished.reason == "stop", finished
            jsonschema.validate(json.loads(finished.answer), schema)
        except (AssertionError, ValueError, jsonschema.ValidationError) as e:
            failures.append((i, schema, finished.answer, repr(e)[:200]))
    assert failures == []


def test_an_injected_final_header_is_constrained_and_ends_with_return(
    model: LoadedModel, tok: HarmonyTokenizer
) -> None:
    """The model never writes a header itself here: the budget cut writes the final header."""
    session = _session(model, tok, seed=5, scripted=False)
    session.set_output_schema(PERSON)
    _, finished, events = _turn(session)
    assert any(isinstance(e, ReasoningCut) and e.reason == "budget" for e in events)
    assert finished.reason == "stop"
    jsonschema.validate(json.loads(finished.answer), PERSON)
    assert session.cached_tokens[-1] != SpecialToken.RETURN  # the stop was sampled, not fed
    assert session.messages[-1].channel == "final"
    assert session.messages[-1].text == finished.answer


def test_the_analysis_is_the_same_with_and_without_a_schema(
    model: LoadedModel, tok: HarmonyTokenizer
) -> None:
    free = _session(model, tok, seed=7, scripted=False, answer_tokens=48)
    free_analysis, free_finished, _ = _turn(free)
    constrained = _session(model, tok, seed=7, scripted=False, answer_tokens=48)
    constrained.set_output_schema(PERSON)
    analysis, finished, _ = _turn(constrained)
    assert analysis and analysis == free_analysis  # token for token the model's own
    assert finished.stats.reasoning_tokens == free_finished.stats.reasoning_tokens
    jsonschema.validate(json.loads(finished.answer), PERSON)
    assert finished.answer != free_finished.answer


def test_removing_the_schema_frees_the_answer(model: LoadedModel, tok: HarmonyTokenizer) -> None:
    free = _session(model, tok, seed=3, scripted=True, answer_tokens=48)
    _, expected, _ = _turn(free)
    session = _session(model, tok, seed=3, scripted=True, answer_tokens=48)
    session.set_output_schema(PERSON)
    assert session.output_schema == PERSON
    session.set_output_schema(None)
    assert session.output_schema is None
    _, finished, _ = _turn(session)
    assert finished.answer == expected.answer
    with pytest.raises(ValueError):
        json.loads(finished.answer)


@pytest.mark.parametrize(
    ("schema", "named"),
    [
        ({"type": "strng"}, "strng"),
        ({"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}, "missing"),
        ({"type": "integer", "minimum": "zero"}, "minimum"),
        ({"type": "string", "pattern": "(unclosed"}, "unclosed"),
        ({"type": "number", "maximum": float("nan")}, "not plain JSON"),
        (["not", "an", "object"], "JSON object"),
    ],
)
def test_a_bad_schema_is_refused_with_the_reason(
    model: LoadedModel, tok: HarmonyTokenizer, schema: Any, named: str
) -> None:
    session = ChatSession(model, tok)
    session.set_output_schema(PERSON)
    with pytest.raises(OutputSchemaError, match="JSON schema for structured output") as raised:
        session.set_output_schema(schema)
    assert named in str(raised.value)
    assert session.output_schema == PERSON  # the schema before stays in force


def test_a_schema_compiles_once_per_tokenizer(model: LoadedModel, tok: HarmonyTokenizer) -> None:
    size = model.args.vocab_size
    first = compile_schema(tok, PERSON, size)
    assert compile_schema(tok, json.loads(json.dumps(PERSON)), size) is first
    reordered = dict(reversed(PERSON.items()))
    assert compile_schema(tok, reordered, size).vocabulary is first.vocabulary
