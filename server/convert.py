"""Request fields → engine values: typed field access with OpenAI-style errors, function tools,
reasoning effort, sampling, and Responses input items as harmony messages.

Chat Completions messages are converted in server.chat_api; both end as the same Job.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from engine import Channel, Message, ReasoningEffort, SamplingSettings, ToolDescription
from server.errors import ApiError, bad_request

T = TypeVar("T")
FUNCTIONS = "functions."
_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "a boolean",
               list: "an array", dict: "an object"}  # fmt: skip
# OpenAI's efforts beyond gpt-oss's three map to the nearest one.
_EFFORTS = {"none": "low", "minimal": "low", "low": "low", "medium": "medium", "high": "high",
            "xhigh": "high"}  # fmt: skip


def parse_json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError as e:
        raise bad_request(
            f"The request body is not valid JSON ({e}). Send one JSON object.", code="invalid_json"
        ) from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", code="invalid_json")
    return body


def field(
    body: Mapping[str, Any], name: str, kind: type[T], *, param: str | None = None
) -> T | None:
    """body[name] if present and not null, checked to be `kind` (an int is a number too)."""
    value = body.get(name)
    if value is None:
        return None
    ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)  # type: ignore[return-value]
    if not ok:
        raise bad_request(
            f"Invalid type for '{param or name}': expected {_TYPE_NAMES.get(kind, kind.__name__)}, "
            f"got {_json_type(value)}.",
            param=param or name,
            code="invalid_type",
        )
    return value


def required(body: Mapping[str, Any], name: str, kind: type[T], *, param: str | None = None) -> T:
    value = field(body, name, kind, param=param)
    if value is None:
        raise bad_request(
            f"Missing required parameter: '{param or name}'.", param=param or name,
            code="missing_required_parameter",
        )  # fmt: skip
    return value


def check_model(body: Mapping[str, Any], model_id: str) -> str:
    model = required(body, "model", str)
    if model != model_id:
        raise ApiError(
            404,
            f"The model `{model}` does not exist. This server serves `{model_id}`.",
            param="model",
            code="model_not_found",
        )
    return model


def effort(value: Any, param: str) -> ReasoningEffort:
    if value is None:
        return ReasoningEffort.MEDIUM
    if not isinstance(value, str) or value not in _EFFORTS:
        raise bad_request(
            f"Invalid value for '{param}': {json.dumps(value)}. Use low, medium or high.",
            param=param,
            code="invalid_value",
        )
    return ReasoningEffort(_EFFORTS[value])


def positive_int(body: Mapping[str, Any], name: str) -> int | None:
    value = field(body, name, int)
    if value is not None and value < 1:
        raise bad_request(f"Invalid '{name}': it must be at least 1.", param=name)
    return value


def sampling(body: Mapping[str, Any]) -> SamplingSettings | None:
    temperature = field(body, "temperature", float)
    top_p = field(body, "top_p", float)
    seed = field(body, "seed", int)
    if temperature is None and top_p is None and seed is None:
        return None
    if temperature is not None and not 0 <= temperature <= 2:
        raise bad_request("Invalid 'temperature': use a number from 0 to 2.", param="temperature")
    if top_p is not None and not 0 < top_p <= 1:
        raise bad_request("Invalid 'top_p': use a number above 0 and at most 1.", param="top_p")
    return SamplingSettings(
        temperature=1.0 if temperature is None else temperature,
        top_p=1.0 if top_p is None else top_p,
        seed=seed,
    )


def function_tools(tools: Sequence[Any], *, nested: bool) -> tuple[ToolDescription, ...]:
    """Function tools as harmony's `functions` namespace. `nested`: Chat Completions' shape
    (`{"type": "function", "function": {...}}`) rather than the Responses API's flat one."""
    found = []
    for i, tool in enumerate(tools):
        param = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise bad_request(f"Invalid '{param}': expected an object.", param=param)
        if tool.get("type") != "function":
            raise bad_request(
                f"Unsupported tool type for '{param}': {json.dumps(tool.get('type'))}. This "
                "server runs function tools only.",
                param=f"{param}.type",
            )
        spec = required(tool, "function", dict, param=f"{param}.function") if nested else tool
        prefix = f"{param}.function." if nested else f"{param}."
        name = required(spec, "name", str, param=prefix + "name")
        description = field(spec, "description", str, param=prefix + "description") or ""
        parameters = field(spec, "parameters", dict, param=prefix + "parameters")
        found.append(ToolDescription(name, description, parameters))
    return tuple(found)


def text_of(content: Any, param: str) -> str:
    """A message's content: a string, or a list of text parts (input_text, output_text, text)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise bad_request(
            f"Invalid '{param}': expected a string or an array of parts.", param=param
        )
    texts = []
    for i, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("text"), str):
            kind = part.get("type") if isinstance(part, dict) else None
            raise bad_request(
                f"Unsupported content part '{param}[{i}]' ({kind}): this server reads text parts "
                "only.",
                param=f"{param}[{i}]",
            )
        texts.append(part["text"])
    return "".join(texts)


def normalized_input(value: Any) -> list[dict[str, Any]]:
    """The Responses `input` as a list of items (a string is one user message)."""
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise bad_request(
            "Invalid 'input': expected a string or an array of items.", param="input",
            code="invalid_type",
        )  # fmt: skip
    return [{"type": "message", **item} if "type" not in item else item for item in value]


def items_to_messages(items: Sequence[Mapping[str, Any]]) -> tuple[list[Message], list[str]]:
    """Responses items as harmony messages, plus the text of system/developer items (which
    join the instructions)."""
    messages: list[Message] = []
    extra: list[str] = []
    names: dict[str, str] = {}
    for i, item in enumerate(items):
        param = f"input[{i}]"
        kind = item.get("type")
        if kind == "message":
            role = item.get("role")
            text = text_of(item.get("content"), f"{param}.content")
            if role == "user":
                messages.append(Message.user(text))
            elif role == "assistant":
                messages.append(Message.assistant(text))
            elif role in ("system", "developer"):
                extra.append(text)
            else:
                raise bad_request(f"Invalid role for '{param}': {json.dumps(role)}.", param=param)
        elif kind == "reasoning":
            text = "".join(
                c.get("text", "") for c in item.get("content") or [] if isinstance(c, dict)
            )
            if text:
                messages.append(Message.assistant(text, channel=Channel.ANALYSIS))
        elif kind == "function_call":
            name = required(item, "name", str, param=f"{param}.name")
            call_id = required(item, "call_id", str, param=f"{param}.call_id")
            arguments = field(item, "arguments", str, param=f"{param}.arguments") or ""
            names[call_id] = name
            messages.append(Message.tool_call(FUNCTIONS + name, arguments))
        elif kind == "function_call_output":
            call_id = required(item, "call_id", str, param=f"{param}.call_id")
            if call_id not in names:
                raise bad_request(
                    f"No function call found for call_id {call_id!r} in '{param}'. Send the "
                    "function_call item first, or pass previous_response_id.",
                    param=f"{param}.call_id",
                )
            output = item.get("output")
            text = output if isinstance(output, str) else text_of(output, f"{param}.output")
            messages.append(Message.tool_result(FUNCTIONS + names[call_id], text))
        else:
            raise bad_request(
                f"Unsupported input item type for '{param}': {json.dumps(kind)}.", param=param
            )
    return messages, extra


def joined_instructions(*parts: str | None) -> str | None:
    texts = [p for p in parts if p]
    return "\n\n".join(texts) if texts else None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", str: "a string", int: "an integer", float: "a number",
            list: "an array", dict: "an object"}.get(type(value), type(value).__name__)  # fmt: skip
