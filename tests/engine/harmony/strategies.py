"""Hypothesis strategies for harmony conversations, and their openai-harmony twins.

`conversations()` draws our `Conversation`; `to_harmony(conversation)` builds the same conversation
for openai-harmony 0.0.8, the oracle. The draws cover what the renderer has to get right: system
messages with every effort, dates, identities and built-in tools; developer instructions; function
tools whose JSON schemas use every construct harmony knows (and some it renders as `any`); user,
assistant analysis/commentary/final, tool calls with `<|constrain|>json`, and tool results.
Messages come in any order, so renderers are exercised beyond well-formed chats.
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from typing import Any

import openai_harmony as oh
from hypothesis import strategies as st

from engine.harmony import (
    CONSTRAIN_JSON,
    Author,
    Channel,
    Content,
    Conversation,
    DeveloperContent,
    Message,
    ReasoningEffort,
    Role,
    SystemContent,
    TextContent,
    ToolDescription,
    ToolNamespace,
    browser_namespace,
    python_namespace,
)

JsonSchema = dict[str, Any]

# Fragments that tokenizers and renderers trip on: specials as text, CRLF, emoji, CJK, RTL.
_FRAGMENTS = (
    "<|end|>",
    "<|start|>assistant",
    "<|constrain|>json",
    "<|reserved_200018|>",
    "<|endofprompt|>",
    "\r\n",
    "\r",
    "\n\n",
    " to=functions.x",
    "  ",
    "🙂👍🏽",
    "天气怎么样",
    "مرحبا",
    "naïve café",
    "1e20",
    "// comment",
    "{\n}",
    "\t",
)
_CHARS = st.characters(codec="utf-8")  # any character but surrogates


def texts(max_size: int = 24) -> st.SearchStrategy[str]:
    """Free text: random characters mixed with fragments that matter to harmony."""
    piece = st.one_of(st.text(_CHARS, max_size=max_size), st.sampled_from(_FRAGMENTS))
    return st.lists(piece, max_size=3).map("".join)


_NAME_CHARS = string.ascii_letters + string.digits + "_"
identifiers = st.text(_NAME_CHARS, min_size=1, max_size=12).filter(lambda s: not s[0].isdigit())
# Property names beyond identifiers: harmony prints them as they are.
property_names = st.one_of(identifiers, st.sampled_from(["with-dash", "名前", "a b", "$x", "0"]))

_FLOATS = (1e20, 1e16, 1e15, 1e-7, 0.1, -0.0, 0.0, 1.5, -2.25, 3.0, 100.0, 1.7976931348623157e308)
_INTS = (0, -1, 10, 2**53, 2**63 - 1, 2**64 - 1, 2**64, 2**70, -(2**63), -(2**63) - 1)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(_INTS),
    st.integers(-(10**6), 10**6),
    st.sampled_from(_FLOATS),
    st.floats(allow_nan=False, allow_infinity=False),
    texts(12),
)
json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(_CHARS, max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)

_SCALAR_TYPES = ("string", "number", "integer", "boolean", "null")


def _annotations(draw: st.DrawFn, schema: JsonSchema) -> JsonSchema:
    """Optional keys every schema may carry: description, title, default, examples, nullable."""
    extras: dict[str, st.SearchStrategy[Any]] = {
        "description": texts(30),
        "title": texts(12),
        "default": json_values,
        "examples": st.lists(json_values, max_size=3),
        "nullable": st.booleans(),
        "format": st.sampled_from(["date-time", "uri"]),
        "minimum": st.integers(-5, 5),
    }
    for key, strategy in extras.items():
        if draw(st.integers(0, 4)) == 0:
            schema[key] = draw(strategy)
    return schema


@st.composite
def _leaf_schema(draw: st.DrawFn) -> JsonSchema:
    kind = draw(st.sampled_from(["scalar", "enum", "typeless_enum", "const", "type_list", "empty"]))
    schema: JsonSchema
    if kind == "scalar":
        schema = {"type": draw(st.sampled_from(_SCALAR_TYPES))}
    elif kind == "enum":
        kind_name = draw(st.sampled_from(["string", "string", "number", "integer"]))
        values = st.lists(
            texts(8) if kind_name == "string" else json_scalars, min_size=1, max_size=4
        )
        schema = {"type": kind_name, "enum": draw(values)}
        if draw(st.booleans()):
            schema["default"] = draw(st.sampled_from(schema["enum"]))
    elif kind == "typeless_enum":
        schema = {"enum": draw(st.lists(json_scalars, min_size=1, max_size=4))}
    elif kind == "const":
        schema = {"const": draw(json_scalars)}
    elif kind == "type_list":
        types = st.lists(st.sampled_from(_SCALAR_TYPES), min_size=1, max_size=3, unique=True)
        schema = {"type": draw(types)}
    else:
        schema = {}
    return _annotations(draw, schema)


def _object_schema(children: st.SearchStrategy[JsonSchema]) -> st.SearchStrategy[JsonSchema]:
    @st.composite
    def build(draw: st.DrawFn) -> JsonSchema:
        schema: JsonSchema = {"type": "object"}
        if draw(st.integers(0, 5)) > 0:
            properties = draw(st.dictionaries(property_names, children, max_size=4))
            schema["properties"] = properties
            names = list(properties)
            if draw(st.booleans()) and names:
                schema["required"] = draw(st.lists(st.sampled_from(names), unique=True))
        if draw(st.integers(0, 3)) == 0:
            schema["additionalProperties"] = draw(st.booleans())
        return _annotations(draw, schema)

    return build()


def _composite_schema(children: st.SearchStrategy[JsonSchema]) -> st.SearchStrategy[JsonSchema]:
    @st.composite
    def build(draw: st.DrawFn) -> JsonSchema:
        kind = draw(st.sampled_from(["oneOf", "anyOf", "allOf", "array", "array", "ref"]))
        schema: JsonSchema
        if kind == "array":
            schema = {"type": "array"}
            if draw(st.integers(0, 4)) > 0:
                schema["items"] = draw(children)
        elif kind == "ref":
            schema = {"$ref": "#/$defs/thing"}
        else:
            schema = {kind: draw(st.lists(children, min_size=0, max_size=3))}
            if draw(st.booleans()):
                schema["type"] = draw(st.sampled_from(["object", "string", "number"]))
        return _annotations(draw, schema)

    return build()


schemas: st.SearchStrategy[JsonSchema] = st.recursive(
    _leaf_schema(),
    lambda children: st.one_of(_object_schema(children), _composite_schema(children)),
    max_leaves=8,
)


@st.composite
def parameter_schemas(draw: st.DrawFn) -> JsonSchema | None:
    """A function's `parameters`: none at all, an object (the usual case), or anything."""
    kind = draw(st.sampled_from(["none", "object", "object", "object", "any"]))
    if kind == "none":
        return None
    if kind == "any":
        return draw(schemas)
    schema = draw(_object_schema(schemas))
    if draw(st.integers(0, 5)) == 0:
        schema["$defs"] = {"thing": draw(schemas)}
    # Schemas written in Python may use tuples for arrays; harmony only ever sees JSON lists.
    return _with_tuples(schema) if draw(st.integers(0, 4)) == 0 else schema


def _with_tuples(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _with_tuples(v) for k, v in value.items()}
    if isinstance(value, list):
        return tuple(_with_tuples(v) for v in value)
    return value


@st.composite
def function_tools(draw: st.DrawFn, name: str | None = None) -> ToolDescription:
    description = draw(st.one_of(st.just(""), texts(40)))
    return ToolDescription(name or draw(identifiers), description, draw(parameter_schemas()))


def _tool_lists(max_size: int) -> st.SearchStrategy[tuple[ToolDescription, ...]]:
    names = st.lists(identifiers, max_size=max_size, unique=True)
    return names.flatmap(lambda ns: st.tuples(*(function_tools(n) for n in ns)))


@st.composite
def tool_namespaces(draw: st.DrawFn) -> ToolNamespace:
    kind = draw(st.sampled_from(["browser", "python", "custom"]))
    if kind == "browser":
        return browser_namespace(draw(st.sampled_from(["web", "local files", ""])))
    if kind == "python":
        return draw(st.sampled_from([python_namespace(), python_namespace("Runs code.\n\nSafe.")]))
    name = draw(identifiers.filter(lambda n: n not in ("browser", "python", "functions")))
    description = draw(st.one_of(st.none(), texts(30)))
    return ToolNamespace(name, description, draw(_tool_lists(2)))


_DATES = ("2025-06-28", "2021-01-01", "", "June 28, 2025")


@st.composite
def system_contents(draw: st.DrawFn) -> SystemContent:
    namespaces = draw(st.lists(tool_namespaces(), max_size=3, unique_by=lambda ns: ns.name))
    channels = st.sampled_from(
        [("analysis", "commentary", "final"), ("analysis", "final"), (), ("final",)]
    )
    return SystemContent(
        model_identity=draw(st.sampled_from([SystemContent.model_identity, None, "You are Desk."])),
        knowledge_cutoff=draw(st.sampled_from([SystemContent.knowledge_cutoff, None, "2021-01"])),
        conversation_start_date=draw(st.one_of(st.none(), st.sampled_from(_DATES))),
        reasoning_effort=draw(st.one_of(st.none(), st.sampled_from(list(ReasoningEffort)))),
        required_channels=draw(st.one_of(channels, st.tuples(identifiers))),
        channel_required=draw(st.booleans()),
        tools=tuple(namespaces),
    )


@st.composite
def developer_contents(draw: st.DrawFn) -> DeveloperContent:
    instructions = draw(st.one_of(st.none(), texts(40)))
    return DeveloperContent(instructions=instructions, functions=draw(_tool_lists(3)))


_CHANNELS = st.sampled_from([c.value for c in Channel])
_RECIPIENTS = st.sampled_from(["functions.get_weather", "browser.search", "python", "all", ""])
_CONTENT_TYPES = st.sampled_from([CONSTRAIN_JSON, "json", "code", "<|constrain|>", None])


@st.composite
def _arguments(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 4)) == 0:
        return draw(texts(20))  # the model does send broken JSON
    return json.dumps(draw(st.dictionaries(identifiers, json_values, max_size=3)))


@st.composite
def body_messages(draw: st.DrawFn) -> Message:
    """One message after the system/developer preamble."""
    kind = draw(st.sampled_from(["user", "analysis", "commentary", "final", "call", "result"]))
    if kind == "user":
        return Message.user(draw(texts(40)))
    if kind in ("analysis", "commentary", "final"):
        return Message.assistant(draw(texts(40)), channel=kind)
    if kind == "call":
        return Message.tool_call(
            draw(_RECIPIENTS.filter(bool)),
            draw(_arguments()),
            channel=draw(st.one_of(_CHANNELS, st.none())),
            content_type=draw(_CONTENT_TYPES),
        )
    return Message.tool_result(
        draw(st.sampled_from(["functions.get_weather", "browser.search", "python"])),
        draw(texts(40)),
        channel=draw(st.one_of(st.just("commentary"), st.none())),
        recipient=draw(st.sampled_from(["assistant", None])),
    )


@st.composite
def odd_messages(draw: st.DrawFn) -> Message:
    """Rarer shapes: author names, several text parts, empty recipient/channel, user recipients."""
    role = draw(st.sampled_from([Role.USER, Role.ASSISTANT, Role.DEVELOPER]))
    name = draw(st.one_of(st.none(), identifiers))
    parts = draw(st.lists(texts(12), max_size=3))
    return Message(
        Author(role, name),
        tuple(TextContent(p) for p in parts),
        channel=draw(st.one_of(st.none(), _CHANNELS, st.just(""))),
        recipient=draw(st.one_of(st.none(), _RECIPIENTS)),
        content_type=draw(_CONTENT_TYPES),
    )


@st.composite
def conversations(draw: st.DrawFn, max_messages: int = 8) -> Conversation:
    """A conversation: usually a system and a developer message, then chat messages in any order."""
    preamble: list[Message] = []
    if draw(st.integers(0, 5)) > 0:
        preamble.append(Message.system(draw(system_contents())))
    if draw(st.booleans()):
        preamble.append(Message.developer(draw(developer_contents())))
    body = st.one_of(body_messages(), body_messages(), body_messages(), odd_messages())
    messages = draw(st.lists(body, max_size=max_messages))
    if draw(st.booleans()) and messages:
        # End on a final answer often, as that is what turns harmony's analysis dropping on.
        messages.append(Message.assistant(draw(texts(20)), channel=Channel.FINAL))
    return Conversation.from_messages([*preamble, *messages])


# -- The same conversation for openai-harmony ------------------------------------------------


def to_harmony(conversation: Conversation) -> oh.Conversation:
    return oh.Conversation.from_messages([to_harmony_message(m) for m in conversation])


def to_harmony_message(message: Message) -> oh.Message:
    author = oh.Author(role=oh.Role(message.role.value), name=message.author.name)
    return oh.Message(
        author=author,
        content=[_content(c) for c in message.content],
        channel=message.channel,
        recipient=message.recipient,
        content_type=message.content_type,
    )


def _content(content: Content) -> oh.Content:
    if isinstance(content, TextContent):
        return oh.TextContent(text=content.text)
    if isinstance(content, SystemContent):
        effort = content.reasoning_effort
        return oh.SystemContent(
            model_identity=content.model_identity,
            reasoning_effort=None if effort is None else oh.ReasoningEffort[effort.name],
            conversation_start_date=content.conversation_start_date,
            knowledge_cutoff=content.knowledge_cutoff,
            channel_config=oh.ChannelConfig(
                valid_channels=list(content.required_channels),
                channel_required=content.channel_required,
            ),
            tools={ns.name: to_harmony_namespace(ns) for ns in content.tools} or None,
        )
    functions = ToolNamespace("functions", None, content.functions)
    return oh.DeveloperContent(
        instructions=content.instructions,
        tools={"functions": to_harmony_namespace(functions)} if content.functions else None,
    )


def to_harmony_namespace(namespace: ToolNamespace) -> oh.ToolNamespaceConfig:
    tools = [
        oh.ToolDescription(name=t.name, description=t.description, parameters=_plain(t.parameters))
        for t in namespace.tools
    ]
    return oh.ToolNamespaceConfig(
        name=namespace.name, description=namespace.description, tools=tools
    )


def _plain(schema: Mapping[str, Any] | None) -> dict[str, Any] | None:
    # pydantic wants a dict; a JSON round trip also proves the schema is JSON.
    return None if schema is None else dict(json.loads(json.dumps(schema)))
