"""The raw event streams, read with httpx: framing, event order, indices, sequence numbers."""

from __future__ import annotations

import json
from typing import Any

from tests.server.conftest import MODEL_ID, Served

TOOL = {"type": "function", "name": "lookup", "parameters": {"type": "object"}}


def read_events(served: Served, path: str, body: dict[str, Any]) -> list[tuple[str | None, Any]]:
    """(event name, data) per server-sent event, checking the framing as it goes."""
    found: list[tuple[str | None, Any]] = []
    with served.http() as http, http.stream("POST", path, json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = response.read().decode()
    assert text.endswith("\n\n")
    for block in text.split("\n\n")[:-1]:
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        assert set(fields) <= {"event", "data"}
        data = fields["data"]
        found.append((fields.get("event"), data if data == "[DONE]" else json.loads(data)))
    return found


def test_a_responses_stream_follows_the_documented_order(served: Served) -> None:
    served.reply(analysis="Plan.", call=("lookup", '{"q": "x"}'))
    events = read_events(
        served, "/v1/responses", {"model": MODEL_ID, "input": "Hi", "stream": True, "tools": [TOOL]}
    )
    kinds = [data["type"] for _, data in events]
    assert all(name == data["type"] for name, data in events)
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    deltas_r = kinds.count("response.reasoning_text.delta")
    deltas_f = kinds.count("response.function_call_arguments.delta")
    assert deltas_r >= 1 and deltas_f >= 1
    expected = [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.reasoning_text.delta"] * deltas_r,
        "response.reasoning_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        *["response.function_call_arguments.delta"] * deltas_f,
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert kinds == expected
    by_kind = {data["type"]: data for _, data in events}
    assert by_kind["response.reasoning_text.done"]["text"] == "Plan."
    assert by_kind["response.function_call_arguments.done"]["arguments"] == '{"q": "x"}'
    assert by_kind["response.output_item.done"]["output_index"] == 1
    completed = by_kind["response.completed"]["response"]
    assert [item["type"] for item in completed["output"]] == ["reasoning", "function_call"]
    assert completed["usage"]["output_tokens_details"]["reasoning_tokens"] > 0


def test_a_message_stream_has_its_content_part_events(served: Served) -> None:
    served.reply("Fine.")
    events = read_events(
        served, "/v1/responses", {"model": MODEL_ID, "input": "Hi", "stream": True}
    )
    kinds = [data["type"] for _, data in events]
    n = kinds.count("response.output_text.delta")
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * n,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    added = events[2][1]["item"]
    assert added["type"] == "message" and added["status"] == "in_progress"
    assert events[-3][1]["part"] == {"type": "output_text", "text": "Fine.", "annotations": [],
                                     "logprobs": []}  # fmt: skip


def test_a_chat_stream_is_data_lines_ending_with_done(served: Served) -> None:
    served.reply("Yes.")
    body = {"model": MODEL_ID, "messages": [{"role": "user", "content": "Ok?"}], "stream": True}
    events = read_events(served, "/v1/chat/completions", body)
    assert all(name is None for name, _ in events)
    assert events[-1][1] == "[DONE]"
    chunks = [data for _, data in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "Yes."
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
