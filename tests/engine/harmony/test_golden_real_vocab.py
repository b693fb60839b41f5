"""harmony's golden files with the real o200k vocabulary, checked against openai-harmony itself.

The two token-id files are model completions: they must decode to the text harmony decodes,
parse to the messages harmony parses, and come back from our renderer as the same ids. Every text
file, tokenized with the real vocabulary, must be what openai-harmony renders for the conversation
it was made from (the conversations of test_render.py) and what we render.
"""

from __future__ import annotations

import openai_harmony as oh
import pytest

from engine.harmony import Channel, Message, Role, parse_messages, render_message
from engine.testing.real_vocab import RealVocabFiles
from engine.tokenizer import FIRST_SPECIAL_ID, N_VOCAB, HarmonyTokenizer, SpecialToken

from . import read_golden
from .strategies import to_harmony, to_harmony_message
from .test_render import GOLDEN_TEXT_CASES, NOT_RENDERINGS

TOKEN_FILES = ("test_simple_reasoning_response.txt", "test_simple_tool_call.txt")
VOCABULARIES = ("o200k_base.tiktoken", "tokenizer.json")


@pytest.fixture(scope="module")
def harmony(real_vocab: RealVocabFiles) -> oh.HarmonyEncoding:
    return oh.load_harmony_encoding(oh.HarmonyEncodingName.HARMONY_GPT_OSS)


@pytest.fixture(scope="module")
def tokenizers(real_vocab: RealVocabFiles) -> dict[str, HarmonyTokenizer]:
    return {
        "o200k_base.tiktoken": HarmonyTokenizer.from_tiktoken_file(real_vocab.tiktoken_file),
        "tokenizer.json": HarmonyTokenizer.from_tokenizer_json(real_vocab.tokenizer_json),
    }


def golden_ids(name: str) -> list[int]:
    return [int(t) for t in read_golden(name).split()]


def fields(message: Message | oh.Message) -> tuple[str, str | None, str | None, str | None, str]:
    """What a parsed message must agree on: role, channel, recipient, content type, text."""
    if isinstance(message, oh.Message):
        text = "".join(c.text for c in message.content if isinstance(c, oh.TextContent))
        role = message.author.role.value
    else:
        text, role = message.text, message.role.value
    return (role, message.channel, message.recipient, message.content_type, text)


def test_the_token_files_are_the_ones_not_rendered_from_a_conversation() -> None:
    assert set(TOKEN_FILES) <= set(NOT_RENDERINGS)


@pytest.mark.parametrize("vocabulary", VOCABULARIES)
@pytest.mark.parametrize("name", TOKEN_FILES)
def test_token_file_decodes_to_harmonys_text(
    harmony: oh.HarmonyEncoding,
    tokenizers: dict[str, HarmonyTokenizer],
    name: str,
    vocabulary: str,
) -> None:
    ids = golden_ids(name)
    text = tokenizers[vocabulary].decode(ids)
    assert text == harmony.decode_utf8(ids)
    assert text.startswith("<|channel|>analysis<|message|>User asks: ")
    # Every id encodes back from the text (special tokens allowed): the file is a tokenization.
    assert tokenizers[vocabulary].encode(text, allowed_special="all") == ids


@pytest.mark.parametrize("name", TOKEN_FILES)
def test_token_file_parses_to_harmonys_messages(
    harmony: oh.HarmonyEncoding, tokenizers: dict[str, HarmonyTokenizer], name: str
) -> None:
    ids = golden_ids(name)
    expected = harmony.parse_messages_from_completion_tokens(ids, oh.Role.ASSISTANT, strict=False)
    ours = parse_messages(ids, tokenizers["o200k_base.tiktoken"], role=Role.ASSISTANT)
    assert [fields(m) for m in ours] == [fields(m) for m in expected]
    assert ours[0].channel == Channel.ANALYSIS and len(ours) == 2


def test_tool_call_file_has_the_recipient_and_content_type_the_spec_names(
    tokenizers: dict[str, HarmonyTokenizer],
) -> None:
    ids = golden_ids("test_simple_tool_call.txt")
    call = parse_messages(ids, tokenizers["tokenizer.json"])[1]
    assert (call.channel, call.recipient, call.content_type) == (
        "analysis",
        "lookup_weather",
        "code",
    )
    assert call.text == '{"location": "Tokyo"}'


@pytest.mark.parametrize("vocabulary", VOCABULARIES)
@pytest.mark.parametrize("name", TOKEN_FILES)
def test_token_file_rerenders_to_the_same_ids(
    harmony: oh.HarmonyEncoding,
    tokenizers: dict[str, HarmonyTokenizer],
    name: str,
    vocabulary: str,
) -> None:
    # The file is a completion: it starts after `<|start|>assistant`, its first message ends with
    # <|return|> (as harmony's test wrote it) and its last is cut before its end token.
    tok = tokenizers[vocabulary]
    ids = golden_ids(name)
    first, last = parse_messages(ids, tok)
    rendered_first = render_message(first).token_ids(tok)
    rendered_last = render_message(last).token_ids(tok)
    assert rendered_first[-1] == SpecialToken.END
    rerendered = [*rendered_first[:-1], SpecialToken.RETURN, *rendered_last[:-1]]
    prompt_head = [SpecialToken.START, *tok.encode_ordinary("assistant")]
    assert rerendered == prompt_head + ids
    # And openai-harmony renders those two messages to the same ids as we do.
    for message, ours in ((first, rendered_first), (last, rendered_last)):
        assert harmony.render(to_harmony_message(message)) == ours


@pytest.mark.parametrize("name", sorted(GOLDEN_TEXT_CASES))
def test_text_golden_file_is_harmonys_rendering_with_the_real_vocabulary(
    harmony: oh.HarmonyEncoding, tokenizers: dict[str, HarmonyTokenizer], name: str
) -> None:
    case = GOLDEN_TEXT_CASES[name]()
    config = oh.RenderConversationConfig(auto_drop_analysis=case.auto_drop_analysis)
    conversation = to_harmony(case.conversation)
    if case.for_completion:
        expected = harmony.render_conversation_for_completion(
            conversation, oh.Role.ASSISTANT, config
        )
    else:
        expected = harmony.render_conversation(conversation, config)
    for tok in tokenizers.values():
        assert tok.encode(read_golden(name), allowed_special="all") == expected
        assert case.render().token_ids(tok) == expected


@pytest.mark.parametrize("vocabulary", VOCABULARIES)
def test_every_special_id_decodes_and_encodes_as_in_harmony(
    harmony: oh.HarmonyEncoding, tokenizers: dict[str, HarmonyTokenizer], vocabulary: str
) -> None:
    tok = tokenizers[vocabulary]
    for token_id in range(FIRST_SPECIAL_ID, N_VOCAB):
        name = harmony.decode([token_id])
        assert tok.decode([token_id]) == name, token_id
        assert tok.encode(name, allowed_special="all") == [token_id], name
        assert tok.is_special(token_id) and harmony.is_special_token(token_id)
    # Our one addition: o200k_base's name for 200018 is still accepted (harmony reads it as text).
    assert tok.encode("<|endofprompt|>", allowed_special="all") == [200018]
    assert harmony.encode("<|endofprompt|>", allowed_special="all") == tok.encode_ordinary(
        "<|endofprompt|>"
    )
