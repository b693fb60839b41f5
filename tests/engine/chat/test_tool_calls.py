"""Checking a tool call against the tools a conversation declares (engine.chat.tool_calls)."""

from __future__ import annotations

import json

import pytest

from engine.chat.tool_calls import ToolCatalog, tool_call
from engine.harmony import SystemContent, ToolDescription, browser_namespace, python_namespace

CATALOG = ToolCatalog.of(
    SystemContent().with_tools(browser_namespace(), python_namespace()),
    [ToolDescription("get_weather", "Weather.")],
)


def test_the_catalog_holds_functions_namespaced_tools_and_free_text_namespaces() -> None:
    assert CATALOG.json_tools == {
        "functions.get_weather",
        "browser.search",
        "browser.open",
        "browser.find",
    }
    assert CATALOG.text_tools == {"python"}


@pytest.mark.parametrize(
    ("recipient", "text", "arguments"),
    [
        ("functions.get_weather", '{"location": "Tokyo"}', {"location": "Tokyo"}),
        ("functions.get_weather", "", None),  # no parameters
        ("browser.search", '{"query": "x", "topn": 3}', {"query": "x", "topn": 3}),
        ("python", "print(1)", None),  # code, not JSON
    ],
)
def test_a_declared_tool_with_usable_arguments_has_no_problem(
    recipient: str, text: str, arguments: object
) -> None:
    call = tool_call(recipient, text, "analysis", None, CATALOG)
    assert (call.recipient, call.arguments, call.channel, call.problem) == (
        recipient,
        arguments,
        "analysis",
        None,
    )
    assert call.error_result() is None


@pytest.mark.parametrize(
    ("recipient", "text", "problem"),
    [
        ("functions.get_wether", "{}", "The message to `functions.get_wether` is not a call"),
        ("", "{}", "The message to an empty recipient (`to=`) is not a call"),
        ("all", "{}", "The message to `all` is not a call to one of this chat's tools."),
        ("functions.get_weather", '{"location": Tokyo}', "are not valid JSON (Expecting value"),
        ("browser.search", "3", "The arguments for browser.search are a JSON number, not an"),
        ("functions.get_weather", "null", "are a JSON null, not an object"),
    ],
)
def test_a_call_that_cannot_run_says_what_to_fix(recipient: str, text: str, problem: str) -> None:
    call = tool_call(recipient, text, "commentary", "<|constrain|>json", CATALOG)
    assert call.problem is not None and problem in call.problem
    assert json.loads(call.error_result() or "") == {"error": call.problem}
    if "not a call" in problem:
        assert "functions.get_weather, python" in str(call.problem)


def test_without_tools_every_call_is_told_to_answer_without_them() -> None:
    call = tool_call("functions.get_weather", "{}", "commentary", None, ToolCatalog())
    assert call.problem == (
        "The message to `functions.get_weather` cannot run: this chat has no tools. "
        "Answer without them."
    )
