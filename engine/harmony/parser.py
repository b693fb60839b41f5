"""Streaming parser for harmony output: token ids in, events out.

`HarmonyStreamParser.feed(token_id)` returns the events that token completes; `finish(reason)`
closes the stream. Special tokens are structure only and never reach `TextDelta` text. The parser
tolerates malformed output and never raises on it:

- A channel other than analysis/commentary/final, or none at all, is routed to `analysis`, so
  unlabelled text is never shown as the answer; `raw_channel` keeps what the model wrote.
- A header that never reaches `<|message|>` (text straight after `<|start|>assistant`) becomes
  content: when an end token arrives, or once it exceeds `max_header_tokens`, after which its
  text streams as deltas.
- Text outside any message opens an implicit assistant message. `<|start|>` or `<|channel|>`
  inside a message closes it as incomplete and begins the next header (the model skipped
  `<|end|>`). Stray `<|message|>` and `<|constrain|>`, reserved and unknown ids are ignored.
- `<|return|>` and `<|call|>` end the message and report `Stopped`; tokens after a stop are
  parsed as further messages (as in a recorded transcript). `<|endoftext|>` stops with "end".

Events per message: `MessageStarted`, `TextDelta`s, `MessageDone`; a complete assistant message
with a recipient (however it ended) is then reported as a `ToolCall`. A message cut short (stream
end, `<|start|>` or `<|channel|>` before its end token) is `complete=False` and never a tool call.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Any, Literal, Protocol, TypeAlias

from engine.harmony.conversation import Author, Channel, Message, Role, TextContent
from engine.tokenizer import FIRST_SPECIAL_ID, SpecialToken

StopReason: TypeAlias = Literal["return", "call", "length", "cancel", "end"]

DEFAULT_MAX_HEADER_TOKENS = 64
_KNOWN_CHANNELS = frozenset(c.value for c in Channel)
_END_TOKENS: dict[int, StopReason | None] = {
    SpecialToken.END: None,
    SpecialToken.RETURN: "return",
    SpecialToken.CALL: "call",
    SpecialToken.ENDOFTEXT: "end",
}
_FIRST_WORD = re.compile(rb"\S*")
_ROLE_NAMES = frozenset(r.value for r in Role)


class TokenDecoder(Protocol):
    def token_bytes(self, token_id: int) -> bytes | None:
        """The bytes of an ordinary token; None for special or unknown ids."""
        ...


@dataclass(frozen=True, slots=True)
class MessageStarted:
    role: Role
    channel: Channel
    recipient: str | None
    content_type: str | None
    author_name: str | None = None
    raw_channel: str | None = None


@dataclass(frozen=True, slots=True)
class TextDelta:
    channel: Channel
    text: str
    recipient: str | None = None


@dataclass(frozen=True, slots=True)
class MessageDone:
    role: Role
    channel: Channel
    recipient: str | None
    content_type: str | None
    text: str
    complete: bool  # False when the message was cut off (no end token)
    author_name: str | None = None
    raw_channel: str | None = None


@dataclass(frozen=True, slots=True)
class ToolCall:
    recipient: str
    arguments_json_text: str
    arguments: Any  # the parsed JSON, or None if the text is not JSON
    channel: Channel
    content_type: str | None = None


@dataclass(frozen=True, slots=True)
class Stopped:
    reason: StopReason


Event: TypeAlias = MessageStarted | TextDelta | MessageDone | ToolCall | Stopped


class _State(Enum):
    EXPECT_START = auto()
    HEADER = auto()
    CONTENT = auto()


class _RoleSource(Enum):
    GIVEN = auto()  # the prompt ended with <|start|>{role}
    FIRST_WORD = auto()  # after <|start|>: the first header word names the author
    IMPLICIT = auto()  # no <|start|>: a role word is optional, default assistant


@dataclass
class _Header:
    source: _RoleSource
    role: Role | None
    # (marker, bytes after it): marker None for the text before any <|channel|>/<|constrain|>.
    segments: list[tuple[SpecialToken | None, bytearray]] = field(
        default_factory=lambda: [(None, bytearray())]
    )
    n_tokens: int = 0


@dataclass(frozen=True)
class _ParsedHeader:
    role: Role
    author_name: str | None
    raw_channel: str | None
    recipient: str | None
    content_type: str | None
    leftover: bytes  # header text that is really content (when <|message|> never came)


@dataclass
class _OpenMessage:
    header: _ParsedHeader
    channel: Channel
    decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace")
    )
    parts: list[str] = field(default_factory=list)


class HarmonyStreamParser:
    def __init__(
        self,
        tokenizer: TokenDecoder,
        *,
        role: Role | None = Role.ASSISTANT,
        max_header_tokens: int = DEFAULT_MAX_HEADER_TOKENS,
    ) -> None:
        """`role` is the role the prompt ended with (`<|start|>assistant`); None to parse a
        stream that starts with `<|start|>`."""
        self._tokenizer = tokenizer
        self._initial_role = role
        self._max_header_tokens = max_header_tokens
        self._reset()

    def _reset(self) -> None:
        self._header: _Header | None = None
        self._message: _OpenMessage | None = None
        self._state = _State.EXPECT_START
        self._stopped = False
        if self._initial_role is not None:
            self._begin_header(_RoleSource.GIVEN, self._initial_role)

    def feed(self, token_id: int) -> list[Event]:
        events: list[Event] = []
        token_id = int(token_id)
        self._stopped = False
        if token_id >= FIRST_SPECIAL_ID:
            self._on_special(token_id, events)
        else:
            data = self._tokenizer.token_bytes(token_id)
            if data is not None:
                self._on_text(data, events)
        return events

    def feed_many(self, token_ids: Iterable[int]) -> list[Event]:
        events: list[Event] = []
        for token_id in token_ids:
            events += self.feed(token_id)
        return events

    def finish(self, reason: StopReason = "end") -> list[Event]:
        """End of stream: close any open message as incomplete and report `Stopped(reason)`,
        unless the stream already stopped on its last token. The parser is then reset."""
        events: list[Event] = []
        self._close_open(events, complete=False)
        if not self._stopped:
            events.append(Stopped(reason))
        self._reset()
        return events

    def _on_special(self, token_id: int, events: list[Event]) -> None:
        if token_id == SpecialToken.START:
            self._close_open(events, complete=False)
            self._begin_header(_RoleSource.FIRST_WORD, None)
        elif token_id in (SpecialToken.CHANNEL, SpecialToken.CONSTRAIN):
            if self._state is _State.EXPECT_START:
                self._begin_header(_RoleSource.IMPLICIT, None)
            elif self._message is not None and token_id == SpecialToken.CHANNEL:
                # Content never holds <|channel|>: the model skipped `<|end|><|start|>role`.
                role = self._message.header.role
                self._close_open(events, complete=False)
                self._begin_header(_RoleSource.GIVEN, role)
            if self._header is not None:
                self._header.segments.append((SpecialToken(token_id), bytearray()))
                self._count_header_token(events)
        elif token_id == SpecialToken.MESSAGE:
            if self._state is _State.EXPECT_START:
                self._begin_header(_RoleSource.IMPLICIT, None)
            if self._header is not None:
                self._open(_parse_header(self._header, leftover_is_content=False), events)
        elif token_id in _END_TOKENS:
            self._close_open(events, complete=True)
            reason = _END_TOKENS[token_id]
            if reason is not None:
                events.append(Stopped(reason))
                self._stopped = True

    def _on_text(self, data: bytes, events: list[Event]) -> None:
        if self._state is _State.EXPECT_START:
            self._begin_header(_RoleSource.IMPLICIT, None)
        if self._header is not None:
            self._header.segments[-1][1].extend(data)
            self._count_header_token(events)
        elif self._message is not None:
            self._emit_text(self._message.decoder.decode(data), events)

    def _begin_header(self, source: _RoleSource, role: Role | None) -> None:
        self._header = _Header(source, role)
        self._message = None
        self._state = _State.HEADER

    def _count_header_token(self, events: list[Event]) -> None:
        assert self._header is not None
        self._header.n_tokens += 1
        if self._header.n_tokens > self._max_header_tokens:
            self._open(_parse_header(self._header, leftover_is_content=True), events)

    def _open(self, header: _ParsedHeader, events: list[Event]) -> None:
        raw = header.raw_channel
        channel = Channel(raw) if raw in _KNOWN_CHANNELS else Channel.ANALYSIS
        message = _OpenMessage(header, channel)
        self._header, self._message, self._state = None, message, _State.CONTENT
        events.append(
            MessageStarted(
                header.role, channel, header.recipient, header.content_type, header.author_name, raw
            )
        )
        if header.leftover:
            self._emit_text(message.decoder.decode(header.leftover), events)

    def _emit_text(self, text: str, events: list[Event]) -> None:
        if text and self._message is not None:
            self._message.parts.append(text)
            events.append(TextDelta(self._message.channel, text, self._message.header.recipient))

    def _close_open(self, events: list[Event], *, complete: bool) -> None:
        """Close the open message, or a header that never reached <|message|> if it holds
        anything beyond the role."""
        if self._header is not None:
            parsed = _parse_header(self._header, leftover_is_content=True)
            if parsed.leftover.strip() or parsed.raw_channel or parsed.content_type:
                self._open(parsed, events)
                complete = False
        message = self._message
        if message is not None:
            self._emit_text(message.decoder.decode(b"", final=True), events)
            header = message.header
            text = "".join(message.parts)
            events.append(
                MessageDone(
                    header.role,
                    message.channel,
                    header.recipient,
                    header.content_type,
                    text,
                    complete,
                    header.author_name,
                    header.raw_channel,
                )
            )
            if complete and header.role is Role.ASSISTANT and header.recipient is not None:
                events.append(_tool_call(message, text))
        self._header, self._message, self._state = None, None, _State.EXPECT_START


def _tool_call(message: _OpenMessage, text: str) -> ToolCall:
    try:
        arguments = json.loads(text) if text.strip() else None
    except ValueError:
        arguments = None
    header = message.header
    assert header.recipient is not None
    return ToolCall(header.recipient, text, arguments, message.channel, header.content_type)


def _parse_header(header: _Header, *, leftover_is_content: bool) -> _ParsedHeader:
    """Read role, channel, recipient and content type from the header's segments.

    `<|channel|>` and `<|constrain|>` take the word right after them. With
    `leftover_is_content` (no <|message|> came), the rest is content; otherwise the remaining
    words are `to=recipient` and a content type, and extra words are ignored.
    """
    raw_channel: str | None = None
    content_type: str | None = None
    rest: list[bytes] = []
    for marker, data in header.segments:
        if marker is None:
            rest.append(bytes(data))
            continue
        word = _leading_word(data)
        rest.append(bytes(data[len(word) :]))
        if marker == SpecialToken.CHANNEL and word and raw_channel is None:
            raw_channel = _text(word)
        elif marker == SpecialToken.CONSTRAIN:
            content_type = SpecialToken.CONSTRAIN.text + _text(word)
    role, author_name, rest[0] = _read_role(header, rest[0])
    if leftover_is_content:
        leftover = b"".join(rest).lstrip()
        return _ParsedHeader(role, author_name, raw_channel, None, content_type, leftover)
    recipient: str | None = None
    bare: list[str] = []
    for word in b" ".join(rest).split():
        if word.startswith(b"to=") and recipient is None:
            recipient = _text(word[3:]) or None
        elif not word.startswith(b"to="):
            bare.append(_text(word))
    if bare and content_type is None:
        content_type = bare.pop()
    if bare and recipient is None:
        recipient = bare.pop()
    if recipient == "all":
        recipient = None
    return _ParsedHeader(role, author_name, raw_channel, recipient, content_type, b"")


def _read_role(header: _Header, text: bytes) -> tuple[Role, str | None, bytes]:
    """(role, author name, remaining text) from the header's first text segment."""
    stripped = text.lstrip()
    word = _leading_word(stripped)
    after = stripped[len(word) :]
    word_text = _text(word)
    role_name, _, author_name = word_text.partition(":")
    if header.source is _RoleSource.GIVEN:
        role = header.role or Role.ASSISTANT
        return role, None, after if word_text == role.value else text
    if role_name in _ROLE_NAMES:
        return Role(role_name), author_name or None, after
    if header.source is _RoleSource.IMPLICIT or not word:
        return Role.ASSISTANT, None, text
    # harmony writes a tool's name in place of its role: <|start|>functions.get_weather
    return Role.TOOL, word_text, after


def _leading_word(data: bytes | bytearray) -> bytes:
    match = _FIRST_WORD.match(data)
    return bytes(match.group()) if match else b""


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def parse_messages(
    token_ids: Iterable[int], tokenizer: TokenDecoder, *, role: Role | None = Role.ASSISTANT
) -> list[Message]:
    """The messages in a token stream, as conversation messages (e.g. to keep as history).

    Channels and content types are kept as the model wrote them, so re-rendering gives back the
    same tokens.
    """
    parser = HarmonyStreamParser(tokenizer, role=role)
    events = parser.feed_many(token_ids) + parser.finish()
    return [
        Message(
            Author(e.role, e.author_name),
            (TextContent(e.text),),
            e.raw_channel,
            e.recipient,
            e.content_type,
        )
        for e in events
        if isinstance(e, MessageDone)
    ]
