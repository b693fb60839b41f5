"""Rendering against openai-harmony 0.0.8, the library gpt-oss's prompts come from.

Random conversations (tests/engine/harmony/strategies.py) are rendered by both libraries with the
real o200k vocabulary, in every way harmony renders (completion, training, plain conversation;
with and without dropping earlier analysis; message by message), and the token ids must be
identical. Our tokenizer is loaded from both of the fixture's files. There is no list of
accepted differences: what harmony renders is what the model saw.

OSS_DESK_ORACLE_EXAMPLES raises the number of examples for a longer run by hand; `COUNTS` holds
what was compared (read it after the run).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence

import openai_harmony as oh
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.harmony import (
    Conversation,
    DeveloperContent,
    Message,
    ReasoningEffort,
    Role,
    SystemContent,
    ToolDescription,
    browser_namespace,
    python_namespace,
)
from engine.harmony.render import (
    Rendering,
    render_conversation,
    render_for_completion,
    render_for_training,
    render_message,
)
from engine.testing.real_vocab import RealVocabFiles
from engine.tokenizer import HarmonyTokenizer

from .strategies import conversations, to_harmony, to_harmony_message, to_harmony_namespace

EXAMPLES = int(os.environ.get("OSS_DESK_ORACLE_EXAMPLES", "150"))
ORACLE = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# What the oracle tests compared in this process: conversations, renderings, messages.
COUNTS: Counter[str] = Counter()

Tokenizers = dict[str, HarmonyTokenizer]


@pytest.fixture(scope="module")
def harmony(real_vocab: RealVocabFiles) -> oh.HarmonyEncoding:
    # real_vocab has pointed TIKTOKEN_ENCODINGS_BASE at its folder: nothing is downloaded.
    return oh.load_harmony_encoding(oh.HarmonyEncodingName.HARMONY_GPT_OSS)


@pytest.fixture(scope="module")
def tokenizers(real_vocab: RealVocabFiles) -> Tokenizers:
    return {
        "o200k_base.tiktoken": HarmonyTokenizer.from_tiktoken_file(real_vocab.tiktoken_file),
        "tokenizer.json": HarmonyTokenizer.from_tokenizer_json(real_vocab.tokenizer_json),
    }


def side_by_side(expected: Sequence[int], actual: Sequence[int], decode: Decoder) -> str:
    """Both token sequences decoded around their first difference: the common text before it,
    then one quoted token per cell."""
    first = next(
        (i for i, (a, b) in enumerate(zip(expected, actual, strict=False)) if a != b),
        min(len(expected), len(actual)),
    )
    before = decode(list(expected[max(0, first - 40) : first]))

    def cells(ids: Sequence[int]) -> str:
        return " ".join(repr(decode([t])) for t in ids[first : first + 12]) or "(end)"

    return (
        f"token ids differ at {first} (harmony {len(expected)} ids, ours {len(actual)})\n"
        f"common:  ...{before!r}\n"
        f"harmony: {cells(expected)}\n"
        f"ours:    {cells(actual)}"
    )


Decoder = Callable[[list[int]], str]


def assert_same_ids(expected: Sequence[int], actual: Sequence[int], tok: HarmonyTokenizer) -> None:
    if list(expected) != list(actual):
        COUNTS["mismatches"] += 1
        pytest.fail(side_by_side(expected, actual, tok.decode), pytrace=False)


# How each rendering is done by openai-harmony and by us.
HarmonyRender = Callable[
    [oh.HarmonyEncoding, oh.Conversation, oh.RenderConversationConfig], list[int]
]
OurRender = Callable[[Conversation, bool], Rendering]
RENDERINGS: dict[str, tuple[HarmonyRender, OurRender]] = {
    "completion": (
        lambda h, c, cfg: h.render_conversation_for_completion(c, oh.Role.ASSISTANT, cfg),
        lambda c, drop: render_for_completion(c, auto_drop_analysis=drop),
    ),
    "completion for the user": (
        lambda h, c, cfg: h.render_conversation_for_completion(c, oh.Role.USER, cfg),
        lambda c, drop: render_for_completion(c, Role.USER, auto_drop_analysis=drop),
    ),
    "training": (
        lambda h, c, cfg: h.render_conversation_for_training(c, cfg),
        lambda c, drop: render_for_training(c, auto_drop_analysis=drop),
    ),
    "conversation": (
        lambda h, c, cfg: h.render_conversation(c, cfg),
        lambda c, drop: render_conversation(c, auto_drop_analysis=drop),
    ),
}


@ORACLE
@given(
    conversation=conversations(),
    kind=st.sampled_from(sorted(RENDERINGS)),
    auto_drop_analysis=st.booleans(),
    vocabulary=st.sampled_from(["o200k_base.tiktoken", "tokenizer.json"]),
)
def test_conversations_render_to_harmony_token_ids(
    harmony: oh.HarmonyEncoding,
    tokenizers: Tokenizers,
    conversation: Conversation,
    kind: str,
    auto_drop_analysis: bool,
    vocabulary: str,
) -> None:
    COUNTS["conversations"] += 1
    render_harmony, render_ours = RENDERINGS[kind]
    config = oh.RenderConversationConfig(auto_drop_analysis=auto_drop_analysis)
    expected = render_harmony(harmony, to_harmony(conversation), config)
    tok = tokenizers[vocabulary]
    actual = render_ours(conversation, auto_drop_analysis).token_ids(tok)
    COUNTS["renderings"] += 1
    assert_same_ids(expected, actual, tok)


@ORACLE
@given(conversation=conversations(max_messages=4), has_function_tools=st.booleans())
def test_each_message_renders_to_harmony_token_ids(
    harmony: oh.HarmonyEncoding,
    tokenizers: Tokenizers,
    conversation: Conversation,
    has_function_tools: bool,
) -> None:
    tok = tokenizers["o200k_base.tiktoken"]
    options = oh.RenderOptions(conversation_has_function_tools=has_function_tools)
    for message in conversation:
        expected = harmony.render(to_harmony_message(message), options)
        actual = render_message(message, has_function_tools=has_function_tools).token_ids(tok)
        COUNTS["messages"] += 1
        assert_same_ids(expected, actual, tok)


@pytest.mark.parametrize("name", ["browser", "python"])
def test_built_in_tools_are_harmonys(name: str) -> None:
    ours = browser_namespace() if name == "browser" else python_namespace()
    theirs = getattr(oh.ToolNamespaceConfig, name)()
    assert to_harmony_namespace(ours).model_dump() == theirs.model_dump()


@pytest.mark.parametrize("effort", [None, *ReasoningEffort])
@pytest.mark.parametrize("date", [None, "2025-06-28"])
@pytest.mark.parametrize("tools", ["none", "browser", "python", "both"])
@pytest.mark.parametrize("functions", [False, True])
def test_every_system_message_shape_renders_as_harmony(
    harmony: oh.HarmonyEncoding,
    tokenizers: Tokenizers,
    effort: ReasoningEffort | None,
    date: str | None,
    tools: str,
    functions: bool,
) -> None:
    # Built with harmony's own builders, so the system message is harmony's, not our translation.
    theirs = (
        oh.SystemContent.new().with_conversation_start_date(date) if date else oh.SystemContent()
    )
    theirs.reasoning_effort = None if effort is None else oh.ReasoningEffort[effort.name]
    namespaces = []
    if tools in ("browser", "both"):
        theirs = theirs.with_browser_tool()
        namespaces.append(browser_namespace())
    if tools in ("python", "both"):
        theirs = theirs.with_python_tool()
        namespaces.append(python_namespace())
    ours = SystemContent(conversation_start_date=date, reasoning_effort=effort).with_tools(
        *namespaces
    )
    lookup = ToolDescription("lookup", "Looks it up.", {"type": "object"})
    developer = DeveloperContent("Be brief.", (lookup,) if functions else ())
    theirs_developer = oh.DeveloperContent.new().with_instructions("Be brief.")
    if functions:
        theirs_developer = theirs_developer.with_function_tools(
            [oh.ToolDescription.new("lookup", "Looks it up.", {"type": "object"})]
        )
    expected = harmony.render_conversation_for_completion(
        oh.Conversation.from_messages(
            [
                oh.Message.from_role_and_content(oh.Role.SYSTEM, theirs),
                oh.Message.from_role_and_content(oh.Role.DEVELOPER, theirs_developer),
                oh.Message.from_role_and_content(oh.Role.USER, "Hi"),
            ]
        ),
        oh.Role.ASSISTANT,
    )
    conversation = Conversation.from_messages(
        [Message.system(ours), Message.developer(developer), Message.user("Hi")]
    )
    tok = tokenizers["tokenizer.json"]
    assert_same_ids(expected, render_for_completion(conversation).token_ids(tok), tok)


def test_both_vocabulary_files_encode_every_rendering_alike(
    harmony: oh.HarmonyEncoding, tokenizers: Tokenizers
) -> None:
    # A fixed, varied conversation through both of our tokenizers and harmony.
    conversation = Conversation.from_messages(
        [
            Message.system(),
            Message.user("Wie spät ist es in 東京? 🙂 <|end|> naïve\r\n\tcafé"),
            Message.assistant("Need the time tool.", channel="analysis"),
            Message.tool_call("functions.get_time", {"city": "東京", "ratio": 1e20}),
            Message.tool_result("functions.get_time", '{"time": "09:41"}'),
            Message.assistant("Es ist 09:41 in Tokio."),
        ]
    )
    expected = harmony.render_conversation_for_training(to_harmony(conversation))
    for tok in tokenizers.values():
        assert_same_ids(expected, render_for_training(conversation).token_ids(tok), tok)


def test_a_planted_difference_is_reported_side_by_side(tokenizers: Tokenizers) -> None:
    tok = tokenizers["o200k_base.tiktoken"]
    expected = tok.encode("<|start|>user<|message|>hello<|end|>", allowed_special="all")
    actual = tok.encode("<|start|>user<|message|>hullo<|end|>", allowed_special="all")
    with pytest.raises(pytest.fail.Exception) as failure:
        assert_same_ids(expected, actual, tok)
    COUNTS["mismatches"] -= 1  # planted, not found
    report = str(failure.value).splitlines()
    assert report[0] == "token ids differ at 3 (harmony 5 ids, ours 6)"
    assert report[1] == "common:  ...'<|start|>user<|message|>'"
    assert report[2] == "harmony: 'hello' '<|end|>'"
    assert report[3].startswith("ours:    'h") and report[3].endswith(" '<|end|>'")
