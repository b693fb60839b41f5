"""Structured outputs through both APIs: the schema reaches the engine's constraint
(ChatSession.set_output_schema), and the answer the real model samples validates."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import mlx.core as mx
import numpy as np
import openai
import pytest

from engine import HarmonyTokenizer, SamplingSettings
from engine.sampling import Sampler, make_sampler
from engine.tokenizer import SpecialToken
from tests.server.conftest import MODEL_ID, Served, serve

# A random-weight model never writes harmony headers by itself: each turn opens with these
# scripted tokens, and from the final message on the model samples for real.
OPENING = (
    "<|channel|>analysis<|message|>Fill in the form.<|end|>"
    "<|start|>assistant<|channel|>final<|message|>"
)

SCHEMA = {
    "type": "object",
    "properties": {
        "answer": {"type": "integer", "minimum": 0, "maximum": 99},
        "sure": {"type": "boolean"},
        "unit": {"enum": ["m", "km"]},
    },
    "required": ["answer", "sure", "unit"],
    "additionalProperties": False,
}


class OpeningThenModel:
    """Scripted harmony opening, then the model's own samples among the ids the synthetic
    tokenizer can write (a random model nearly always picks its empty ids ~1000..199997)."""

    def __init__(self, tok: HarmonyTokenizer) -> None:
        allowed = np.zeros(tok.n_vocab, dtype=bool)
        allowed[[i for i in range(SpecialToken.STARTOFTEXT) if tok.is_text_token(i)]] = True
        allowed[SpecialToken.RETURN] = True
        self._allowed = mx.array(allowed)
        self._opening = tok.encode(OPENING, allowed_special="all")
        self._script: list[int] = []
        self._sample: Sampler = make_sampler(SamplingSettings(seed=7))

    def arm(self) -> None:
        self._script = list(self._opening)

    def __call__(self, logprobs: mx.array) -> mx.array:
        if self._script:
            return mx.array([self._script.pop(0)], dtype=mx.uint32)
        return self._sample(mx.where(self._allowed, logprobs, -mx.inf))


@pytest.fixture(scope="module")
def sampler(tok: HarmonyTokenizer) -> OpeningThenModel:
    return OpeningThenModel(tok)


@pytest.fixture(scope="module")
def sampling_server(
    model_dir: Path,
    tok: HarmonyTokenizer,
    sampler: OpeningThenModel,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Served]:
    """The model writes the answer itself: only the schema's constraint can make it valid JSON."""
    db = tmp_path_factory.mktemp("structured") / "responses.sqlite3"
    yield from serve(model_dir, tok, db, scripted=False, sampler=sampler)


def test_a_responses_json_schema_answer_validates(
    sampling_server: Served, sampler: OpeningThenModel
) -> None:
    sampler.arm()
    response = sampling_server.client().responses.create(
        model=MODEL_ID,
        input="How far?",
        max_output_tokens=200,
        text={"format": {"type": "json_schema", "name": "distance", "schema": SCHEMA}},
    )
    assert response.status == "completed", response.incomplete_details
    jsonschema.validate(json.loads(response.output_text), SCHEMA)


def test_a_chat_response_format_answer_validates(
    sampling_server: Served, sampler: OpeningThenModel
) -> None:
    sampler.arm()
    completion = sampling_server.client().chat.completions.create(
        model=MODEL_ID,
        messages=[{"role": "user", "content": "How far?"}],
        max_completion_tokens=200,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "distance", "schema": SCHEMA, "strict": True},
        },
    )
    assert completion.choices[0].finish_reason == "stop"
    content = completion.choices[0].message.content
    assert content is not None
    jsonschema.validate(json.loads(content), SCHEMA)


def test_a_schema_the_engine_cannot_compile_is_a_400(sampling_server: Served) -> None:
    with pytest.raises(openai.BadRequestError) as e:
        sampling_server.client().responses.create(
            model=MODEL_ID,
            input="x",
            text={"format": {"type": "json_schema", "name": "bad", "schema": {"type": "strng"}}},
        )
    assert e.value.code == "invalid_json_schema"
