"""A tool call as the chat reports it, checked against the tools the conversation declares.

The model addresses a call by its recipient on any channel (gpt-oss sends many calls on
`analysis`), so a call is whatever complete assistant message has a recipient. Calls that cannot
run as written (no such tool, arguments that are not JSON) still end the turn as a call, carrying
a `problem` written for the model: the caller answers with `call.error_result()` and the model
can correct itself, instead of the turn crashing or the call being silently dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.chat.events import ToolCallRequested
from engine.harmony import SystemContent, ToolDescription

FUNCTIONS_NAMESPACE = "functions"


@dataclass(frozen=True)
class ToolCatalog:
    """The recipients a conversation declares: `functions.NAME` from the developer message,
    `NAMESPACE.NAME` from the system message, and a bare `NAMESPACE` for a namespace without
    functions (`python`), whose argument is free text (code) rather than JSON."""

    json_tools: frozenset[str] = frozenset()
    text_tools: frozenset[str] = frozenset()

    @classmethod
    def of(cls, system: SystemContent, functions: Iterable[ToolDescription]) -> ToolCatalog:
        json_tools = {f"{FUNCTIONS_NAMESPACE}.{f.name}" for f in functions}
        text_tools = set()
        for namespace in system.tools:
            if namespace.tools:
                json_tools |= {f"{namespace.name}.{t.name}" for t in namespace.tools}
            else:
                text_tools.add(namespace.name)
        return cls(frozenset(json_tools), frozenset(text_tools))

    @property
    def names(self) -> list[str]:
        return sorted(self.json_tools | self.text_tools)


def tool_call(
    recipient: str,
    arguments_text: str,
    channel: str,
    content_type: str | None,
    catalog: ToolCatalog,
) -> ToolCallRequested:
    """The call the model wrote, with its arguments parsed and any problem spelled out."""
    arguments, json_problem = _parse_json(arguments_text)
    problem = _unknown_recipient(recipient, catalog)
    if problem is None and recipient not in catalog.text_tools:
        problem = json_problem and (
            f"The arguments for {recipient} are {json_problem}. "
            "Call it again with one JSON object that matches its parameters."
        )
    return ToolCallRequested(
        recipient, arguments_text, arguments, channel, content_type=content_type, problem=problem
    )


def _unknown_recipient(recipient: str, catalog: ToolCatalog) -> str | None:
    if recipient in catalog.json_tools or recipient in catalog.text_tools:
        return None
    named = f"`{recipient}`" if recipient.strip() else "an empty recipient (`to=`)"
    if not catalog.names:
        return f"The message to {named} cannot run: this chat has no tools. Answer without them."
    return (
        f"The message to {named} is not a call to one of this chat's tools. "
        f"Call one of: {_listing(catalog.names)}."
    )


def _listing(names: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _parse_json(text: str) -> tuple[Any, str | None]:
    """(parsed value, None), or (value or None, what is wrong with it). Empty text is no
    arguments, not an error: a function without parameters may be called that way."""
    if not text.strip():
        return None, None
    try:
        value = json.loads(text)
    except ValueError as e:
        return None, f"not valid JSON ({e})"
    if not isinstance(value, dict):
        return value, f"a JSON {_JSON_TYPES.get(type(value), 'number')}, not an object"
    return value, None


_JSON_TYPES = {list: "array", str: "string", bool: "boolean", type(None): "null"}
