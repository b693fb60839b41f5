"""The model's JSON arguments for browser.search/open/find, checked before anything runs.

Names and defaults are the ones the model was trained with (engine.harmony.builtin_tools
declares them). Unknown keys are ignored: a model that adds one should still get its answer. A
wrong type or a missing required argument is an error text the model reads, never an exception.
Unparseable arguments and unknown functions get the reference tool's JSON error texts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

INVALID_ARGUMENTS = json.dumps({"error": "Invalid function arguments"})
FUNCTIONS = ("search", "open", "find")
DEFAULT_TOPN = 10


def unknown_function(name: str) -> str:
    return json.dumps({"error": f"Unknown function: {name}"})


class ArgumentError(Exception):
    """A well-formed call with a bad argument; the text is what the model reads."""


@dataclass(frozen=True)
class SearchArgs:
    query: str
    topn: int = DEFAULT_TOPN


@dataclass(frozen=True)
class OpenArgs:
    id: int | str = -1
    cursor: int = -1
    loc: int = -1
    num_lines: int = -1
    view_source: bool = False


@dataclass(frozen=True)
class FindArgs:
    pattern: str
    cursor: int = -1


def parse_arguments(text: str) -> dict[str, Any] | None:
    """The call's arguments; an empty message means none, anything but a JSON object is None."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def search_args(args: dict[str, Any]) -> SearchArgs:
    query = _required(args, "search", "query")
    if not isinstance(query, str):
        raise _wrong_type("search", "query", "a string", query)
    # The reference accepts `top_n` as well; `topn` wins when both are given.
    topn = _int(args, "search", "topn", _int(args, "search", "top_n", DEFAULT_TOPN))
    _optional_string(args, "search", "source")
    return SearchArgs(query, topn)


def open_args(args: dict[str, Any]) -> OpenArgs:
    link = args.get("id", -1)
    if isinstance(link, bool) or not isinstance(link, int | str):
        raise _wrong_type("open", "id", "an integer or a URL", link)
    view_source = args.get("view_source", False)
    if not isinstance(view_source, bool):
        raise _wrong_type("open", "view_source", "true or false", view_source)
    _optional_string(args, "open", "source")
    return OpenArgs(
        id=link,
        cursor=_int(args, "open", "cursor", -1),
        loc=_int(args, "open", "loc", -1),
        num_lines=_int(args, "open", "num_lines", -1),
        view_source=view_source,
    )


def find_args(args: dict[str, Any]) -> FindArgs:
    pattern = _required(args, "find", "pattern")
    # A number is text to find too ("2024"); the reference turns any value into text.
    if isinstance(pattern, bool) or not isinstance(pattern, str | int | float):
        raise _wrong_type("find", "pattern", "a string", pattern)
    return FindArgs(str(pattern), _int(args, "find", "cursor", -1))


def _required(args: dict[str, Any], function: str, name: str) -> Any:
    if name not in args:
        raise ArgumentError(f"Invalid arguments for `browser.{function}`: `{name}` is required.")
    return args[name]


def _int(args: dict[str, Any], function: str, name: str, default: int) -> int:
    value = args.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_type(function, name, "an integer", value)
    return value


def _optional_string(args: dict[str, Any], function: str, name: str) -> None:
    value = args.get(name)
    if value is not None and not isinstance(value, str):
        raise _wrong_type(function, name, "a string", value)


def _wrong_type(function: str, name: str, wanted: str, value: Any) -> ArgumentError:
    return ArgumentError(
        f"Invalid arguments for `browser.{function}`: `{name}` should be {wanted}, "
        f"not `{type(value).__name__}`."
    )
