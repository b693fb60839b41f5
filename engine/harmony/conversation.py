"""Harmony conversations as frozen data: roles, messages, system and developer content, tools.

Field names follow OpenAI's harmony format (docs/format.md). Tool parameter schemas are JSON-schema
dicts; treat them as read-only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, TypeAlias


class Role(StrEnum):
    SYSTEM = "system"
    DEVELOPER = "developer"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class ReasoningEffort(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Channel(StrEnum):
    ANALYSIS = "analysis"
    COMMENTARY = "commentary"
    FINAL = "final"


DEFAULT_MODEL_IDENTITY = "You are ChatGPT, a large language model trained by OpenAI."
DEFAULT_KNOWLEDGE_CUTOFF = "2024-06"
DEFAULT_CHANNELS = (Channel.ANALYSIS.value, Channel.COMMENTARY.value, Channel.FINAL.value)
CONSTRAIN_JSON = "<|constrain|>json"


@dataclass(frozen=True)
class ToolDescription:
    """One function: its name, a description and a JSON schema for its arguments (or None)."""

    name: str
    description: str
    parameters: Mapping[str, Any] | None = field(default=None, hash=False)


@dataclass(frozen=True)
class ToolNamespace:
    """A `## name` block in the tools section; built-in tools (browser, python) are namespaces."""

    name: str
    description: str | None = None
    tools: tuple[ToolDescription, ...] = ()


@dataclass(frozen=True)
class SystemContent:
    """The system message. Defaults are harmony's `SystemContent.new()`."""

    model_identity: str | None = DEFAULT_MODEL_IDENTITY
    knowledge_cutoff: str | None = DEFAULT_KNOWLEDGE_CUTOFF
    conversation_start_date: str | None = None
    reasoning_effort: ReasoningEffort | None = ReasoningEffort.MEDIUM
    required_channels: tuple[str, ...] = DEFAULT_CHANNELS
    channel_required: bool = True
    tools: tuple[ToolNamespace, ...] = ()

    def with_tools(self, *namespaces: ToolNamespace) -> SystemContent:
        return replace(self, tools=(*self.tools, *namespaces))


@dataclass(frozen=True)
class DeveloperContent:
    """The developer message: instructions plus the function tools of the `functions` namespace."""

    instructions: str | None = None
    functions: tuple[ToolDescription, ...] = ()


@dataclass(frozen=True)
class TextContent:
    text: str


Content: TypeAlias = TextContent | SystemContent | DeveloperContent


@dataclass(frozen=True)
class Author:
    """Who wrote a message. Tool messages carry the tool's name (`functions.get_weather`)."""

    role: Role
    name: str | None = None


@dataclass(frozen=True)
class Message:
    author: Author
    content: tuple[Content, ...]
    channel: str | None = None
    recipient: str | None = None
    content_type: str | None = None

    @property
    def role(self) -> Role:
        return self.author.role

    @property
    def text(self) -> str:
        return "".join(c.text for c in self.content if isinstance(c, TextContent))

    @classmethod
    def system(cls, content: SystemContent | None = None) -> Message:
        return cls(Author(Role.SYSTEM), (content or SystemContent(),))

    @classmethod
    def developer(cls, content: DeveloperContent) -> Message:
        return cls(Author(Role.DEVELOPER), (content,))

    @classmethod
    def user(cls, text: str) -> Message:
        return cls(Author(Role.USER), (TextContent(text),))

    @classmethod
    def assistant(
        cls,
        text: str,
        *,
        channel: str | None = Channel.FINAL,
        recipient: str | None = None,
        content_type: str | None = None,
    ) -> Message:
        return cls(Author(Role.ASSISTANT), (TextContent(text),), channel, recipient, content_type)

    @classmethod
    def tool_call(
        cls,
        recipient: str,
        arguments: str | Mapping[str, Any],
        *,
        channel: str | None = Channel.COMMENTARY,
        content_type: str | None = CONSTRAIN_JSON,
    ) -> Message:
        """An assistant message calling `recipient` (e.g. `functions.get_weather`)."""
        text = arguments if isinstance(arguments, str) else json.dumps(arguments)
        return cls.assistant(text, channel=channel, recipient=recipient, content_type=content_type)

    @classmethod
    def tool_result(
        cls,
        tool_name: str,
        text: str,
        *,
        channel: str | None = Channel.COMMENTARY,
        recipient: str | None = Role.ASSISTANT.value,
    ) -> Message:
        """A tool's output, written by `tool_name` and addressed back to the assistant."""
        return cls(Author(Role.TOOL, tool_name), (TextContent(text),), channel, recipient)


@dataclass(frozen=True)
class Conversation:
    messages: tuple[Message, ...] = ()

    @classmethod
    def from_messages(cls, messages: Iterable[Message]) -> Conversation:
        return cls(tuple(messages))

    def appended(self, *messages: Message) -> Conversation:
        return Conversation((*self.messages, *messages))

    def __iter__(self) -> Iterator[Message]:
        return iter(self.messages)

    def __len__(self) -> int:
        return len(self.messages)
