"""Streaming parser: unit cases, harmony's parser test data, and properties over random streams."""

from __future__ import annotations

import json
from collections.abc import Sequence

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.harmony import (
    Author,
    Channel,
    Conversation,
    Event,
    HarmonyStreamParser,
    Message,
    MessageDone,
    MessageStarted,
    Role,
    Stopped,
    StopReason,
    TextContent,
    TextDelta,
    ToolCall,
    parse_messages,
    render_conversation,
)
from engine.harmony.parser import TokenDecoder
from engine.testing.synthetic_tokenizer import synthetic_tokenizer
from engine.tokenizer import FIRST_SPECIAL_ID, N_VOCAB, HarmonyTokenizer, SpecialToken

from . import read_golden

TOK = synthetic_tokenizer()
S = SpecialToken


def run(
    text_or_ids: str | Sequence[int],
    *,
    role: Role | None = Role.ASSISTANT,
    reason: StopReason = "end",
    decoder: TokenDecoder = TOK,
) -> list[Event]:
    if isinstance(text_or_ids, str):
        ids: Sequence[int] = TOK.encode(text_or_ids, allowed_special="all")
    else:
        ids = text_or_ids
    parser = HarmonyStreamParser(decoder, role=role)
    events = parser.feed_many(ids)
    return events + parser.finish(reason)


def done(events: list[Event]) -> list[MessageDone]:
    return [e for e in events if isinstance(e, MessageDone)]


def deltas(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def stops(events: list[Event]) -> list[StopReason]:
    return [e.reason for e in events if isinstance(e, Stopped)]


# -- well-formed output ---------------------------------------------------------------------


def test_analysis_then_final_answer() -> None:
    events = run(
        "<|channel|>analysis<|message|>Think.<|end|>"
        "<|start|>assistant<|channel|>final<|message|>The answer is 4.<|return|>"
    )
    kinds = [type(e).__name__ for e in events]
    collapsed = [k for i, k in enumerate(kinds) if i == 0 or k != kinds[i - 1]]
    assert collapsed == [
        "MessageStarted",
        "TextDelta",
        "MessageDone",
        "MessageStarted",
        "TextDelta",
        "MessageDone",
        "Stopped",
    ]
    first, second = done(events)
    assert (first.channel, first.text, first.complete) == (Channel.ANALYSIS, "Think.", True)
    assert (second.channel, second.text) == (Channel.FINAL, "The answer is 4.")
    assert stops(events) == ["return"]


def test_function_call_reports_parsed_arguments_and_stops() -> None:
    events = run(
        "<|channel|>commentary to=functions.get_current_weather <|constrain|>json<|message|>"
        '{"location": "San Francisco"}<|call|>'
    )
    started = next(e for e in events if isinstance(e, MessageStarted))
    assert started.recipient == "functions.get_current_weather"
    assert started.content_type == "<|constrain|>json"
    call = next(e for e in events if isinstance(e, ToolCall))
    assert call.recipient == "functions.get_current_weather"
    assert call.arguments == {"location": "San Francisco"}
    assert call.arguments_json_text == '{"location": "San Francisco"}'
    assert call.channel == Channel.COMMENTARY
    assert stops(events) == ["call"]
    assert isinstance(events[-1], Stopped)


def test_recipient_before_channel_and_constrain_without_space() -> None:
    events = run(
        "<|start|>assistant to=functions.f<|channel|>commentary<|constrain|>json<|message|>{}"
        "<|call|>",
        role=None,
    )
    call = next(e for e in events if isinstance(e, ToolCall))
    assert (call.recipient, call.arguments, call.content_type) == (
        "functions.f",
        {},
        "<|constrain|>json",
    )


def test_invalid_json_arguments_are_kept_as_text() -> None:
    events = run("<|channel|>analysis to=python code<|message|>print(1)<|call|>")
    call = next(e for e in events if isinstance(e, ToolCall))
    assert (call.recipient, call.arguments_json_text, call.arguments) == (
        "python",
        "print(1)",
        None,
    )
    assert call.content_type == "code"


def _partial_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def test_multibyte_characters_split_across_tokens_are_decoded_whole() -> None:
    text = "héllo wörld 🎉 日本"
    content = TOK.encode_ordinary(text)
    assert any(_partial_utf8(TOK.decode_bytes([t])) for t in content)  # the case under test
    events = run([S.CHANNEL, *TOK.encode_ordinary("final"), S.MESSAGE, *content, S.RETURN])
    pieces = [e.text for e in events if isinstance(e, TextDelta)]
    assert "".join(pieces) == text
    assert all("\ufffd" not in p for p in pieces)


def test_text_that_looks_like_special_tokens_is_content() -> None:
    ids = [S.CHANNEL, *TOK.encode_ordinary("final"), S.MESSAGE, *TOK.encode_ordinary("a<|end|>b")]
    events = run([*ids, S.RETURN])
    assert done(events)[0].text == "a<|end|>b"
    assert done(events)[0].complete


def test_parse_messages_round_trips_rendered_messages() -> None:
    messages = [
        Message.assistant("Need the tool.", channel="analysis"),
        Message.tool_call("functions.lookup_weather", {"location": "Paris"}),
        Message.tool_result("functions.lookup_weather", '{"temp": 20}'),
        Message.assistant("It is 20 degrees."),
    ]
    rendering = render_conversation(Conversation.from_messages(messages), auto_drop_analysis=False)
    assert parse_messages(rendering.token_ids(TOK), TOK, role=None) == messages


# -- harmony's parser test data -------------------------------------------------------------


def test_golden_streamable_parser() -> None:
    text = read_golden("test_streamable_parser.txt")
    analysis = text.split("<|message|>")[1].split("<|end|>")[0]
    events = run(text)
    messages = done(events)
    assert [(m.role, m.author_name, m.channel, m.recipient, m.content_type) for m in messages] == [
        (Role.ASSISTANT, None, Channel.ANALYSIS, None, None),
        (Role.ASSISTANT, None, Channel.COMMENTARY, "browser.search", "code"),
        (Role.TOOL, "browser.search", Channel.COMMENTARY, "assistant", None),
    ]
    assert messages[0].text == analysis
    assert messages[2].text == '{"result": "https://openai.com/"}'
    calls = [e for e in events if isinstance(e, ToolCall)]
    assert [c.arguments for c in calls] == [
        {"query": "current US president July 2025", "topn": 10, "source": "news"}
    ]
    assert stops(events) == ["call", "end"]
    assert deltas(events) == "".join(m.text for m in messages)


def test_golden_tool_response_without_end_token() -> None:
    text = read_golden("test_tool_response_parsing.txt")
    events = run(text, role=None)
    (message,) = done(events)
    assert (message.role, message.author_name, message.recipient, message.channel) == (
        Role.TOOL,
        "browser.search",
        "assistant",
        Channel.COMMENTARY,
    )
    assert message.text.strip() == '{"result": "https://openai.com/"}'
    assert not message.complete
    assert stops(events) == ["end"]


def _golden_ids(name: str) -> list[int]:
    return [int(t) for t in read_golden(name).split()]


def test_golden_token_files_use_the_harmony_special_ids() -> None:
    for name in ("test_simple_reasoning_response.txt", "test_simple_tool_call.txt"):
        specials = [t for t in _golden_ids(name) if t >= FIRST_SPECIAL_ID]
        assert set(specials) <= {int(t) for t in SpecialToken}
        assert specials[:2] == [S.CHANNEL, S.MESSAGE]
        assert S.START in specials and S.RETURN in specials


def test_golden_reasoning_response_with_the_real_vocabulary(real_tok: HarmonyTokenizer) -> None:
    events = run(_golden_ids("test_simple_reasoning_response.txt"), decoder=real_tok)
    first, second = done(events)
    assert (first.role, first.channel, first.complete) == (Role.ASSISTANT, Channel.ANALYSIS, True)
    assert first.text == 'User asks: "What is 2 + 2?" Simple arithmetic. Provide answer.'
    assert (second.channel, second.text, second.complete) == (Channel.FINAL, "2 + 2 = 4.", False)
    assert stops(events) == ["return", "end"]


def test_golden_tool_call_with_the_real_vocabulary(real_tok: HarmonyTokenizer) -> None:
    # The call is on the analysis channel, its recipient before the channel: `to=lookup_weather`.
    events = run(_golden_ids("test_simple_tool_call.txt"), decoder=real_tok)
    first, second = done(events)
    assert (first.channel, first.complete) == (Channel.ANALYSIS, True)
    assert first.text.endswith("We need to use lookup_weather tool.")
    assert (second.role, second.channel, second.recipient, second.content_type) == (
        Role.ASSISTANT,
        Channel.ANALYSIS,
        "lookup_weather",
        "code",
    )
    assert second.text == '{"location": "Tokyo"}' and not second.complete
    # The stream ends without <|call|>: a cut-off call is never run.
    assert not any(isinstance(e, ToolCall) for e in events)
    events = run([*_golden_ids("test_simple_tool_call.txt"), S.CALL], decoder=real_tok)
    (call,) = [e for e in events if isinstance(e, ToolCall)]
    assert (call.recipient, call.arguments, call.channel) == (
        "lookup_weather",
        {"location": "Tokyo"},
        Channel.ANALYSIS,
    )


# -- malformed output -----------------------------------------------------------------------


def test_unknown_channel_goes_to_analysis_and_keeps_raw_name() -> None:
    events = run("<|channel|>thoughts<|message|>hmm<|end|>")
    started = next(e for e in events if isinstance(e, MessageStarted))
    assert (started.channel, started.raw_channel) == (Channel.ANALYSIS, "thoughts")
    assert all(e.channel == Channel.ANALYSIS for e in events if isinstance(e, TextDelta))


def test_missing_channel_goes_to_analysis() -> None:
    (message,) = done(run("<|message|>hello<|end|>"))
    assert (message.channel, message.raw_channel, message.text) == (Channel.ANALYSIS, None, "hello")


def test_missing_message_token_turns_header_into_content() -> None:
    events = run("The answer is 4<|return|>")
    (message,) = done(events)
    assert (message.text, message.complete, message.channel) == (
        "The answer is 4",
        False,
        Channel.ANALYSIS,
    )
    assert stops(events) == ["return"]
    (message,) = done(run("<|channel|>final The answer<|end|>"))
    assert (message.channel, message.text) == (Channel.FINAL, "The answer")


def test_overlong_header_streams_as_content() -> None:
    body = TOK.encode_ordinary("word " * 100)
    parser = HarmonyStreamParser(TOK, max_header_tokens=16)
    events = parser.feed_many(body)
    assert any(isinstance(e, TextDelta) for e in events)  # streaming before any end token
    events += parser.finish("length")
    # Harmony's reading of a header as content: trimmed, whitespace runs made one space.
    assert done(events)[0].text == deltas(events) == ("word " * 100).rstrip()
    assert stops(events) == ["length"]


def test_repeated_start_and_stray_specials_are_ignored() -> None:
    events = run(
        "<|start|>assistant<|start|>assistant<|channel|>final<|message|>A<|message|>B"
        "<|constrain|>C<|reserved_200100|><|startoftext|>D<|return|>",
        role=None,
    )
    (message,) = done(events)
    assert (message.channel, message.text, message.complete) == (Channel.FINAL, "ABCD", True)


def test_channel_inside_a_message_starts_the_next_one() -> None:
    events = run("<|channel|>analysis<|message|>think<|channel|>final<|message|>Answer<|return|>")
    first, second = done(events)
    assert (first.channel, first.text, first.complete) == (Channel.ANALYSIS, "think", False)
    assert (second.role, second.channel, second.text) == (Role.ASSISTANT, Channel.FINAL, "Answer")


def test_start_inside_a_message_closes_it_as_incomplete() -> None:
    events = run(
        "<|channel|>analysis<|message|>cut<|start|>assistant<|channel|>final<|message|>ok<|return|>"
    )
    first, second = done(events)
    assert (first.text, first.complete) == ("cut", False)
    assert (second.text, second.complete) == ("ok", True)


def test_text_after_end_without_start_opens_an_assistant_message() -> None:
    events = run("<|channel|>analysis<|message|>a<|end|>final words<|end|>")
    assert [m.text for m in done(events)] == ["a", "final words"]


def test_truncated_tool_call_is_not_reported_as_a_call() -> None:
    events = run(
        '<|channel|>commentary to=functions.f <|constrain|>json<|message|>{"a":', reason="length"
    )
    assert not any(isinstance(e, ToolCall) for e in events)
    assert done(events)[0].complete is False
    assert stops(events) == ["length"]


def test_unknown_and_out_of_range_ids_are_ignored() -> None:
    ids = [S.CHANNEL, *TOK.encode_ordinary("final"), S.MESSAGE, -1, 150_000, N_VOCAB + 5, 65]
    (message,) = done(run(ids))
    assert message.text == "A"


def test_finish_after_stop_adds_nothing_and_resets() -> None:
    parser = HarmonyStreamParser(TOK)
    events = parser.feed_many(
        TOK.encode("<|channel|>final<|message|>x<|return|>", allowed_special="all")
    )
    assert parser.finish("cancel") == []
    assert stops(events) == ["return"]
    again = parser.feed_many(TOK.encode("<|channel|>final<|message|>y", allowed_special="all"))
    again += parser.finish("cancel")
    assert [m.text for m in done(again)] == ["y"] and stops(again) == ["cancel"]


# -- properties -----------------------------------------------------------------------------

SPECIAL_TEXTS = list(TOK.special_tokens)
# Ordinary tokens that cannot spell `<|`, so any special-token text in the output is a leak.
SAFE_TEXT_IDS = sorted(
    i
    for i in range(FIRST_SPECIAL_ID)
    if (b := TOK.token_bytes(i)) is not None and b"<" not in b and b"|" not in b
)
STRUCTURE_IDS = [int(t) for t in SpecialToken] + [200000, 200013, 201087, N_VOCAB, -3, 5000]
CHANNEL_WORDS = ["analysis", "commentary", "final", "thinking"]

text_ids = st.sampled_from(SAFE_TEXT_IDS)
any_ids = st.one_of(text_ids, st.sampled_from(STRUCTURE_IDS))
reasons: st.SearchStrategy[StopReason] = st.sampled_from(["length", "cancel", "end"])


def check_invariants(events: list[Event]) -> None:
    open_message: MessageStarted | None = None
    pieces: list[str] = []
    last_done: MessageDone | None = None
    for event in events:
        if isinstance(event, MessageStarted):
            assert open_message is None
            open_message, pieces = event, []
        elif isinstance(event, TextDelta):
            assert open_message is not None and event.text
            assert event.channel == open_message.channel
            assert event.recipient == open_message.recipient
            assert "<|" not in event.text and not any(s in event.text for s in SPECIAL_TEXTS)
            pieces.append(event.text)
        elif isinstance(event, MessageDone):
            assert open_message is not None
            assert event.text == "".join(pieces)
            assert (event.channel, event.recipient) == (
                open_message.channel,
                open_message.recipient,
            )
            open_message, last_done = None, event
        elif isinstance(event, ToolCall):
            assert last_done is not None and last_done.complete
            assert last_done.recipient == event.recipient
        channel = getattr(event, "channel", None)
        assert channel is None or channel in set(Channel)
    assert open_message is None
    assert isinstance(events[-1], Stopped)


FAST = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(
    ids=st.lists(any_ids, max_size=120),
    reason=reasons,
    role=st.sampled_from([Role.ASSISTANT, None]),
)
def test_random_streams_never_raise_or_leak_special_tokens(
    ids: list[int], reason: StopReason, role: Role | None
) -> None:
    check_invariants(run(ids, role=role, reason=reason))


def _well_formed_message(draw: st.DrawFn) -> tuple[list[int], list[int], str, str | None]:
    channel = draw(st.sampled_from(CHANNEL_WORDS))
    recipient = draw(st.sampled_from([None, "functions.get_current_weather", "python"]))
    content = draw(st.lists(text_ids, max_size=30))
    header = [S.START, *TOK.encode_ordinary("assistant")]
    if recipient:
        header += TOK.encode_ordinary(f" to={recipient}")
    header += [S.CHANNEL, *TOK.encode_ordinary(channel), S.MESSAGE]
    end = S.CALL if recipient else draw(st.sampled_from([S.END, S.RETURN]))
    return [*header, *content, end], content, channel, recipient


@st.composite
def well_formed_streams(
    draw: st.DrawFn,
) -> tuple[list[int], list[tuple[list[int], str, str | None]]]:
    ids: list[int] = []
    expected = []
    for _ in range(draw(st.integers(1, 4))):
        message_ids, content, channel, recipient = _well_formed_message(draw)
        ids += message_ids
        expected.append((content, channel, recipient))
    return ids, expected


@FAST
@given(stream=well_formed_streams())
def test_well_formed_streams_deltas_equal_decoded_content(
    stream: tuple[list[int], list[tuple[list[int], str, str | None]]],
) -> None:
    ids, expected = stream
    events = run(ids, role=None)
    check_invariants(events)
    messages = done(events)
    assert len(messages) == len(expected)
    for message, (content, channel, recipient) in zip(messages, expected, strict=True):
        assert message.text == TOK.decode(content)
        shown = channel if channel != "thinking" else Channel.ANALYSIS
        assert (message.channel, message.raw_channel) == (shown, channel)
        assert (message.recipient, message.complete) == (recipient, True)


@st.composite
def mutated_streams(draw: st.DrawFn) -> list[int]:
    ids, _ = draw(well_formed_streams())
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["delete", "insert", "duplicate", "truncate", "swap"]))
        at = draw(st.integers(0, max(0, len(ids) - 1)))
        if op == "delete" and ids:
            del ids[at]
        elif op == "insert":
            ids.insert(at, draw(any_ids))
        elif op == "duplicate" and ids:
            ids.insert(at, ids[at])
        elif op == "truncate":
            ids = ids[:at]
        elif op == "swap" and at + 1 < len(ids):
            ids[at], ids[at + 1] = ids[at + 1], ids[at]
    return ids


@FAST
@given(ids=mutated_streams(), reason=reasons)
def test_mutated_streams_never_raise_or_leak_special_tokens(
    ids: list[int], reason: StopReason
) -> None:
    check_invariants(run(ids, role=None, reason=reason))
    check_invariants(run(ids, role=Role.ASSISTANT, reason=reason))


@settings(max_examples=100, deadline=None)
@given(
    texts=st.lists(st.text(max_size=40), min_size=1, max_size=4),
    channel=st.sampled_from(CHANNEL_WORDS[:3]),
)
def test_rendered_messages_parse_back_unchanged(texts: list[str], channel: str) -> None:
    messages = [Message(Author(Role.ASSISTANT), (TextContent(t),), channel) for t in texts]
    ids = render_conversation(Conversation.from_messages(messages)).token_ids(TOK)
    assert parse_messages(ids, TOK, role=None) == messages


def test_tool_call_arguments_round_trip_through_json() -> None:
    args = {"city": "Zürich", "days": [1, 2], "nested": {"ok": True}}
    events = run(
        [
            S.CHANNEL,
            *TOK.encode_ordinary("commentary to=functions.forecast"),
            S.MESSAGE,
            *TOK.encode_ordinary(json.dumps(args, ensure_ascii=False)),
            S.CALL,
        ]
    )
    call = next(e for e in events if isinstance(e, ToolCall))
    assert call.arguments == args
