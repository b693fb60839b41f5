"""POST /v1/responses: the request as a Job, and the answer as a Response object or as the
documented event stream (response.created ... response.completed)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from engine import TurnFinished, TurnStats
from server import convert
from server.errors import ApiError, bad_request
from server.output import Closed, Delta, Item, Op, Opened, OutputAssembler, new_id
from server.runner import Job, ModelRunner, Ticket
from server.store import ResponseStore
from server.turns import ClientGone, events, sse, start, until_disconnect

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@dataclass
class Parsed:
    job: Job
    items: list[dict[str, Any]]  # the conversation as Responses items, for the store
    echo: dict[str, Any]  # request fields the Response object repeats
    stream: bool
    store: bool
    created_at: int = field(default_factory=lambda: int(time.time()))
    id: str = field(default_factory=lambda: new_id("resp"))


def parse(body: dict[str, Any], model_id: str, store: ResponseStore) -> Parsed:
    model = convert.check_model(body, model_id)
    if "input" not in body:
        raise bad_request("Missing required parameter: 'input'.", param="input")
    previous = convert.field(body, "previous_response_id", str)
    items: list[dict[str, Any]] = []
    if previous is not None:
        stored = store.items(previous)
        if stored is None:
            raise bad_request(
                f"Previous response with id '{previous}' not found. Send the whole conversation "
                "as input, or a response made with store=true.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        items = stored
    items += convert.normalized_input(body["input"])
    messages, extra = convert.items_to_messages(items)
    instructions = convert.field(body, "instructions", str)
    tools_value = convert.field(body, "tools", list) or []
    tools = convert.function_tools(tools_value, nested=False)
    if body.get("tool_choice") == "none":
        tools = ()
    reasoning = convert.field(body, "reasoning", dict) or {}
    effort = convert.effort(reasoning.get("effort"), "reasoning.effort")
    text = convert.field(body, "text", dict) or {}
    max_output = convert.positive_int(body, "max_output_tokens")
    job = Job(
        history=tuple(messages),
        instructions=convert.joined_instructions(instructions, *extra),
        tools=tools,
        effort=effort,
        max_output_tokens=max_output,
        sampling=convert.sampling(body),
        output_schema=output_schema(text.get("format"), "text.format"),
    )
    echo = {
        "model": model,
        "instructions": instructions,
        "max_output_tokens": max_output,
        "previous_response_id": previous,
        "reasoning": {"effort": effort.value, "summary": None},
        "temperature": body.get("temperature", 1.0),
        "top_p": body.get("top_p", 1.0),
        "text": {"format": text.get("format") or {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": tools_value,
        "metadata": convert.field(body, "metadata", dict) or {},
    }
    stream = bool(convert.field(body, "stream", bool))
    keep = convert.field(body, "store", bool)
    return Parsed(job, items, echo, stream, True if keep is None else keep)


def output_schema(fmt: Any, param: str) -> dict[str, Any] | None:
    """The JSON schema of a `json_schema` format (`json_object`: any object), else None."""
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        raise bad_request(f"Invalid '{param}': expected an object.", param=param)
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "object"}
    if kind == "json_schema":
        spec = fmt.get("json_schema", fmt)  # Chat Completions nests it, Responses does not
        schema = convert.required(spec, "schema", dict, param=f"{param}.schema")
        return schema
    raise bad_request(f"Invalid '{param}.type': {kind!r}.", param=f"{param}.type")


async def create(
    request: Request, body: dict[str, Any], runner: ModelRunner, store: ResponseStore
) -> Response:
    parsed = parse(body, runner.model_id, store)
    ticket = await start(request, runner, parsed.job)
    if parsed.stream:
        return StreamingResponse(
            _stream(parsed, ticket, store), media_type="text/event-stream", headers=SSE_HEADERS
        )
    try:
        assembler = await until_disconnect(request, ticket, _collect(ticket))
    except ClientGone:
        return Response(status_code=499)
    response = _finish(parsed, assembler, store)
    return JSONResponse(response)


async def _collect(ticket: Ticket) -> OutputAssembler:
    assembler = OutputAssembler()
    async for event in events(ticket):
        assembler.feed(event)
    return assembler


async def _stream(parsed: Parsed, ticket: Ticket, store: ResponseStore) -> AsyncIterator[bytes]:
    seq = 0

    def emit(kind: str, **fields: Any) -> bytes:
        nonlocal seq
        data = {"type": kind, "sequence_number": seq, **fields}
        seq += 1
        return sse(data, kind)

    assembler = OutputAssembler()
    try:
        shell = response_object(parsed, [], "in_progress", None)
        yield emit("response.created", response=shell)
        yield emit("response.in_progress", response=shell)
        try:
            async for event in events(ticket):
                for op in assembler.feed(event):
                    for kind, fields in _op_events(op):
                        yield emit(kind, **fields)
        except ApiError as e:  # the model failed mid-turn: the stream says so, as OpenAI's does
            failed = response_object(parsed, [], "failed", None)
            failed["error"] = {"code": e.code or "server_error", "message": e.message}
            yield emit("response.failed", response=failed)
            return
        final = _finish(parsed, assembler, store)
        done = "response.completed" if final["status"] == "completed" else "response.incomplete"
        yield emit(done, response=final)
    finally:
        # Also when the client disconnects and Starlette cancels this generator.
        ticket.cancel.set()


def _op_events(op: Op) -> list[tuple[str, dict[str, Any]]]:
    item = op.item
    at = {"output_index": item.index}
    ids = {"item_id": item.id, **at}
    if isinstance(op, Opened):
        found = [("response.output_item.added", {"item": item_json(item, empty=True), **at})]
        if item.kind != "function_call":
            part = _part(item, "")
            found.append(("response.content_part.added", {**ids, "content_index": 0, "part": part}))
        return found
    if isinstance(op, Delta):
        kind = {
            "reasoning": "response.reasoning_text.delta",
            "message": "response.output_text.delta",
            "function_call": "response.function_call_arguments.delta",
        }[item.kind]
        extra: dict[str, Any] = {"logprobs": []} if item.kind == "message" else {}
        index = {} if item.kind == "function_call" else {"content_index": 0}
        return [(kind, {**ids, **index, "delta": op.text, **extra})]
    assert isinstance(op, Closed)
    done_item = ("response.output_item.done", {"item": item_json(item), **at})
    if item.kind == "function_call":
        args = ("response.function_call_arguments.done", {**ids, "arguments": item.text})
        return [args, done_item]
    if item.kind == "reasoning":
        text = ("response.reasoning_text.done", {**ids, "content_index": 0, "text": item.text})
    else:
        text = (
            "response.output_text.done",
            {**ids, "content_index": 0, "text": item.text, "logprobs": []},
        )
    part_done = (
        "response.content_part.done",
        {**ids, "content_index": 0, "part": _part(item, None)},
    )
    return [text, part_done, done_item]


def _part(item: Item, text: str | None) -> dict[str, Any]:
    body = item.text if text is None else text
    if item.kind == "reasoning":
        return {"type": "reasoning_text", "text": body}
    return {"type": "output_text", "text": body, "annotations": [], "logprobs": []}


def item_json(item: Item, *, empty: bool = False) -> dict[str, Any]:
    status = "in_progress" if empty else "completed"
    if item.kind == "function_call":
        return {
            "type": "function_call",
            "id": item.id,
            "call_id": item.call_id,
            "name": item.name,
            "arguments": "" if empty else item.text,
            "status": status,
        }
    content = [] if empty else [_part(item, None)]
    if item.kind == "reasoning":
        return {"type": "reasoning", "id": item.id, "summary": [], "content": content,
                "status": status}  # fmt: skip
    return {"type": "message", "id": item.id, "role": "assistant", "status": status,
            "content": content}  # fmt: skip


def _finish(parsed: Parsed, assembler: OutputAssembler, store: ResponseStore) -> dict[str, Any]:
    finished = assembler.finished
    assert finished is not None
    output = [item_json(item) for item in assembler.items]
    status = "incomplete" if finished.reason in ("length", "cancel") else "completed"
    response = response_object(parsed, output, status, finished)
    if parsed.store:
        store.save(response, [*parsed.items, *output])
    return response


def response_object(
    parsed: Parsed, output: list[dict[str, Any]], status: str, finished: TurnFinished | None
) -> dict[str, Any]:
    incomplete = None
    if finished is not None and status == "incomplete":
        reason = "max_output_tokens" if finished.reason == "length" else "cancelled"
        incomplete = {"reason": reason}
    return {
        "id": parsed.id,
        "object": "response",
        "created_at": parsed.created_at,
        "status": status,
        "error": None,
        "incomplete_details": incomplete,
        "output": output,
        "parallel_tool_calls": False,
        "store": parsed.store,
        "truncation": "disabled",
        "usage": None if finished is None else usage(finished.stats),
        **parsed.echo,
    }


def usage(stats: TurnStats) -> dict[str, Any]:
    return {
        "input_tokens": stats.prompt_tokens,
        "input_tokens_details": {"cached_tokens": stats.reused_tokens, "cache_write_tokens": 0},
        "output_tokens": stats.generated_tokens,
        "output_tokens_details": {"reasoning_tokens": stats.reasoning_tokens},
        "total_tokens": stats.prompt_tokens + stats.generated_tokens,
    }
