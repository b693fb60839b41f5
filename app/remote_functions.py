"""The chat's tool providers (python, MCP servers) offered to a server as function tools, and one
call run here the way the local tool loop runs it: asked through the same Approver, counted with
the turn's other calls, reported as the same ToolStep. Qt-free; runs on the engine thread.

Names: an MCP function keeps its name (SERVER__TOOL) and its JSON schema, and its recipient is
"functions.SERVER__TOOL" as locally. A built-in namespace without functions (python, whose code
is the whole message in harmony) becomes a function of that name with one string parameter
`code`, described with the namespace's own text, and its recipient is the namespace ("python"),
so the approval dialog, the steps and the history read exactly as for a local call.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from engine import (
    Approvals,
    Approver,
    ToolProvider,
)

FUNCTIONS_PREFIX = "functions."
CODE_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {"code": {"type": "string", "description": "The Python code to run."}},
    "required": ["code"],
}


class ProviderTools(Protocol):
    """A turn's providers and how their calls are approved (app/tool_turns.py TurnTools)."""

    @property
    def providers(self) -> tuple[ToolProvider, ...]: ...
    @property
    def approvals(self) -> Approvals: ...
    @property
    def approve(self) -> Approver: ...
    @property
    def notes(self) -> tuple[str, ...]:
        """Lines for the instructions (where the python tool finds the attached files)."""
        ...


@dataclass(frozen=True)
class ProviderFunction:
    """One function offered to the server: its name there, what it runs here, and whether its
    arguments are `{"code": ...}` for a code namespace or the provider's own JSON."""

    name: str
    description: str
    parameters: dict[str, Any]
    recipient: str
    code: bool


def provider_functions(
    providers: Sequence[ToolProvider], taken: set[str]
) -> list[ProviderFunction]:
    """The providers' functions, skipping names already in `taken` (which it extends)."""
    found: list[ProviderFunction] = []

    def add(function: ProviderFunction) -> None:
        if function.name not in taken:
            taken.add(function.name)
            found.append(function)

    for provider in providers:
        for namespace in provider.system_namespaces():
            if not namespace.tools:  # prose only: the model writes code as the message
                text = namespace.description or f"Runs code with the {namespace.name} tool."
                add(ProviderFunction(namespace.name, text, CODE_PARAMETERS, namespace.name, True))
        for tool in provider.functions():
            parameters = dict(tool.parameters or {"type": "object", "properties": {}})
            recipient = FUNCTIONS_PREFIX + tool.name
            add(ProviderFunction(tool.name, tool.description, parameters, recipient, False))
    return found


def code_argument(arguments_json: str) -> tuple[str, str | None]:
    """The code of a code function's call, or "" and what the model must fix."""
    try:
        value = json.loads(arguments_json)
    except ValueError:
        value = None
    code = value.get("code") if isinstance(value, dict) else None
    if not isinstance(code, str):
        return "", 'the arguments must be a JSON object {"code": "<the code to run>"}'
    return code, None


def provider_for(tools: ProviderTools, recipient: str) -> ToolProvider | None:
    return next((p for p in tools.providers if p.handles(recipient)), None)
