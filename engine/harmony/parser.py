"""Streaming parser for harmony output: token ids in, events out.

`HarmonyStreamParser.feed(token_id)` returns the events that token completes; `finish(reason)`
closes the stream. On every stream that OpenAI's `StreamableParser(encoding, role, strict=False)`
accepts, the messages (role, author name, channel, recipient, content type, text) are the same as
its messages; tests/engine/harmony/test_parser_oracle.py checks this against the library and lists
where we deliberately differ. Harmony's reading of a header, which we follow:

- The header is text, `<|channel|>` and `<|constrain|>` spelled out. `<|channel|>` takes the name
  after it, up to any Unicode whitespace or `<`. The rest is trimmed, a space is put before
  `<|constrain|>`, and it splits into words at ASCII whitespace.
- After `<|start|>` the first word is the role; an unknown word names a tool (`functions.x`).
  A word equal to the role is dropped. The last word is the recipient if it starts with `to=` or
  stands alone (`to=all` and an empty `to=` included), else the content type, with the word
  before it the recipient.
- The first message's header, when an end token comes before `<|message|>`, is content: the
  channel taken out, a leading role word dropped, ASCII whitespace runs made single spaces.

Where harmony raises, drops a message or writes special-token text, we recover and never raise:
text outside a message opens an assistant message; `<|start|>` or `<|channel|>` in a message
closes it (incomplete) and begins the next header; `<|endoftext|>` ends like `<|end|>`; other
special tokens in text are ignored; every header that ends without `<|message|>`, or runs past
`max_header_tokens`, is content; an unparsable header keeps what it can (`to=` words are
recipients, `<|constrain|> json` is one content type).

Events per message: `MessageStarted`, `TextDelta`s, `MessageDone`; a complete assistant message
with a recipient, on any channel and however it ended, is then reported as a `ToolCall`. A message
cut short (stream end, `<|start|>`/`<|channel|>` before its end token, no `<|message|>`) is
`complete=False` and never a tool call. `<|return|>` and `<|call|>` report `Stopped`; tokens
after a stop are parsed as further messages (as in a recorded transcript).
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
_ROLE_NAMES = frozenset(r.value for r in Role)
_END_TOKENS: dict[int, StopReason | None] = {
    SpecialToken.END: None,
    SpecialToken.RETURN: "return",
    SpecialToken.CALL: "call",
    SpecialToken.ENDOFTEXT: "end",
}
_CHANNEL = SpecialToken.CHANNEL.text
_CONSTRAIN = SpecialToken.CONSTRAIN.text
# Harmony is Rust: `trim` and the end of a channel name use Unicode White_Space, which (unlike
# str.isspace) excludes \x1c-\x1f; word splitting uses ASCII whitespace, which excludes \x0b.
_WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B)))
_WHITESPACE += "\u2028\u2029\u202f\u205f\u3000"
_ASCII_WHITESPACE = " \t\n\x0c\r"
_ASCII_RUN = re.compile(f"[{_ASCII_WHITESPACE}]+")
_CHANNEL_END = re.compile(f"[{_WHITESPACE}<]")
_NON_WHITESPACE_RUN = re.compile(f"([^{_WHITESPACE}]+)")


class TokenDecoder(Protocol):
    def token_bytes(self, token_id: int) -> bytes | None:
        """The bytes of an ordinary token; None for special or unknown ids."""
        ...


@dataclass(frozen=True, slots=True)
class MessageStarted:
    role: Role
    channel: Channel  # unknown or missing channels read as analysis, never as the answer
    recipient: str | None
    content_type: str | None
    author_name: str | None = None
    raw_channel: str | None = None  # the channel as written


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


class _RoleSource(Enum):
    GIVEN = auto()  # the prompt ended with <|start|>{role}
    FIRST_WORD = auto()  # after <|start|>: the first header word names the author
    IMPLICIT = auto()  # no <|start|>: a role word is optional, default assistant


@dataclass
class _Header:
    source: _RoleSource
    role: Role | None
    data: bytearray = field(default_factory=bytearray)  # markers spelled out, as harmony reads
    n_tokens: int = 0


@dataclass(frozen=True)
class _ParsedHeader:
    role: Role
    author_name: str | None
    raw_channel: str | None
    recipient: str | None = None
    content_type: str | None = None


def _decoder() -> codecs.IncrementalDecoder:
    return codecs.getincrementaldecoder("utf-8")(errors="replace")


class _SpaceCollapser:
    """Streams harmony's text for a header read as content: ASCII whitespace runs become one
    space, and whitespace at the end is held back until text follows (harmony trims it)."""

    def __init__(self) -> None:
        self._held = ""

    def feed(self, text: str) -> str:
        out = []
        for part in _NON_WHITESPACE_RUN.split(text):
            if not part:
                continue
            if part[0] in _WHITESPACE:
                self._held += part
            else:
                out += [_ASCII_RUN.sub(" ", self._held), part]
                self._held = ""
        return "".join(out)


@dataclass
class _OpenMessage:
    header: _ParsedHeader
    channel: Channel
    decoder: codecs.IncrementalDecoder = field(default_factory=_decoder)
    collapser: _SpaceCollapser | None = None  # set for a header read as content
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
        self._message: _OpenMessage | None = None  # neither: between messages
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
        self._end_header(events, keep_blank=False)
        self._close(events, complete=False)
        if not self._stopped:
            events.append(Stopped(reason))
        self._reset()
        return events

    def _on_special(self, token_id: int, events: list[Event]) -> None:
        in_content = self._message is not None
        if token_id == SpecialToken.START:
            self._end_header(events, keep_blank=False)
            self._close(events, complete=False)
            self._begin_header(_RoleSource.FIRST_WORD, None)
        elif token_id in (SpecialToken.CHANNEL, SpecialToken.CONSTRAIN, SpecialToken.MESSAGE):
            if self._message is not None:
                if token_id != SpecialToken.CHANNEL:
                    return  # stray <|message|>/<|constrain|>: harmony would write their text
                # Content never holds <|channel|>: the model skipped `<|end|><|start|>role`.
                role = self._message.header.role
                self._close(events, complete=False)
                self._begin_header(_RoleSource.GIVEN, role)
            elif self._header is None:
                self._begin_header(_RoleSource.IMPLICIT, None)
            header = self._header
            assert header is not None
            if token_id == SpecialToken.MESSAGE:
                self._open(_parse_header(header), events)
            else:
                self._add_to_header(SpecialToken(token_id).text.encode(), events)
        elif token_id in _END_TOKENS:
            self._end_header(events, keep_blank=True)
            self._close(events, complete=in_content)
            reason = _END_TOKENS[token_id]
            if reason is not None:
                events.append(Stopped(reason))
                self._stopped = True

    def _on_text(self, data: bytes, events: list[Event]) -> None:
        if self._header is None and self._message is None:
            self._begin_header(_RoleSource.IMPLICIT, None)
        if self._header is not None:
            self._add_to_header(data, events)
        elif self._message is not None:
            self._emit_text(self._message.decoder.decode(data), events)

    def _begin_header(self, source: _RoleSource, role: Role | None) -> None:
        self._header = _Header(source, role)
        self._message = None

    def _add_to_header(self, data: bytes, events: list[Event]) -> None:
        assert self._header is not None
        self._header.data += data
        self._header.n_tokens += 1
        if self._header.n_tokens > self._max_header_tokens:
            self._open_header_as_content(events)

    def _end_header(self, events: list[Event], *, keep_blank: bool) -> None:
        """A header that never reached <|message|> is content. At an end token any header
        counts, as in harmony; otherwise only one with text or a channel."""
        header = self._header
        if header is None:
            return
        parsed, content = _header_as_content(bytes(header.data).decode(errors="replace"), header)
        if header.n_tokens and (keep_blank or content.strip(_WHITESPACE) or parsed.raw_channel):
            self._open_header_as_content(events)
        else:
            self._header = None

    def _open_header_as_content(self, events: list[Event]) -> None:
        assert self._header is not None
        decoder = _decoder()  # keeps a character split at the header's end for the content
        header, content = _header_as_content(decoder.decode(self._header.data), self._header)
        self._open(header, events, decoder, _SpaceCollapser())
        self._emit_text(content, events)

    def _open(
        self,
        header: _ParsedHeader,
        events: list[Event],
        decoder: codecs.IncrementalDecoder | None = None,
        collapser: _SpaceCollapser | None = None,
    ) -> None:
        raw = header.raw_channel
        channel = Channel(raw) if raw in _KNOWN_CHANNELS else Channel.ANALYSIS
        message = _OpenMessage(header, channel, decoder or _decoder(), collapser)
        self._header, self._message = None, message
        events.append(
            MessageStarted(
                header.role, channel, header.recipient, header.content_type, header.author_name, raw
            )
        )

    def _emit_text(self, text: str, events: list[Event]) -> None:
        message = self._message
        if message is None:
            return
        if message.collapser is not None:
            text = message.collapser.feed(text)
        if text:
            message.parts.append(text)
            events.append(TextDelta(message.channel, text, message.header.recipient))

    def _close(self, events: list[Event], *, complete: bool) -> None:
        message = self._message
        if message is not None:
            self._emit_text(message.decoder.decode(b"", final=True), events)
            header = message.header
            text = "".join(message.parts)
            complete = complete and message.collapser is None
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
        self._header, self._message = None, None


def _tool_call(message: _OpenMessage, text: str) -> ToolCall:
    try:
        arguments = json.loads(text) if text.strip() else None
    except ValueError:
        arguments = None
    header = message.header
    assert header.recipient is not None
    return ToolCall(header.recipient, text, arguments, message.channel, header.content_type)


# -- reading a header, as harmony does ------------------------------------------------------


def _take_channel(text: str) -> tuple[str | None, str]:
    """The channel name and the header without `<|channel|>name`. Harmony reads one marker and
    raises on an empty name; we take out every marker and keep the first name."""
    channel = None
    while (at := text.find(_CHANNEL)) >= 0:
        after = text[at + len(_CHANNEL) :]
        end = _CHANNEL_END.search(after)
        name = after[: end.start()] if end else after
        channel = channel or name or None
        text = text[:at] + after[len(name) :]
    return channel, text


def _words(text: str) -> list[str]:
    return [w for w in _ASCII_RUN.split(text) if w]


def _read_role(header: _Header, words: list[str]) -> tuple[Role, str | None, list[str]]:
    """(role, author name, the words after the role)."""
    first = words[0] if words else None
    if header.source is _RoleSource.GIVEN:
        role, name = header.role or Role.ASSISTANT, None
    elif first in _ROLE_NAMES:
        role = Role(first)
        name = first if role is Role.TOOL else None  # harmony names a `tool` author "tool"
    elif header.source is _RoleSource.IMPLICIT or first is None:
        role, name = Role.ASSISTANT, None
    else:  # harmony writes a tool's name in place of its role: <|start|>functions.get_weather
        role, name, words = Role.TOOL, first, words[1:]
    if words and words[0] == role.value:
        words = words[1:]
    return role, name, words


def _parse_header(header: _Header) -> _ParsedHeader:
    channel, rest = _take_channel(bytes(header.data).decode("utf-8", errors="replace"))
    rest = rest.strip(_WHITESPACE)
    if _CONSTRAIN in rest:
        rest = rest.replace(_CONSTRAIN, " " + _CONSTRAIN).strip(_WHITESPACE)
    role, name, words = _read_role(header, _words(rest))
    recipient, content_type = _harmony_address(words) or _recovered_address(words)
    return _ParsedHeader(role, name, channel, recipient, content_type)


def _harmony_address(words: list[str]) -> tuple[str | None, str | None] | None:
    """(recipient, content type) by harmony's rule, or None where harmony raises (words left
    over) or would make `<|constrain|>json` the recipient."""
    if not words:
        return None, None
    *rest, last = words
    if last.startswith("to="):
        recipient, content_type = last[3:], None
    elif not rest:
        recipient, content_type = last, None
    else:
        recipient, content_type = rest.pop().removeprefix("to="), last
    if rest or recipient.startswith(_CONSTRAIN):
        return None
    return recipient, content_type


def _recovered_address(words: list[str]) -> tuple[str | None, str | None]:
    """What a malformed header most likely meant: `to=` words are recipients, `<|constrain|>`
    is joined to the word after it, and a lone word is still a recipient."""
    merged: list[str] = []
    for word in words:
        if merged and merged[-1] == _CONSTRAIN and not word.startswith(("to=", _CONSTRAIN)):
            merged[-1] += word
        else:
            merged.append(word)
    recipient = next((w[3:] for w in merged if w.startswith("to=")), None)
    content_type = next((w for w in merged if w.startswith(_CONSTRAIN)), None)
    bare = [w for w in merged if not w.startswith(("to=", _CONSTRAIN))]
    if recipient is None and bare:
        recipient = bare.pop(0)
    if content_type is None and bare:
        content_type = bare.pop()
    return recipient, content_type


def _header_as_content(text: str, header: _Header) -> tuple[_ParsedHeader, str]:
    """Harmony's reading of a first header that ended without `<|message|>`: the channel, and
    the rest as text without a leading role word, for a `_SpaceCollapser` (which trims its end).
    `<|constrain|>` is dropped, not written out as harmony does."""
    channel, rest = _take_channel(text)
    rest = rest.replace(_CONSTRAIN, "").lstrip(_WHITESPACE)
    first = _ASCII_RUN.split(rest.rstrip(_WHITESPACE), maxsplit=1)[0]
    role = header.role if header.source is _RoleSource.GIVEN else None
    if role is None:
        role = Role(first) if first in _ROLE_NAMES else Role.ASSISTANT
    if first == role.value:
        rest = rest[len(first) :].lstrip(_ASCII_WHITESPACE)
    return _ParsedHeader(role, None, channel), rest


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
