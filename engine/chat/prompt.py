"""The token ids of a chat prompt, and where in them a KV-cache snapshot is worth keeping."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from engine.harmony import (
    Channel,
    Conversation,
    DeveloperContent,
    Message,
    Rendering,
    Role,
    drop_earlier_turns_analysis,
    render_message,
)
from engine.harmony.render import TextEncoder
from engine.tokenizer import SpecialToken

# Sampling stops on these; <|endoftext|> is the base model's end and never part of a chat.
TERMINAL_TOKENS = frozenset({SpecialToken.RETURN, SpecialToken.CALL, SpecialToken.ENDOFTEXT})


@dataclass(frozen=True)
class Prompt:
    """`ids` ends with `<|start|>assistant`. `marks` are offsets to snapshot the cache at: the
    end of the system message and of the developer message (new instructions or tools re-read
    only what follows), the start of the last user message (to edit it) and the last two
    positions (to answer again, and to keep the prompt when the reply's analysis is dropped
    next turn)."""

    ids: tuple[int, ...]
    marks: frozenset[int]


def build_prompt(tokenizer: TextEncoder, conversation: Conversation) -> Prompt:
    """Earlier turns' analysis is dropped, as OpenAI asks for multi-turn chat; then the same
    tokens as `render_for_completion`, rendered message by message to find the boundaries."""
    messages = drop_earlier_turns_analysis(conversation).messages
    has_functions = any(
        isinstance(c, DeveloperContent) and c.functions for m in messages for c in m.content
    )
    ids: list[int] = []
    last_user = 0
    heads: list[int] = []  # where the leading system and developer messages end
    for i, message in enumerate(messages):
        if message.role is Role.USER:
            last_user = len(ids)
        ids += render_message(message, has_function_tools=has_functions).token_ids(tokenizer)
        if i == len(heads) and message.role in (Role.SYSTEM, Role.DEVELOPER):
            heads.append(len(ids))
    ids += Rendering((SpecialToken.START, Role.ASSISTANT.value)).token_ids(tokenizer)
    marks = frozenset(m for m in (*heads, last_user, len(ids) - 1, len(ids)) if m > 0)
    return Prompt(tuple(ids), marks)


def final_header_ids(tokenizer: TextEncoder, *, close_message: bool) -> list[int]:
    """`[<|end|>]<|start|>assistant<|channel|>final<|message|>`: what the session writes to end
    the analysis and make the model answer."""
    pieces = (SpecialToken.START, Role.ASSISTANT.value, SpecialToken.CHANNEL, Channel.FINAL.value)
    ids = Rendering((*pieces, SpecialToken.MESSAGE)).token_ids(tokenizer)
    return [int(SpecialToken.END), *ids] if close_message else ids


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def last_user_index(messages: Iterable[Message]) -> int | None:
    found = None
    for i, message in enumerate(messages):
        if message.role is Role.USER:
            found = i
    return found
