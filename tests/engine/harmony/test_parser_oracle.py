"""Our streaming parser against openai-harmony 0.0.8's `StreamableParser(strict=False)`, the
oracle, with the real o200k vocabulary: harmony-rendered completions, model-style headers, and
mutated or malformed streams must give the same messages (role, author, channel, recipient,
content type, text).

Where we deliberately differ, the oracle's own behaviour says so (it raises, drops a message,
writes special-token text, or is still reading a long header), and only the messages before that
point must agree. KNOWN_DIFFERENCES is the whole list; each entry has a test of its own below.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import openai_harmony as oh
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.harmony import (
    CONSTRAIN_JSON,
    Conversation,
    MessageDone,
    MessageStarted,
    Role,
    TextDelta,
)
from engine.harmony import Message as OurMessage
from engine.harmony.parser import DEFAULT_MAX_HEADER_TOKENS, HarmonyStreamParser
from engine.testing.real_vocab import RealVocabFiles
from engine.tokenizer import FIRST_SPECIAL_ID, HarmonyTokenizer, SpecialToken

from .strategies import body_messages, conversations, texts, to_harmony, to_harmony_message

S = SpecialToken
KNOWN_DIFFERENCES = {
    "raises": "harmony raises (text after a message without <|start|>, an unknown role or extra "
    "header words, an empty channel name, undecodable bytes or end of stream in a header); we "
    "recover so the chat still gets the text",
    "leaks": "harmony writes special-token text into a message (<|start|>, <|channel|>, "
    "<|message|>, <|endoftext|>, reserved ids in content or header; <|constrain|>json as the "
    "recipient); we act on the token or drop it and never show special-token text",
    "drops": "harmony silently drops a message whose header (after <|start|>) ends with an end "
    "token; we keep it as content, as harmony does for the first message",
    "long_header": "harmony waits for <|message|> however long the header; we stream a header "
    "longer than max_header_tokens as content so a model that forgot <|message|> is seen",
}
STOPS = frozenset({S.END, S.RETURN, S.CALL})
HEADER_MARKERS = frozenset({S.CHANNEL, S.CONSTRAIN, S.MESSAGE, *STOPS})
EXAMPLES = int(os.environ.get("OSS_DESK_ORACLE_EXAMPLES", "60"))
ORACLE = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Read by hand for the issue's closing note: streams compared, and how each comparison ended.
COUNTS: Counter[str] = Counter()

MessageTuple = tuple[str, str | None, str | None, str | None, str | None, str]


@dataclass(frozen=True)
class Oracle:
    encoding: oh.HarmonyEncoding
    tok: HarmonyTokenizer


@pytest.fixture(scope="session")
def oracle(real_vocab: RealVocabFiles) -> Oracle:
    encoding = oh.load_harmony_encoding(oh.HarmonyEncodingName.HARMONY_GPT_OSS)
    return Oracle(encoding, HarmonyTokenizer.from_tiktoken_file(real_vocab.tiktoken_file))


@dataclass(frozen=True)
class HarmonyResult:
    messages: list[MessageTuple]
    agree_until: int | None  # None: every message must agree; else only the first n
    reason: str | None  # the KNOWN_DIFFERENCES entry that allows the rest to differ


def harmony_parse(
    encoding: oh.HarmonyEncoding, ids: Sequence[int], role: Role | None
) -> HarmonyResult:
    """Feed the oracle token by token, watching its state for the known differences."""
    parser = oh.StreamableParser(
        encoding, None if role is None else oh.Role(role.value), strict=False
    )
    first_header = role is not None  # harmony keeps a first header that ends without <|message|>
    header_len = channels = constrains = 0
    found: list[tuple[int, str]] = []

    def differ(reason: str) -> None:
        found.append((len(parser.messages), reason))

    for token in ids:
        state = parser.state
        special = token >= FIRST_SPECIAL_ID
        if state is oh.StreamState.HEADER:
            if token in STOPS and header_len and (not first_header or constrains):
                differ("drops" if not first_header else "leaks")
            if token in STOPS or token == S.MESSAGE:
                first_header, header_len, channels, constrains = False, 0, 0, 0
            else:
                header_len += 1
                channels += token == S.CHANNEL
                constrains += token == S.CONSTRAIN
                if (special and token not in HEADER_MARKERS) or channels > 1:
                    differ("leaks")
                if header_len > DEFAULT_MAX_HEADER_TOKENS:
                    differ("long_header")
        elif state is oh.StreamState.CONTENT and special and token not in STOPS:
            differ("leaks")
        try:
            parser.process(token)
        except Exception:
            differ("raises")
            break
    else:
        try:
            parser.process_eos()
        except Exception:
            differ("raises")
    messages = [_harmony_tuple(m) for m in parser.messages]
    for i, message in enumerate(messages):
        _, _, _, recipient, content_type, _ = message
        content_type = (content_type or "").removeprefix(S.CONSTRAIN.text)
        if "<|" in (recipient or "") or "<|" in content_type:
            found.append((i, "leaks"))
    if not found:
        return HarmonyResult(messages, None, None)
    at, reason = min(found)
    return HarmonyResult(messages, at, reason)


def _harmony_tuple(message: oh.Message) -> MessageTuple:
    text = "".join(c.text for c in message.content if isinstance(c, oh.TextContent))
    author = message.author
    return (
        author.role.value,
        author.name,
        message.channel,
        message.recipient,
        message.content_type,
        text,
    )


def our_parse(tok: HarmonyTokenizer, ids: Sequence[int], role: Role | None) -> list[MessageTuple]:
    parser = HarmonyStreamParser(tok, role=role)
    events = parser.feed_many(ids) + parser.finish()
    pieces: list[str] = []
    messages: list[MessageTuple] = []
    for e in events:
        if isinstance(e, TextDelta):
            pieces.append(e.text)
        elif isinstance(e, MessageDone):
            assert e.text == "".join(pieces)
            pieces = []
            messages.append(
                (e.role.value, e.author_name, e.raw_channel, e.recipient, e.content_type, e.text)
            )
    return messages


def check_against_oracle(oracle: Oracle, ids: Sequence[int], role: Role | None) -> HarmonyResult:
    expected = harmony_parse(oracle.encoding, ids, role)
    ours = our_parse(oracle.tok, ids, role)
    COUNTS["streams"] += 1
    if expected.reason is None:
        assert ours == expected.messages, _explain(oracle, ids, role)
        COUNTS["identical"] += 1
        COUNTS["messages"] += len(ours)
    else:
        assert expected.reason in KNOWN_DIFFERENCES
        n = expected.agree_until or 0
        assert ours[:n] == expected.messages[:n], _explain(oracle, ids, role)
        COUNTS[f"differ:{expected.reason}"] += 1
        COUNTS["messages"] += n
    return expected


def check_streaming(oracle: Oracle, ids: Sequence[int], role: Role | None) -> None:
    """Token by token, while harmony is inside a message: the same header, the same text so far
    and the same delta (`current_*`, `current_content`, `last_content_delta`)."""
    harmony_role = None if role is None else oh.Role(role.value)
    harmony = oh.StreamableParser(oracle.encoding, harmony_role, strict=False)
    ours = HarmonyStreamParser(oracle.tok, role=role)
    started: MessageStarted | None = None
    text = ""
    for token in ids:
        harmony.process(token)
        delta = ""
        for event in ours.feed(token):
            if isinstance(event, MessageStarted):
                started, text = event, ""
            elif isinstance(event, TextDelta):
                delta += event.text
            elif isinstance(event, MessageDone):
                started = None
        text += delta
        if harmony.state is not oh.StreamState.CONTENT:
            assert started is None
            continue
        assert started is not None
        assert (
            started.role.value,
            started.raw_channel,
            started.recipient,
            started.content_type,
        ) == (
            harmony.current_role and harmony.current_role.value,
            harmony.current_channel,
            harmony.current_recipient,
            harmony.current_content_type,
        )
        assert (text, delta or None) == (harmony.current_content, harmony.last_content_delta)
    COUNTS["streamed_tokens"] += len(ids)


def _explain(oracle: Oracle, ids: Sequence[int], role: Role | None) -> str:
    text = oracle.tok.decode(list(ids))
    return f"role={role} stream={text!r} ids={list(ids)}"


# -- streams ----------------------------------------------------------------------------------


def strip_opening(tok: HarmonyTokenizer, ids: list[int]) -> list[int]:
    """What the model samples after a prompt ending `<|start|>assistant`."""
    opening = [int(S.START), *tok.encode_ordinary("assistant")]
    assert ids[: len(opening)] == opening
    return ids[len(opening) :]


def render_with_harmony(oracle: Oracle, messages: Sequence[OurMessage]) -> list[int]:
    ids: list[int] = []
    for message in messages:
        ids += oracle.encoding.render(to_harmony_message(message))
    return ids


@st.composite
def well_formed_assistant_messages(draw: st.DrawFn) -> OurMessage:
    """What gpt-oss is trained to write: analysis, commentary preambles, final answers, and
    tool calls on commentary or analysis (`<|constrain|>json`, or `code` for built-in tools)."""
    channel = draw(st.sampled_from(["analysis", "commentary", "final"]))
    if draw(st.booleans()):
        return OurMessage.assistant(draw(texts(40)), channel=channel)
    return OurMessage.tool_call(
        draw(st.sampled_from(["functions.get_weather", "browser.search", "python"])),
        draw(texts(30)),
        channel=channel,
        content_type=draw(st.sampled_from([CONSTRAIN_JSON, CONSTRAIN_JSON, "code", "json", None])),
    )


odd_assistant_messages = body_messages().filter(lambda m: m.role is Role.ASSISTANT)
CHANNELS = ["analysis", "commentary", "final", "comment ary", "最終", "fi<nal", ""]
RECIPIENTS = ["functions.get_weather", "browser.search", "python", "all", "", "functions.f x"]
CONTENT_TYPES = [None, "json", "code", "<|constrain|>json", "<|constrain|> json"]
SPACES = [" ", "  ", "\t", "\n", "\u00a0", "\u3000", "\u2028", "\x0b", "\x1c", "\x85", ""]
# Words and bytes the model may drop anywhere: roles, header words, a lone `<`, broken UTF-8.
JUNK = ["assistant", "user", "tool", "to=x", "to=", "json", "<", "functions.f", "\U0001f600"]
BYTES = [0x80, 0xE6, 0xF0, 0xC3, 0xFF]


@st.composite
def model_style_messages(draw: st.DrawFn, oracle: Oracle) -> list[int]:
    """An assistant message as gpt-oss writes it: the recipient after the channel, optional
    pieces in either order, odd whitespace and unicode between them."""
    tok = oracle.tok
    space = st.sampled_from(SPACES)
    pieces: list[str | SpecialToken] = [S.START, "assistant"]
    channel = draw(st.sampled_from([*CHANNELS, None]))
    recipient = draw(st.sampled_from([*RECIPIENTS, None]))
    address: list[str | SpecialToken] = []
    if recipient is not None:
        address += [draw(space), f"to={recipient}"]
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    if content_type is not None:
        address += [draw(space), *_constrain_pieces(content_type)]
    channel_pieces: list[str | SpecialToken] = [] if channel is None else [S.CHANNEL, channel]
    if draw(st.booleans()):
        pieces += [*channel_pieces, *address]
    else:
        pieces += [*address, *channel_pieces]
    pieces += [draw(space)] if draw(st.booleans()) else []
    pieces += [S.MESSAGE, draw(texts(30))]
    pieces.append(draw(st.sampled_from([S.END, S.RETURN, S.CALL])))
    ids: list[int] = []
    for piece in pieces:
        ids += [int(piece)] if isinstance(piece, SpecialToken) else tok.encode_ordinary(piece)
    return ids


def _constrain_pieces(content_type: str) -> list[str | SpecialToken]:
    if content_type.startswith(S.CONSTRAIN.text):
        return [S.CONSTRAIN, content_type.removeprefix(S.CONSTRAIN.text)]
    return [content_type]


@st.composite
def harmony_completions(draw: st.DrawFn, oracle: Oracle) -> list[int]:
    """Well-formed assistant turns, rendered by harmony (the recipient before the channel)."""
    messages = draw(st.lists(well_formed_assistant_messages(), min_size=1, max_size=4))
    ids = render_with_harmony(oracle, messages)
    if ids[-1] == S.END and draw(st.booleans()):
        ids[-1] = int(S.RETURN)
    return ids


@st.composite
def any_completions(draw: st.DrawFn, oracle: Oracle) -> list[int]:
    """Harmony-rendered messages of every shape mixed with model-style ones."""
    ids: list[int] = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["well_formed", "odd", "model_style"]))
        if kind == "model_style":
            ids += draw(model_style_messages(oracle))
        else:
            source = (
                well_formed_assistant_messages()
                if kind == "well_formed"
                else odd_assistant_messages
            )
            ids += render_with_harmony(oracle, [draw(source)])
    return ids


@st.composite
def mutated(draw: st.DrawFn, streams: st.SearchStrategy[list[int]], oracle: Oracle) -> list[int]:
    ids = list(draw(streams))
    specials = st.sampled_from([*map(int, SpecialToken), 200001, 200013, 201087, 201088])
    encoding = oracle.tok.encoding
    junk = st.one_of(
        st.sampled_from(JUNK + SPACES).map(oracle.tok.encode_ordinary),
        st.sampled_from(BYTES).map(lambda b: [encoding.encode_single_token(bytes([b]))]),
        st.lists(st.integers(0, FIRST_SPECIAL_ID - 1), min_size=1, max_size=3),
    )
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(ids)))
        op = draw(st.sampled_from(["delete", "special", "junk", "duplicate", "swap", "truncate"]))
        if op == "delete" and at < len(ids):
            del ids[at]
        elif op == "special":
            ids.insert(at, draw(specials))
        elif op == "junk":
            ids[at:at] = draw(junk)
        elif op == "duplicate" and at < len(ids):
            ids.insert(at, ids[at])
        elif op == "swap" and at + 1 < len(ids):
            ids[at], ids[at + 1] = ids[at + 1], ids[at]
        elif op == "truncate":
            ids = ids[:at]
    return ids


# -- conformance --------------------------------------------------------------------------------


@ORACLE
@given(data=st.data())
def test_well_formed_completions_parse_exactly_as_harmony(
    oracle: Oracle, data: st.DataObject
) -> None:
    ids = data.draw(harmony_completions(oracle))
    assert check_against_oracle(oracle, ids, None).reason is None
    completion = strip_opening(oracle.tok, ids)
    assert check_against_oracle(oracle, completion, Role.ASSISTANT).reason is None
    check_streaming(oracle, completion, Role.ASSISTANT)


@ORACLE
@given(data=st.data())
def test_model_style_and_odd_completions_parse_the_same(
    oracle: Oracle, data: st.DataObject
) -> None:
    ids = data.draw(any_completions(oracle))
    check_against_oracle(oracle, ids, None)
    if ids[:1] == [S.START]:
        check_against_oracle(oracle, strip_opening(oracle.tok, ids), Role.ASSISTANT)


@ORACLE
@given(data=st.data())
def test_every_truncation_of_a_completion_parses_the_same(
    oracle: Oracle, data: st.DataObject
) -> None:
    ids = strip_opening(oracle.tok, data.draw(harmony_completions(oracle)))
    for end in range(len(ids) + 1):
        assert check_against_oracle(oracle, ids[:end], Role.ASSISTANT).reason in (None, "raises")


@ORACLE
@given(data=st.data(), role=st.sampled_from([Role.ASSISTANT, None]))
def test_mutated_and_malformed_completions_parse_the_same(
    oracle: Oracle, data: st.DataObject, role: Role | None
) -> None:
    ids = data.draw(mutated(any_completions(oracle), oracle))
    opening = [int(S.START), *oracle.tok.encode_ordinary("assistant")]
    if role is Role.ASSISTANT and ids[: len(opening)] == opening:
        ids = ids[len(opening) :]
    check_against_oracle(oracle, ids, role)


@ORACLE
@given(conversation=conversations(), drop=st.booleans())
def test_rendered_conversations_parse_the_same(
    oracle: Oracle, conversation: Conversation, drop: bool
) -> None:
    config = oh.RenderConversationConfig(auto_drop_analysis=drop)
    ids = oracle.encoding.render_conversation_for_training(to_harmony(conversation), config)
    check_against_oracle(oracle, ids, None)


# -- the differences the issue listed, now identical --------------------------------------------

ISSUE_CASES = {
    # A lone header word is a recipient, not a content type.
    "<|channel|>commentary functions.get_weather<|message|>{}<|call|>": (
        "commentary",
        "functions.get_weather",
        None,
        "{}",
    ),
    "<|channel|>final json<|message|>x<|end|>": ("final", "json", None, "x"),
    # `to=all` and an empty `to=` are kept.
    "<|channel|>commentary to=all<|message|>Checking.<|end|>": (
        "commentary",
        "all",
        None,
        "Checking.",
    ),
    "<|channel|>commentary to= <|constrain|>json<|message|>{}<|call|>": (
        "commentary",
        "",
        "<|constrain|>json",
        "{}",
    ),
    # A channel name ends at any Unicode whitespace or `<`, not only at ASCII whitespace.
    "<|channel|>commentary\u00a0to=functions.f<|message|>{}<|call|>": (
        "commentary",
        "functions.f",
        None,
        "{}",
    ),
    "<|channel|>final\u3000<|message|>x<|end|>": ("final", None, None, "x"),
    "<|channel|>fi<nal<|message|>x<|end|>": ("fi", "<nal", None, "x"),
    "<|channel|>final\x1cx<|message|>y<|end|>": ("final\x1cx", None, None, "y"),
    # A first message that never reaches <|message|>: the role word alone is an empty message,
    # and the rest of the header is the text, whitespace collapsed.
    "assistant<|end|>": (None, None, None, ""),
    " \n<|return|>": (None, None, None, ""),
    "<|channel|>final The answer:\n\n  4.<|return|>": ("final", None, None, "The answer: 4."),
    "assistant \u00a0 hi<|end|>": (None, None, None, "\u00a0 hi"),
}


@pytest.mark.parametrize("text", list(ISSUE_CASES))
def test_issue_cases_parse_as_harmony(oracle: Oracle, text: str) -> None:
    ids = oracle.tok.encode(text, allowed_special="all")
    result = check_against_oracle(oracle, ids, Role.ASSISTANT)
    assert result.reason is None
    (message,) = result.messages
    assert message[2:] == ISSUE_CASES[text]


# -- the known differences, one test each ---------------------------------------------------------


def _run(
    oracle: Oracle, text: str, role: Role | None = Role.ASSISTANT
) -> tuple[HarmonyResult, list[MessageTuple]]:
    ids = oracle.tok.encode(text, allowed_special="all")
    return check_against_oracle(oracle, ids, role), our_parse(oracle.tok, ids, role)


def test_difference_raises_text_after_a_message_without_start(oracle: Oracle) -> None:
    harmony, ours = _run(oracle, "<|channel|>analysis<|message|>a<|end|>The answer.<|return|>")
    assert (harmony.reason, harmony.agree_until) == ("raises", 1)
    assert [m[5] for m in ours] == ["a", "The answer."]


def test_difference_raises_constrain_with_a_space(oracle: Oracle) -> None:
    harmony, ours = _run(
        oracle, "<|channel|>commentary to=functions.f <|constrain|> json<|message|>{}<|call|>"
    )
    assert harmony.reason == "raises" and harmony.messages == []
    assert ours == [("assistant", None, "commentary", "functions.f", "<|constrain|>json", "{}")]


def test_difference_raises_at_end_of_stream_in_a_header(oracle: Oracle) -> None:
    harmony, ours = _run(oracle, "<|channel|>final The answer is 4")
    assert harmony.reason == "raises"
    assert ours == [("assistant", None, "final", None, None, "The answer is 4")]


def test_difference_leaks_special_tokens_inside_content(oracle: Oracle) -> None:
    text = "<|channel|>analysis<|message|>think<|channel|>final<|message|>Answer<|return|>"
    harmony, ours = _run(oracle, text)
    assert harmony.reason == "leaks"
    assert harmony.messages[0][5] == "think<|channel|>final<|message|>Answer"
    assert [(m[2], m[5]) for m in ours] == [("analysis", "think"), ("final", "Answer")]


def test_difference_leaks_constrain_as_recipient(oracle: Oracle) -> None:
    harmony, ours = _run(oracle, "<|channel|>commentary <|constrain|>json<|message|>{}<|end|>")
    assert harmony.reason == "leaks" and harmony.messages[0][3] == "<|constrain|>json"
    assert ours == [("assistant", None, "commentary", None, "<|constrain|>json", "{}")]


def test_difference_drops_a_later_header_ending_without_message(oracle: Oracle) -> None:
    text = "<|channel|>analysis<|message|>a<|end|><|start|>assistant<|channel|>final 4.<|return|>"
    harmony, ours = _run(oracle, text)
    assert harmony.reason == "drops" and len(harmony.messages) == 1
    assert [(m[2], m[5]) for m in ours] == [("analysis", "a"), ("final", "4.")]


def test_difference_long_header_streams_as_content(oracle: Oracle) -> None:
    words = "word " * DEFAULT_MAX_HEADER_TOKENS
    ids = oracle.tok.encode(f"<|channel|>final {words}<|return|>", allowed_special="all")
    parser = HarmonyStreamParser(oracle.tok)
    streamed = parser.feed_many(ids[:-1])
    assert "".join(e.text for e in streamed if isinstance(e, TextDelta))  # before the end
    harmony = check_against_oracle(oracle, ids, Role.ASSISTANT)
    assert harmony.reason == "long_header"
    # Harmony's text is the same here; the difference is only when harmony sees it.
    assert harmony.messages[0][5] == our_parse(oracle.tok, ids, Role.ASSISTANT)[0][5]


def test_every_known_difference_has_a_test() -> None:
    names = [n for n in globals() if n.startswith("test_difference_")]
    assert {r for r in KNOWN_DIFFERENCES if any(f"_{r}_" in n for n in names)} == set(
        KNOWN_DIFFERENCES
    )
