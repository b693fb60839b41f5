"""Chat prompts: the same tokens as the harmony renderer, with the cache marks where they belong."""

from __future__ import annotations

from engine import (
    Conversation,
    DeveloperContent,
    HarmonyTokenizer,
    Message,
    ToolDescription,
)
from engine.chat.prompt import build_prompt, common_prefix_length, final_header_ids
from engine.harmony import (
    drop_earlier_turns_analysis,
    render_conversation,
    render_for_completion,
    render_message,
)
from engine.testing.scripted import reply_ids
from engine.testing.synthetic_tokenizer import synthetic_tokenizer
from engine.tokenizer import SpecialToken

TOK: HarmonyTokenizer = synthetic_tokenizer()
TOOL = ToolDescription("get_current_weather", "Gets the weather.", {"type": "object"})
HISTORY = (
    Message.system(),
    Message.developer(DeveloperContent("Answer briefly.", (TOOL,))),
    Message.user("Hi"),
    Message.assistant("The user greets.", channel="analysis"),
    Message.assistant("Hello!"),
    Message.user("Weather?"),
    Message.assistant("Call the tool.", channel="analysis"),
    Message.tool_call("functions.get_current_weather", {"location": "Paris"}),
    Message.tool_result("functions.get_current_weather", '{"sunny": true}'),
)


def test_prompt_equals_the_renderer_after_dropping_earlier_analysis() -> None:
    conversation = Conversation(HISTORY)
    prompt = build_prompt(TOK, conversation)
    expected = render_for_completion(
        drop_earlier_turns_analysis(conversation), auto_drop_analysis=False
    ).token_ids(TOK)
    assert list(prompt.ids) == expected
    text = TOK.decode(prompt.ids)
    assert "The user greets." not in text and "Call the tool." in text
    assert "Calls to these tools must go to the commentary channel" in text


def test_marks_are_the_instructions_end_the_last_user_message_and_the_prompt_end() -> None:
    prompt = build_prompt(TOK, Conversation(HISTORY))
    messages = drop_earlier_turns_analysis(Conversation(HISTORY)).messages
    # The system message mentions the commentary channel when the developer lists functions.
    system_end = len(render_message(messages[0], has_function_tools=True).token_ids(TOK))
    developer_end, before_user = (
        len(render_conversation(messages[:k]).token_ids(TOK)) for k in (2, 4)
    )
    n = len(prompt.ids)
    assert prompt.marks == {system_end, developer_end, before_user, n - 1, n}
    assert prompt.ids[before_user] == SpecialToken.START


def test_final_header_and_replies() -> None:
    header = final_header_ids(TOK, close_message=True)
    assert TOK.decode(header) == "<|end|><|start|>assistant<|channel|>final<|message|>"
    assert final_header_ids(TOK, close_message=False) == header[1:]
    ids = reply_ids(TOK, [Message.assistant("Hi.")])
    assert TOK.decode(ids) == "<|channel|>final<|message|>Hi.<|return|>"
    call = reply_ids(TOK, [Message.tool_call("functions.f", "{}")])
    assert TOK.decode(call).endswith("{}<|call|>")


def test_common_prefix_length() -> None:
    assert common_prefix_length([1, 2, 3], [1, 2, 4, 5]) == 2
    assert common_prefix_length([1, 2], [1, 2, 3]) == 2
    assert common_prefix_length([], [1]) == 0
