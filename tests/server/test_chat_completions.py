"""Chat Completions through the official openai SDK, on the real engine over loopback."""

from __future__ import annotations

import json
from typing import Any

from tests.server.conftest import MODEL_ID, Served

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def test_a_completion_returns_reasoning_content_and_usage(served: Served) -> None:
    ids = served.reply("Paris.", analysis="Capital of France.")
    completion = served.client().chat.completions.create(
        model=MODEL_ID,
        messages=[
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "Capital of France?"},
        ],
        reasoning_effort="high",
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.content == "Paris."
    assert choice.message.model_extra is not None
    assert choice.message.model_extra["reasoning"] == "Capital of France."
    assert completion.usage is not None
    assert completion.usage.completion_tokens == len(ids)
    details = completion.usage.completion_tokens_details
    assert (
        details is not None
        and details.reasoning_tokens == served.finished[-1].stats.reasoning_tokens
    )
    prompt = served.prompt_text()
    assert "Reasoning: high" in prompt and "Be terse." in prompt


def test_a_stream_sends_reasoning_then_content_then_usage(served: Served) -> None:
    served.reply("Two words.", analysis="Think.")
    stream = served.client().chat.completions.create(
        model=MODEL_ID,
        messages=[{"role": "user", "content": "Say two words"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    reasoning = "".join(
        (c.choices[0].delta.model_extra or {}).get("reasoning") or "" for c in chunks if c.choices
    )
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert reasoning == "Think."
    assert content == "Two words."
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None


def test_a_tool_call_round_trip_takes_reasoning_back_and_reuses_the_prefix(served: Served) -> None:
    client = served.client()
    served.reply(analysis="Look it up.", call=("get_weather", '{"city": "Oslo"}'))
    messages: list[Any] = [{"role": "user", "content": "Weather in Oslo?"}]
    first = client.chat.completions.create(model=MODEL_ID, messages=messages, tools=[WEATHER])  # type: ignore[list-item]
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "Oslo"}  # type: ignore[union-attr]
    first_stats = served.finished[-1].stats

    # llama.cpp-style clients send the reasoning back as reasoning_content.
    messages.append(
        {
            "role": "assistant",
            "content": None,
            "reasoning_content": "Look it up.",
            "tool_calls": [call.model_dump()],
        }
    )
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "-3 °C, snow"})
    served.reply("Snowy, -3 °C.")
    second = client.chat.completions.create(model=MODEL_ID, messages=messages, tools=[WEATHER])  # type: ignore[list-item]
    assert second.choices[0].message.content == "Snowy, -3 °C."
    stats = served.finished[-1].stats
    # The analysis before the call is rendered again, so the whole first turn is a prefix.
    assert stats.reused_tokens >= first_stats.prompt_tokens + first_stats.generated_tokens - 1
    assert "-3 °C, snow" in served.prompt_text()


def test_a_multi_turn_chat_prefills_only_the_new_turn(served: Served) -> None:
    client = served.client()
    history: list[Any] = [{"role": "user", "content": "First question"}]
    served.reply("First answer.", analysis="Hmm.")
    first = client.chat.completions.create(model=MODEL_ID, messages=history)
    first_stats = served.finished[-1].stats
    history += [
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "Second question"},
    ]
    served.reply("Second answer.")
    client.chat.completions.create(model=MODEL_ID, messages=history)
    stats = served.finished[-1].stats
    # Earlier analysis is dropped from the new prompt, so the cache rewinds to where it began.
    assert stats.reused_tokens >= first_stats.prompt_tokens - 1
    assert stats.prefill_tokens < stats.prompt_tokens / 3
    assert stats.prefill_tokens == stats.prompt_tokens - stats.reused_tokens


def test_models_lists_the_served_model(served: Served) -> None:
    assert [m.id for m in served.client().models.list()] == [MODEL_ID]
