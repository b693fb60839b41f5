"""POST /v1/chat/completions: messages as a Job, the answer as a chat.completion or as
chat.completion.chunk events. Reasoning goes out as `reasoning` and comes back in as
`reasoning` or `reasoning_content` (vLLM/Ollama clients send one, llama.cpp's the other)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from engine import Channel, Message, TurnFinished, TurnStats
from server import convert
from server.errors import ApiError, bad_request
from server.output import Delta, Item, Opened, OutputAssembler, new_id
from server.responses_api import SSE_HEADERS, output_schema
from server.runner import Job, ModelRunner, Ticket
from server.turns import ClientGone, events, sse, start, until_disconnect

FINISH = {"stop": "stop", "tool_call": "tool_calls", "length": "length", "cancel": "stop"}


def parse(body: dict[str, Any], model_id: str) -> tuple[Job, bool, bool]:
    """The job, whether to stream, and whether a stream ends with a usage chunk."""
    convert.check_model(body, model_id)
    raw = convert.required(body, "messages", list)
    messages, instructions = _messages(raw)
    if (convert.field(body, "n", int) or 1) != 1:
        raise bad_request("Invalid 'n': this server returns one choice.", param="n")
    tools = convert.function_tools(convert.field(body, "tools", list) or [], nested=True)
    if body.get("tool_choice") == "none":
        tools = ()
    reasoning = convert.field(body, "reasoning", dict) or {}
    effort_value = body.get("reasoning_effort", reasoning.get("effort"))
    limit = convert.positive_int(body, "max_completion_tokens") or convert.positive_int(
        body, "max_tokens"
    )
    job = Job(
        history=tuple(messages),
        instructions=convert.joined_instructions(*instructions),
        tools=tools,
        effort=convert.effort(effort_value, "reasoning_effort"),
        max_output_tokens=limit,
        sampling=convert.sampling(body),
        output_schema=output_schema(body.get("response_format"), "response_format"),
    )
    stream = bool(convert.field(body, "stream", bool))
    options = convert.field(body, "stream_options", dict) or {}
    return job, stream, bool(options.get("include_usage"))


def _messages(raw: list[Any]) -> tuple[list[Message], list[str]]:
    messages: list[Message] = []
    instructions: list[str] = []
    names: dict[str, str] = {}
    for i, message in enumerate(raw):
        param = f"messages[{i}]"
        if not isinstance(message, dict):
            raise bad_request(f"Invalid '{param}': expected an object.", param=param)
        role = message.get("role")
        content = message.get("content")
        text = "" if content is None else convert.text_of(content, f"{param}.content")
        if role in ("system", "developer"):
            instructions.append(text)
        elif role == "user":
            messages.append(Message.user(text))
        elif role == "assistant":
            messages += _assistant(message, text, param, names)
        elif role == "tool":
            call_id = convert.required(message, "tool_call_id", str, param=f"{param}.tool_call_id")
            name = names.get(call_id) or convert.field(message, "name", str)
            if name is None:
                raise bad_request(
                    f"No tool call with id {call_id!r} precedes '{param}'. Send the assistant "
                    "message with its tool_calls first.",
                    param=f"{param}.tool_call_id",
                )
            messages.append(Message.tool_result(convert.FUNCTIONS + name, text))
        else:
            raise bad_request(f"Invalid role for '{param}': {json.dumps(role)}.", param=param)
    return messages, instructions


def _assistant(
    message: dict[str, Any], text: str, param: str, names: dict[str, str]
) -> list[Message]:
    found = []
    thought = message.get("reasoning", message.get("reasoning_content"))
    if isinstance(thought, str) and thought:
        found.append(Message.assistant(thought, channel=Channel.ANALYSIS))
    if text:
        found.append(Message.assistant(text))
    for j, call in enumerate(convert.field(message, "tool_calls", list) or []):
        where = f"{param}.tool_calls[{j}]"
        if not isinstance(call, dict):
            raise bad_request(f"Invalid '{where}': expected an object.", param=where)
        function = convert.required(call, "function", dict, param=f"{where}.function")
        name = convert.required(function, "name", str, param=f"{where}.function.name")
        arguments = convert.field(function, "arguments", str, param=f"{where}.function.arguments")
        call_id = convert.field(call, "id", str, param=f"{where}.id")
        if call_id is not None:
            names[call_id] = name
        found.append(Message.tool_call(convert.FUNCTIONS + name, arguments or ""))
    return found


async def create(request: Request, body: dict[str, Any], runner: ModelRunner) -> Response:
    job, stream, include_usage = parse(body, runner.model_id)
    ticket = await start(request, runner, job)
    chat_id = "chatcmpl-" + new_id("")[1:]  # OpenAI's chat ids take a hyphen
    head = {"id": chat_id, "created": int(time.time()), "model": runner.model_id}
    if stream:
        chunks = _stream(head, ticket, include_usage)
        return StreamingResponse(chunks, media_type="text/event-stream", headers=SSE_HEADERS)
    try:
        assembler = await until_disconnect(request, ticket, _collect(ticket))
    except ClientGone:
        return Response(status_code=499)
    finished = assembler.finished
    assert finished is not None
    reasoning = "".join(i.text for i in assembler.items if i.kind == "reasoning")
    text = "".join(i.text for i in assembler.items if i.kind == "message")
    calls = [_call_json(item) for item in assembler.calls]
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if reasoning:
        message["reasoning"] = reasoning
    if calls:
        message["tool_calls"] = calls
    choice = {"index": 0, "message": message, "finish_reason": FINISH[finished.reason]}
    return JSONResponse(
        {**head, "object": "chat.completion", "choices": [choice], "usage": usage(finished.stats)}
    )


async def _collect(ticket: Ticket) -> OutputAssembler:
    assembler = OutputAssembler()
    async for event in events(ticket):
        assembler.feed(event)
    return assembler


async def _stream(
    head: dict[str, Any], ticket: Ticket, include_usage: bool
) -> AsyncIterator[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return sse({**head, "object": "chat.completion.chunk", "choices": [choice]})

    assembler = OutputAssembler()
    try:
        yield chunk({"role": "assistant", "content": ""})
        async for event in events(ticket):
            for op in assembler.feed(event):
                delta = _delta(op.item, op, assembler)
                if delta is not None:
                    yield chunk(delta)
            if isinstance(event, TurnFinished):
                yield chunk({}, FINISH[event.reason])
                if include_usage:
                    yield sse({**head, "object": "chat.completion.chunk", "choices": [],
                               "usage": usage(event.stats)})  # fmt: skip
        yield sse("[DONE]")
    except ApiError as e:  # the model failed mid-turn: tell the client in the stream
        yield sse(e.body())
    finally:
        ticket.cancel.set()


def _delta(item: Item, op: object, assembler: OutputAssembler) -> dict[str, Any] | None:
    if item.kind == "function_call":
        index = assembler.calls.index(item)
        if isinstance(op, Opened):
            call = {"index": index, "id": item.call_id, "type": "function",
                    "function": {"name": item.name, "arguments": ""}}  # fmt: skip
            return {"tool_calls": [call]}
        if isinstance(op, Delta):
            return {"tool_calls": [{"index": index, "function": {"arguments": op.text}}]}
        return None
    if not isinstance(op, Delta):
        return None
    return {"reasoning": op.text} if item.kind == "reasoning" else {"content": op.text}


def _call_json(item: Item) -> dict[str, Any]:
    function = {"name": item.name, "arguments": item.text}
    return {"id": item.call_id, "type": "function", "function": function}


def usage(stats: TurnStats) -> dict[str, Any]:
    return {
        "prompt_tokens": stats.prompt_tokens,
        "completion_tokens": stats.generated_tokens,
        "total_tokens": stats.prompt_tokens + stats.generated_tokens,
        "prompt_tokens_details": {"cached_tokens": stats.reused_tokens},
        "completion_tokens_details": {"reasoning_tokens": stats.reasoning_tokens},
    }
