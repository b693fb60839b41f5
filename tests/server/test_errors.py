"""Every refused request gets an OpenAI-style error body and the right status."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.server.conftest import KEY, MODEL_ID, Served


def post(served: Served, path: str, body: Any, key: str | None = KEY) -> tuple[int, dict[str, Any]]:
    with served.http(key) as http:
        if isinstance(body, bytes):
            headers = {"content-type": "application/json"}
            response = http.post(path, content=body, headers=headers)
        else:
            response = http.post(path, json=body)
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return response.status_code, error


def test_a_missing_or_wrong_key_is_refused(served: Served) -> None:
    with pytest.raises(openai.AuthenticationError) as wrong:
        served.client(key="not-the-key").models.list()
    assert wrong.value.status_code == 401
    status, error = post(served, "/v1/responses", {"model": MODEL_ID, "input": "x"}, key=None)
    assert status == 401 and error["code"] == "invalid_api_key"
    assert error["message"].startswith("Missing API key.")


def test_an_unknown_model_is_named(served: Served) -> None:
    with pytest.raises(openai.NotFoundError) as e:
        served.client().responses.create(model="gpt-5", input="x")
    assert e.value.code == "model_not_found"
    assert "`gpt-5`" in e.value.message and MODEL_ID in e.value.message


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/responses", b"{not json", None),
        ("/v1/responses", b"[1, 2]", None),
        ("/v1/responses", {"model": MODEL_ID}, "input"),
        ("/v1/responses", {"model": MODEL_ID, "input": 5}, "input"),
        ("/v1/responses", {"model": 3, "input": "x"}, "model"),
        ("/v1/responses", {"model": MODEL_ID, "input": "x", "max_output_tokens": "9"},
         "max_output_tokens"),
        ("/v1/responses", {"model": MODEL_ID, "input": "x", "max_output_tokens": 0},
         "max_output_tokens"),
        ("/v1/responses", {"model": MODEL_ID, "input": "x", "reasoning": {"effort": "max"}},
         "reasoning.effort"),
        ("/v1/responses", {"model": MODEL_ID, "input": "x", "tools": [{"type": "web_search"}]},
         "tools[0].type"),
        ("/v1/responses", {"model": MODEL_ID, "input": "x", "previous_response_id": "resp_nope"},
         "previous_response_id"),
        ("/v1/responses", {"model": MODEL_ID, "input": [
            {"type": "function_call_output", "call_id": "call_1", "output": "x"}]},
         "input[0].call_id"),
        ("/v1/responses", {"model": MODEL_ID, "input": "x", "temperature": 9}, "temperature"),
        ("/v1/chat/completions", {"model": MODEL_ID}, "messages"),
        ("/v1/chat/completions", {"model": MODEL_ID, "messages": "hi"}, "messages"),
        ("/v1/chat/completions", {"model": MODEL_ID, "messages": [{"role": "bot", "content": "x"}]},
         "messages[0]"),
        ("/v1/chat/completions", {"model": MODEL_ID, "messages": [{"role": "user", "content": "x"}],
                                  "tools": [{"type": "function"}]}, "tools[0].function"),
    ],
)  # fmt: skip
def test_bad_input_is_a_400_naming_the_parameter(
    served: Served, path: str, body: Any, param: str | None
) -> None:
    status, error = post(served, path, body)
    assert status == 400, error
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["message"]


def test_a_conversation_too_long_for_the_context_is_a_400_with_the_numbers(
    served: Served,
) -> None:
    room = 131072  # the tiny checkpoint's YaRN-extended context, as gpt-oss's
    with pytest.raises(openai.BadRequestError) as e:
        served.client().responses.create(model=MODEL_ID, input="word " * (room + 10))
    assert e.value.code == "context_length_exceeded"
    assert f"holds {room:,}" in e.value.message
    assert "needs" in e.value.message


def test_an_input_that_does_not_end_with_a_question_is_refused(served: Served) -> None:
    status, error = post(
        served, "/v1/chat/completions",
        {"model": MODEL_ID, "messages": [{"role": "assistant", "content": "hello"}]},
    )  # fmt: skip
    assert status == 400
    assert "must end with a user message" in error["message"]


def test_an_unknown_route_gets_an_error_body(served: Served) -> None:
    status, error = post(served, "/v1/embeddings", {"model": MODEL_ID})
    assert status == 404
    assert "/v1/embeddings" in error["message"]
