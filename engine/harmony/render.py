"""Render harmony conversations to text and token ids.

A rendering is a sequence of pieces, each plain text or a special token. Text pieces are encoded
one by one with `encode_ordinary`, so text that merely looks like `<|end|>` (in a user's message,
say) can never become a special token, and piece boundaries match harmony's renderer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeAlias

from engine.harmony.conversation import (
    Channel,
    Content,
    Conversation,
    DeveloperContent,
    Message,
    Role,
    SystemContent,
    TextContent,
    ToolNamespace,
)
from engine.harmony.schema_ts import render_tools_section
from engine.tokenizer import SpecialToken

Piece: TypeAlias = str | SpecialToken


class TextEncoder(Protocol):
    """What rendering needs from a tokenizer (`HarmonyTokenizer` or a test fake)."""

    def encode_ordinary(self, text: str) -> list[int]: ...


_FUNCTIONS_NAMESPACE = "functions"
_BROADCAST = "all"
_CONSTRAIN_TEXT = SpecialToken.CONSTRAIN.text


@dataclass(frozen=True)
class Rendering:
    pieces: tuple[Piece, ...]

    @property
    def text(self) -> str:
        return "".join(p.text if isinstance(p, SpecialToken) else p for p in self.pieces)

    def token_ids(self, tokenizer: TextEncoder) -> list[int]:
        ids: list[int] = []
        for piece in self.pieces:
            if isinstance(piece, SpecialToken):
                ids.append(int(piece))
            else:
                ids += tokenizer.encode_ordinary(piece)
        return ids

    def __add__(self, other: Rendering) -> Rendering:
        return Rendering(self.pieces + other.pieces)


def render_conversation(
    conversation: Conversation | Iterable[Message], *, auto_drop_analysis: bool = True
) -> Rendering:
    """Render every message; with `auto_drop_analysis`, apply harmony's rule (see below)."""
    messages = list(conversation)
    if auto_drop_analysis:
        messages = drop_analysis_before_first_final(messages)
    has_functions = any(_defines_functions(m) for m in messages)
    pieces: list[Piece] = []
    for message in messages:
        pieces += _message_pieces(message, has_functions)
    return Rendering(tuple(pieces))


def render_for_completion(
    conversation: Conversation | Iterable[Message],
    next_role: Role = Role.ASSISTANT,
    *,
    auto_drop_analysis: bool = True,
) -> Rendering:
    """The prompt for the model's next turn: the conversation, then `<|start|>{next_role}`."""
    rendered = render_conversation(conversation, auto_drop_analysis=auto_drop_analysis)
    return rendered + Rendering((SpecialToken.START, next_role.value))


def render_for_training(
    conversation: Conversation | Iterable[Message], *, auto_drop_analysis: bool = True
) -> Rendering:
    """The conversation as a training target: like `render_conversation`, but a closing final
    answer ends with `<|return|>`, which is what the model emits (harmony does this even to a
    final message with a recipient, whose `<|call|>` it replaces)."""
    messages = list(conversation)
    rendered = render_conversation(messages, auto_drop_analysis=auto_drop_analysis)
    last = messages[-1] if messages else None
    ends_final = last is not None and last.role is Role.ASSISTANT and last.channel == Channel.FINAL
    if ends_final:
        return Rendering((*rendered.pieces[:-1], SpecialToken.RETURN))
    return rendered


def render_message(message: Message, *, has_function_tools: bool = False) -> Rendering:
    return Rendering(tuple(_message_pieces(message, has_function_tools)))


def drop_analysis_before_first_final(messages: Sequence[Message]) -> list[Message]:
    """Harmony's `auto_drop_analysis`: only when the last assistant message is a final answer,
    drop the analysis messages that come before the conversation's first final message.

    So an unfinished tool-calling chain keeps its reasoning, and analysis between two finals is
    kept; use `drop_earlier_turns_analysis` to drop every earlier turn's reasoning.
    """
    last_assistant = next((m for m in reversed(messages) if m.role is Role.ASSISTANT), None)
    if last_assistant is None or last_assistant.channel != Channel.FINAL:
        return list(messages)
    first_final = next(
        (i for i, m in enumerate(messages) if m.channel == Channel.FINAL), len(messages)
    )
    return [
        m for i, m in enumerate(messages) if not (i < first_final and m.channel == Channel.ANALYSIS)
    ]


def drop_earlier_turns_analysis(conversation: Conversation) -> Conversation:
    """For multi-turn chat: drop the analysis of every turn before the last user message.

    gpt-oss is trained to see only the current turn's reasoning; the current turn (tool calls in
    progress included) keeps its analysis. Tool calls and results of earlier turns are kept.
    """
    messages = conversation.messages
    last_user = max((i for i, m in enumerate(messages) if m.role is Role.USER), default=-1)
    return Conversation(
        tuple(
            m
            for i, m in enumerate(messages)
            if not (i < last_user and m.role is Role.ASSISTANT and m.channel == Channel.ANALYSIS)
        )
    )


def _message_pieces(message: Message, has_function_tools: bool) -> list[Piece]:
    pieces: list[Piece] = [SpecialToken.START]
    author = message.author
    if author.role is Role.TOOL:
        if not author.name:
            raise ValueError("a tool message needs the tool's name as its author name")
        pieces.append(author.name)
    else:
        pieces.append(author.role.value)
        if author.name:
            pieces.append(f":{author.name}")
    recipient = message.recipient
    # "all" is harmony's broadcast: not written in the header, yet (as in harmony) still a call.
    if recipient is not None and recipient != _BROADCAST:
        pieces.append(f" to={recipient}")
    if message.channel is not None:
        pieces += [SpecialToken.CHANNEL, str(message.channel)]
    if message.content_type is not None:
        pieces += _content_type_pieces(message.content_type)
    pieces.append(SpecialToken.MESSAGE)
    for content in message.content:
        pieces.append(_content_text(content, author.role, has_function_tools))
    is_call = author.role is Role.ASSISTANT and recipient is not None
    pieces.append(SpecialToken.CALL if is_call else SpecialToken.END)
    return pieces


def _content_type_pieces(content_type: str) -> list[Piece]:
    if content_type.startswith(_CONSTRAIN_TEXT):
        rest = content_type.removeprefix(_CONSTRAIN_TEXT)
        return [" ", SpecialToken.CONSTRAIN, *([rest] if rest else [])]
    return [f" {content_type}"]


def _content_text(content: Content, role: Role, has_function_tools: bool) -> str:
    if isinstance(content, TextContent):
        return content.text
    if isinstance(content, SystemContent):
        if role is not Role.SYSTEM:
            raise ValueError(f"SystemContent belongs in a system message, not {role.value}")
        return _system_text(content, has_function_tools)
    if role is not Role.DEVELOPER:
        raise ValueError(f"DeveloperContent belongs in a developer message, not {role.value}")
    return _developer_text(content)


def _system_text(system: SystemContent, has_function_tools: bool) -> str:
    sections = []
    header = [
        system.model_identity,
        _labelled("Knowledge cutoff", system.knowledge_cutoff),
        _labelled("Current date", system.conversation_start_date),
    ]
    if any(line is not None for line in header):
        sections.append("\n".join(line for line in header if line is not None))
    if system.reasoning_effort is not None:
        sections.append(f"Reasoning: {system.reasoning_effort.value}")
    if system.tools:
        sections.append(render_tools_section(system.tools))
    if system.required_channels:
        channels = f"# Valid channels: {', '.join(system.required_channels)}."
        if system.channel_required:
            channels += " Channel must be included for every message."
        if has_function_tools:
            channels += (
                "\nCalls to these tools must go to the commentary channel: "
                f"'{_FUNCTIONS_NAMESPACE}'."
            )
        sections.append(channels)
    return "\n\n".join(sections)


def _developer_text(developer: DeveloperContent) -> str:
    sections = []
    if developer.instructions is not None:
        sections += ["# Instructions", developer.instructions]
    if developer.functions:
        functions = ToolNamespace(_FUNCTIONS_NAMESPACE, None, developer.functions)
        sections.append(render_tools_section([functions]))
    return "\n\n".join(sections)


def _labelled(label: str, value: str | None) -> str | None:
    return None if value is None else f"{label}: {value}"


def _defines_functions(message: Message) -> bool:
    return any(isinstance(c, DeveloperContent) and c.functions for c in message.content)
