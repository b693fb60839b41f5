"""Rendering: byte-for-byte conformance with harmony's test data, plus the rules around it."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from engine.harmony import (
    Author,
    Conversation,
    DeveloperContent,
    Message,
    ReasoningEffort,
    Rendering,
    Role,
    SystemContent,
    TextContent,
    ToolDescription,
    ToolNamespace,
    browser_namespace,
    drop_earlier_turns_analysis,
    python_namespace,
    render_conversation,
    render_for_completion,
    render_message,
    schema_to_typescript,
)
from engine.harmony.schema_ts import render_function_type, render_namespace
from engine.testing.synthetic_tokenizer import synthetic_tokenizer
from engine.tokenizer import SpecialToken

from . import golden_dir, read_golden

ROBOT = "Answer the user's questions like a robot."
CAPITAL = "What is the capital of the largest country in the world?"
DATE = "2025-06-28"
REASONING_CHANNELS = ("analysis", "final")

LOOKUP_WEATHER = ToolDescription(
    "lookup_weather",
    "Use this tool to lookup the weather in a given location. Call it with the parameter "
    "'location', can be any textual description of a location.",
    {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
)

FORMAT = {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"}
FUNCTIONS_WITH_PARAMETERS = (
    ToolDescription("get_location", "Gets the location of the user."),
    ToolDescription(
        "get_current_weather",
        "Gets the current weather in the provided location.",
        {
            "type": "object",
            "properties": {
                "location": {
                    "type": "string",
                    "description": "The city and state, e.g. San Francisco, CA",
                },
                "format": FORMAT,
            },
            "required": ["location"],
        },
    ),
    ToolDescription(
        "get_multiple_weathers",
        "Gets the current weather in the provided list of locations.",
        {
            "type": "object",
            "properties": {
                "locations": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": 'List of city and state, e.g. ["San Francisco, CA", '
                    '"New York, NY"]',
                },
                "format": FORMAT,
            },
            "required": ["locations"],
        },
    ),
    ToolDescription(
        "kitchensink",
        "A function with various complex schemas.",
        {
            "description": "params object",
            "type": "object",
            "properties": {
                "string": {
                    "type": "string",
                    "title": "STRING",
                    "description": "A string",
                    "examples": ["hello", "world"],
                },
                "string_nullable": {
                    "type": "string",
                    "nullable": True,
                    "description": "A nullable string",
                    "default": "the default",
                },
                "string_enum": {"type": "string", "enum": ["a", "b", "c"]},
                "oneof_string_or_number": {
                    "oneOf": [
                        {"type": "string", "default": "default_string_in_oneof"},
                        {"type": "number", "description": "numbers can happen too"},
                    ],
                    "description": "a oneof",
                    "default": 20,
                },
            },
        },
    ),
)


@dataclass(frozen=True)
class GoldenCase:
    """The conversation behind a golden file and how harmony's test rendered it (also used by
    test_golden_real_vocab.py to render it with openai-harmony itself)."""

    conversation: Conversation
    for_completion: bool = True  # render_conversation_for_completion, else render_conversation
    auto_drop_analysis: bool = True

    def render(self) -> Rendering:
        if self.for_completion:
            return render_for_completion(
                self.conversation, auto_drop_analysis=self.auto_drop_analysis
            )
        return render_conversation(self.conversation, auto_drop_analysis=self.auto_drop_analysis)


def _completion(*messages: Message, auto_drop_analysis: bool = True) -> GoldenCase:
    return GoldenCase(Conversation.from_messages(messages), True, auto_drop_analysis)


def _effort_convo(effort: ReasoningEffort, *, instructions: bool) -> GoldenCase:
    developer = [Message.developer(DeveloperContent(instructions=ROBOT))] if instructions else []
    return _completion(
        Message.system(SystemContent(reasoning_effort=effort)),
        *developer,
        Message.user(CAPITAL),
    )


def _two_plus_two_with_analysis(*, auto_drop_analysis: bool) -> GoldenCase:
    return _completion(
        Message.user("What is 2 + 2?"),
        Message.assistant(
            'User asks a simple question: "What is 2 + 2?" The answer: 4.', channel="analysis"
        ),
        Message.assistant("2 + 2 equals 4."),
        Message.user("What about 9 / 2?"),
        auto_drop_analysis=auto_drop_analysis,
    )


def _ongoing_tool_chain() -> GoldenCase:
    return _completion(
        Message.user("What is the weather in SF?"),
        Message.assistant(
            "User asks: “What is the weather in SF?” We need to use lookup_weather tool.",
            channel="analysis",
        ),
        Message.tool_call("functions.lookup_weather", {"location": "San Francisco"}),
        Message.tool_result(
            "functions.lookup_weather",
            '{"temperature": 20, "description": "sunny"}',
            channel=None,
            recipient=None,
        ),
    )


def _keep_analysis_between_finals() -> GoldenCase:
    conversation = Conversation.from_messages(
        [
            Message.user("What is 2 + 2?"),
            Message.assistant("4"),
            Message.user("What is 3 + 5?"),
            Message.assistant("thinking 3+5", channel="analysis"),
            Message.assistant("8"),
        ]
    )
    return GoldenCase(conversation, for_completion=False, auto_drop_analysis=True)


def _reasoning_system(
    effort: ReasoningEffort,
    user: str,
    knowledge_cutoff: str = "2024-06",
    conversation_start_date: str | None = None,
) -> GoldenCase:
    content = SystemContent(
        reasoning_effort=effort,
        required_channels=REASONING_CHANNELS,
        knowledge_cutoff=knowledge_cutoff,
        conversation_start_date=conversation_start_date,
    )
    return _completion(Message.system(content), Message.user(user))


GOLDEN_TEXT_CASES: dict[str, Callable[[], GoldenCase]] = {
    "test_simple_convo.txt": lambda: _completion(Message.system(), Message.user("What is 2 + 2?")),
    "test_no_tools.txt": lambda: _completion(
        Message.system(SystemContent(conversation_start_date=DATE))
    ),
    "test_browser_tool_only.txt": lambda: _completion(
        Message.system(SystemContent(conversation_start_date=DATE).with_tools(browser_namespace()))
    ),
    "test_browser_and_python_tool.txt": lambda: _completion(
        Message.system(
            SystemContent(conversation_start_date=DATE).with_tools(
                python_namespace(), browser_namespace()
            )
        )
    ),
    "test_browser_and_function_tool.txt": lambda: _completion(
        Message.system(SystemContent(conversation_start_date=DATE).with_tools(browser_namespace())),
        Message.developer(DeveloperContent(functions=(LOOKUP_WEATHER,))),
    ),
    "test_render_functions_with_parameters.txt": lambda: _completion(
        Message.system(
            SystemContent(reasoning_effort=ReasoningEffort.HIGH, conversation_start_date=DATE)
        ),
        Message.developer(
            DeveloperContent(
                instructions="Always respond in riddles", functions=FUNCTIONS_WITH_PARAMETERS
            )
        ),
        Message.user("What is the weather like in SF?"),
    ),
    "test_reasoning_system_message.txt": lambda: _reasoning_system(
        ReasoningEffort.MEDIUM, "What is 2 + 2?"
    ),
    "test_reasoning_system_message_no_instruction.txt": lambda: _reasoning_system(
        ReasoningEffort.HIGH, "What is the best place to eat candy in the world?"
    ),
    "test_reasoning_system_message_with_dates.txt": lambda: _reasoning_system(
        ReasoningEffort.MEDIUM,
        "What is 42 * pi?",
        knowledge_cutoff="2021-01",
        conversation_start_date="2021-01-01",
    ),
    "test_dropping_cot_by_default.txt": lambda: _two_plus_two_with_analysis(
        auto_drop_analysis=True
    ),
    "test_preserve_cot.txt": lambda: _two_plus_two_with_analysis(auto_drop_analysis=False),
    "test_does_not_drop_if_ongoing_analysis.txt": _ongoing_tool_chain,
    "test_keep_analysis_between_finals.txt": _keep_analysis_between_finals,
}
for _effort in ReasoningEffort:
    for _instructions, _suffix in ((True, ""), (False, "_no_instruction")):
        GOLDEN_TEXT_CASES[f"test_simple_convo_{_effort.value}_effort{_suffix}.txt"] = (
            functools.partial(_effort_convo, _effort, instructions=_instructions)
        )

# Golden files that are not text renderings, and where they are tested instead.
NOT_RENDERINGS = {
    "test_simple_reasoning_response.txt": "token ids: test_golden_real_vocab.py",
    "test_simple_tool_call.txt": "token ids: test_golden_real_vocab.py",
    "test_streamable_parser.txt": "parser input: test_parser.py",
    "test_tool_response_parsing.txt": "parser input: test_parser.py",
}


def test_every_golden_file_is_accounted_for() -> None:
    on_disk = {p.name for p in golden_dir().iterdir() if p.suffix == ".txt"}
    assert on_disk == set(GOLDEN_TEXT_CASES) | set(NOT_RENDERINGS)


def _diff(expected: str, actual: str) -> str:
    lines = difflib.unified_diff(
        expected.splitlines(), actual.splitlines(), "expected", "actual", lineterm=""
    )
    return "\n".join(lines)


@pytest.mark.parametrize("name", sorted(GOLDEN_TEXT_CASES))
def test_rendering_matches_harmony_golden_file(name: str) -> None:
    expected = read_golden(name)
    rendering = GOLDEN_TEXT_CASES[name]().render()
    if rendering.text != expected:
        pytest.fail(
            f"{name} differs\n--- expected\n{expected}\n--- actual\n{rendering.text}\n"
            f"{_diff(expected, rendering.text)}"
        )
    # The token path must agree with the text path (specials as single ids, no stray merges).
    tokenizer = synthetic_tokenizer()
    expected_ids = tokenizer.encode(expected, allowed_special="all")
    actual_ids = rendering.token_ids(tokenizer)
    if actual_ids != expected_ids:
        first = next(
            i for i, (a, b) in enumerate(zip(actual_ids, expected_ids, strict=False)) if a != b
        )
        window = slice(max(0, first - 5), first + 5)
        pytest.fail(
            f"{name}: token ids differ at {first}\n"
            f"expected {[tokenizer.decode([t]) for t in expected_ids[window]]}\n"
            f"actual   {[tokenizer.decode([t]) for t in actual_ids[window]]}"
        )


def test_completion_prompt_ends_with_start_and_role() -> None:
    ids = _completion(Message.user("hi")).render().token_ids(synthetic_tokenizer())
    assert ids[-2] == SpecialToken.START
    assert synthetic_tokenizer().decode(ids[-1:]) == "assistant"


def test_special_token_text_in_user_content_stays_ordinary_text() -> None:
    tokenizer = synthetic_tokenizer()
    ids = render_message(Message.user("a<|end|>b<|start|>")).token_ids(tokenizer)
    assert ids.count(SpecialToken.END) == 1  # only the real end of the message
    assert SpecialToken.START not in ids[1:]
    assert tokenizer.decode(ids) == "<|start|>user<|message|>a<|end|>b<|start|><|end|>"


def test_constrained_content_type_is_space_special_then_text() -> None:
    pieces = render_message(Message.tool_call("functions.f", "{}")).pieces
    at = pieces.index(SpecialToken.CONSTRAIN)
    assert pieces[at - 1 : at + 2] == (" ", SpecialToken.CONSTRAIN, "json")
    assert pieces[-1] == SpecialToken.CALL


def test_recipient_all_is_not_written_yet_the_message_is_a_call() -> None:
    # openai-harmony's rendering: "all" is left out of the header, but any recipient ends a
    # message from the assistant with <|call|>.
    text = render_message(Message.assistant("hi", recipient="all")).text
    assert text == "<|start|>assistant<|channel|>final<|message|>hi<|call|>"
    empty = render_message(Message.assistant("hi", channel=None, recipient="")).text
    assert empty == "<|start|>assistant to=<|message|>hi<|call|>"


def test_author_name_follows_role() -> None:
    message = Message(Author(Role.USER, "alice"), (TextContent("hi"),))
    assert render_message(message).text == "<|start|>user:alice<|message|>hi<|end|>"


def test_misplaced_content_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="SystemContent"):
        render_message(Message(Author(Role.USER), (SystemContent(),)))
    with pytest.raises(ValueError, match="DeveloperContent"):
        render_message(Message(Author(Role.SYSTEM), (DeveloperContent("x"),)))
    with pytest.raises(ValueError, match="tool"):
        render_message(Message(Author(Role.TOOL), (TextContent("x"),)))


def test_reasoning_effort_none_omits_the_line() -> None:
    text = render_message(Message.system(SystemContent(reasoning_effort=None))).text
    assert "Reasoning:" not in text


@pytest.mark.parametrize("effort", list(ReasoningEffort))
def test_reasoning_effort_is_rendered(effort: ReasoningEffort) -> None:
    text = render_message(Message.system(SystemContent(reasoning_effort=effort))).text
    assert f"\n\nReasoning: {effort.value}\n\n" in text


def test_dropping_earlier_turns_keeps_current_turn_and_tool_calls() -> None:
    call = Message.tool_call("functions.lookup_weather", {"location": "Paris"})
    result = Message.tool_result("functions.lookup_weather", "{}")
    conversation = Conversation.from_messages(
        [
            Message.system(),
            Message.user("What is 2 + 2?"),
            Message.assistant("easy", channel="analysis"),
            Message.assistant("4"),
            Message.user("And 3 + 5?"),
            Message.assistant("thinking 3+5", channel="analysis"),
            Message.assistant("8"),
            Message.user("Weather in Paris?"),
            Message.assistant("need the tool", channel="analysis"),
            call,
            result,
        ]
    )
    kept = drop_earlier_turns_analysis(conversation).messages
    analyses = [m.text for m in kept if m.channel == "analysis"]
    assert analyses == ["need the tool"]
    assert call in kept and result in kept
    # harmony's own rule keeps the thinking between finals; the app helper does not.
    assert "thinking 3+5" in render_conversation(conversation).text


def test_no_drop_without_final_answer() -> None:
    conversation = Conversation.from_messages(
        [Message.user("q"), Message.assistant("hmm", channel="analysis")]
    )
    assert "hmm" in render_for_completion(conversation).text


# -- JSON schema to TypeScript, beyond what the golden files cover ----------------------------


def test_only_a_missing_schema_means_no_arguments() -> None:
    assert render_function_type(ToolDescription("ping", "Ping.")) == "type ping = () => any;"
    for params in ({"type": "object"}, {"type": "object", "properties": {}}):
        tool = ToolDescription("ping", "Ping.", params)
        assert render_function_type(tool) == "type ping = (_: {\n}) => any;"
    assert render_function_type(ToolDescription("ping", "", {})) == "type ping = (_: any) => any;"


def test_what_harmony_does_not_know_is_any() -> None:
    assert schema_to_typescript({"type": "integer"}) == "number"
    assert schema_to_typescript({"type": ["integer", "null"]}) == "number | null"
    assert schema_to_typescript({"type": "array"}) == "Array<any>"
    assert schema_to_typescript({"type": "array", "items": {"type": "boolean"}}) == "boolean[]"
    # An array of a union is written without parentheses, as harmony does.
    union_items = {"type": "array", "items": {"type": ["string", "null"]}}
    assert schema_to_typescript(union_items) == "string | null[]"
    for unknown in (
        {"anyOf": [{"type": "string"}, {"type": "null"}]},
        {"allOf": [{"type": "string"}]},
        {"enum": [1, "a"]},
        {"const": "x"},
        {"type": "null"},
        {"$ref": "#/defs/x"},
        {},
        "not a schema",
    ):
        assert schema_to_typescript(unknown) == "any", unknown
    assert schema_to_typescript({"type": "string", "anyOf": [{"type": "null"}]}) == "string"


def test_nested_object_description_is_said_twice_and_defaults_are_serde_json() -> None:
    schema = {
        "type": "object",
        "properties": {
            "where": {
                "type": "object",
                "description": "A place.\nAny place.",
                "properties": {"city": {"type": "string"}, "zoom": {"type": "integer"}},
                "required": ["city"],
            },
            "units": {"type": "string", "default": "metric"},
            "count": {"type": "integer", "default": 3},
            "ratio": {"type": "number", "default": 1e20},
            "tags": {"type": "array", "items": {"type": "string"}, "default": ["a", "b"]},
        },
    }
    assert schema_to_typescript(schema) == (
        "{\n"
        "// A place.\n"
        "Any place.\n"
        "where?:     // A place.\n"
        "Any place.\n"
        "{\n"
        "    city: string,\n"
        "    zoom?: number,\n"
        "    },\n"
        'units?: string, // default: "metric"\n'
        "count?: number, // default: 3\n"
        "ratio?: number, // default: 1e20\n"
        'tags?: string[], // default: ["a","b"]\n'
        "}"
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1e20, "1e20"),
        (1e15, "1000000000000000.0"),
        (1e16, "1e16"),
        (0.1, "0.1"),
        (1e-5, "0.00001"),
        (1e-6, "1e-6"),
        (-0.0, "-0.0"),
        (3.0, "3.0"),
        (2**63 - 1, "9223372036854775807"),
        (2**64 - 1, "18446744073709551615"),
        (2**64, "1.8446744073709552e19"),
        (-(2**63) - 1, "-9.223372036854776e18"),
        # serde_json (without float_roundtrip) reads this one ulp off, and harmony prints that.
        (-3.0083435527023166e-13, "-3.008343552702317e-13"),
        ({"a": [1, None, True, "é\n"]}, '{"a":[1,null,true,"é\\n"]}'),
    ],
)
def test_defaults_print_as_harmony_prints_them(value: object, text: str) -> None:
    schema = {"type": "object", "properties": {"x": {"default": value}}}
    assert schema_to_typescript(schema) == f"{{\nx?: any, // default: {text}\n}}"


def test_one_of_description_rules_follow_harmony() -> None:
    # Equal to the first variant's: said nowhere. Different: said above, first variant silent.
    def render(description: str) -> str:
        variants = [{"type": "string", "description": "same"}, {"type": "number"}]
        schema = {"description": description, "oneOf": variants}
        return schema_to_typescript({"type": "object", "properties": {"x": schema}})

    assert render("same") == "{\nx?:\n | string\n | number\n,\n}"
    assert render("other") == "{\n// other\nx?:\n | string\n | number\n,\n}"


def test_description_lines_split_as_rust_str_lines() -> None:
    # \r\n ends a line, a lone \r does not; a namespace without tools keeps its prose as lines.
    tool = ToolDescription("t", "x\r\ny\r", None)
    namespace = ToolNamespace("x", "a\r\n\r\nb\r", (tool,))
    assert render_namespace(namespace) == (
        "## x\n\n// a\n// \n// b\r\nnamespace x {\n\n// x\n// y\r\ntype t = () => any;\n\n"
        "} // namespace x"
    )
    assert render_namespace(ToolNamespace("x", "a\r\nb\n\n")) == "## x\n\na\nb\n"
