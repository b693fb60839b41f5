"""The Responses API through the official openai SDK, on the real engine over loopback."""

from __future__ import annotations

import json

from openai.types.responses import ResponseReasoningItem

from tests.server.conftest import MODEL_ID, Served

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def test_a_response_carries_reasoning_answer_and_usage(served: Served) -> None:
    ids = served.reply("Blue, from Rayleigh scattering.", analysis="User asks about the sky.")
    response = served.client().responses.create(
        model=MODEL_ID,
        instructions="Answer in one sentence.",
        input="Why is the sky blue?",
        reasoning={"effort": "low"},
    )
    assert response.status == "completed"
    assert [item.type for item in response.output] == ["reasoning", "message"]
    reasoning = response.output[0]
    assert isinstance(reasoning, ResponseReasoningItem) and reasoning.content is not None
    assert reasoning.content[0].text == "User asks about the sky."
    assert response.output_text == "Blue, from Rayleigh scattering."
    usage = response.usage
    assert usage is not None
    stats = served.finished[-1].stats
    assert usage.output_tokens == len(ids) == stats.generated_tokens
    assert usage.output_tokens_details.reasoning_tokens == stats.reasoning_tokens > 0
    assert usage.input_tokens == stats.prompt_tokens
    prompt = served.prompt_text()
    assert "Reasoning: low" in prompt
    assert "Answer in one sentence." in prompt
    assert "Why is the sky blue?" in prompt


def test_a_streamed_response_arrives_as_sdk_events(served: Served) -> None:
    served.reply("Hello there.", analysis="Greet back.")
    with served.client().responses.stream(model=MODEL_ID, input="Hi") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert "response.reasoning_text.delta" in kinds
    assert kinds.index("response.reasoning_text.done") < kinds.index("response.output_text.delta")
    assert final.output_text == "Hello there."


def test_a_function_call_round_trip_with_previous_response_id(served: Served) -> None:
    client = served.client()
    served.reply(analysis="Need the weather.", call=("get_weather", '{"city": "Paris"}'))
    first = client.responses.create(
        model=MODEL_ID,
        input="Weather in Paris?",
        tools=[WEATHER],  # type: ignore[list-item]
    )
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1
    call = calls[0]
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris"}
    assert "get_weather" in served.prompt_text()  # the tool is declared to the model
    after_first = served.finished[-1].stats

    served.reply("It is 21 °C and sunny in Paris.")
    second = client.responses.create(
        model=MODEL_ID,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": '{"c": 21}'}],
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert second.output_text == "It is 21 °C and sunny in Paris."
    assert second.previous_response_id == first.id
    prompt = served.prompt_text()
    result = "<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>"
    assert result + '{"c": 21}' in prompt
    # The second request reused the whole first prompt and reply from the KV cache.
    stats = served.finished[-1].stats
    assert stats.reused_tokens >= after_first.prompt_tokens + after_first.generated_tokens - 1
    assert stats.prefill_tokens == stats.prompt_tokens - stats.reused_tokens
    assert stats.prefill_tokens < stats.prompt_tokens - after_first.prompt_tokens
    assert second.usage is not None
    assert second.usage.input_tokens_details.cached_tokens == stats.reused_tokens


def test_store_false_leaves_nothing_to_continue_from(served: Served) -> None:
    served.reply("One.")
    response = served.client().responses.create(model=MODEL_ID, input="Count", store=False)
    assert served.store.items(response.id) is None


def test_max_output_tokens_counts_reasoning_and_answer_together(served: Served) -> None:
    served.reply("A long answer that will be cut short.", analysis="Some thinking first.")
    response = served.client().responses.create(model=MODEL_ID, input="Go", max_output_tokens=6)
    served.sampler.discard_remaining()  # type: ignore[union-attr]
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert [item.type for item in response.output] == ["reasoning"]
    assert response.usage is not None
    assert response.usage.output_tokens == 6
