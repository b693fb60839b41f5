"""What the tool loop reports besides the chat's own events: one readable step per browser call
(for the reasoning pane), and the answer's citations resolved to documents, pages and lines."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from engine.browser import BrowserSession, Citation, CitedLines, ToolOutput

StepKind: TypeAlias = Literal["search", "open", "find", "other", "limit"]

_VIEWING = re.compile(r"^\*\*viewing lines \[(\d+) - (\d+)\] of (\d+)\*\*$", re.M)
_FIND_TITLE = re.compile(r"in `(.*)`$", re.S)
# The browser's wrappers around a backend error; the user reads only the reason.
_ERROR_PREFIX = re.compile(r"^Error (?:fetching URL `[^`]*`|during search for `[^`]*`): ", re.S)
_NOTE_CHARS = 200
_KINDS: dict[str, StepKind] = {"search": "search", "open": "open", "find": "find"}


@dataclass(frozen=True)
class ToolStep:
    """One tool call of the turn as the user reads it: "searched: rust borrow checker (5
    results)", "opened report.pdf p. 12, lines 40-80", "found 'X' in report.pdf p. 12: 3
    matches". `ok` is False when the model got an error text instead (`summary` says why)."""

    kind: StepKind
    summary: str
    ok: bool
    recipient: str
    number: int  # 1 for the turn's first tool call
    cursor: int | None = None  # the browser page shown, for citations


@dataclass(frozen=True)
class ResolvedCitation:
    citation: Citation
    target: CitedLines | None  # None: the citation points nowhere (shown as such, not dropped)


@dataclass(frozen=True)
class CitationsResolved:
    """The final answer's citations `【cursor†Lx-Ly】`, in order; comes just before TurnFinished."""

    citations: tuple[ResolvedCitation, ...]

    @property
    def dangling(self) -> tuple[ResolvedCitation, ...]:
        return tuple(c for c in self.citations if c.target is None)


def resolve_answer(browser: BrowserSession, answer: str) -> CitationsResolved:
    return CitationsResolved(
        tuple(ResolvedCitation(c, t) for c, t in browser.resolve_citations(answer))
    )


def describe(
    browser: BrowserSession, recipient: str, arguments: Any, output: ToolOutput, number: int
) -> ToolStep:
    """The step for a browser call that ran (successfully or with the tool's error text)."""
    function = recipient.removeprefix("browser.")
    kind = _KINDS.get(function, "other")
    args = arguments if isinstance(arguments, dict) else {}
    if output.error or output.cursor is None:
        return ToolStep(
            kind, _failure(kind, recipient, args, output.text), False, recipient, number
        )
    page = browser.pages[output.cursor]
    if kind == "search":
        count = len(page.urls)
        found = f"{count} result{'s' * (count != 1)}" if count else "nothing found"
        summary = f"searched: {_short(str(args.get('query', page.title)))} ({found})"
    elif kind == "find":
        m = _FIND_TITLE.search(page.title)
        where = _pretty_title(m.group(1)) if m else "the page"
        count = len(page.urls)
        summary = (
            f"found {_quoted(args.get('pattern'))} in {where}: {count} match{'es' * (count != 1)}"
        )
    else:
        summary = f"opened {_pretty_title(page.title)}{_line_range(output.text)}"
        if page.kind == "search":
            summary = f"opened the results for {_quoted(page.title)}{_line_range(output.text)}"
    return ToolStep(kind, summary, True, recipient, number, output.cursor)


def limit_step(recipient: str, number: int, max_calls: int, *, stopped: bool) -> ToolStep:
    if stopped:
        summary = (
            f"stopped: the model kept calling {recipient} after the limit of {max_calls} "
            "tool calls for one answer"
        )
    else:
        summary = (
            f"not run: {max_calls} tool calls is the limit for one answer; asked to answer now"
        )
    return ToolStep("limit", summary, False, recipient, number)


def other_step(recipient: str, problem: str, number: int) -> ToolStep:
    """A call to no tool of this chat (it was answered with `problem`)."""
    return ToolStep("other", f"not run: {_short(problem)}", False, recipient, number)


def _failure(kind: StepKind, recipient: str, args: dict[str, Any], text: str) -> str:
    reason = _reason(text)
    if reason == "Invalid function arguments":
        return f"{recipient} was called with malformed arguments; the model was asked to fix them"
    if reason.startswith("Unknown function"):
        return f"not run: the browser has no function {_quoted(recipient)}"
    if kind == "search":
        return f"search for {_quoted(args.get('query'))} failed: {reason}"
    if kind == "find":
        return f"find {_quoted(args.get('pattern'))} failed: {reason}"
    return f"could not open: {reason}"


def _reason(text: str) -> str:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, dict) and isinstance(value.get("error"), str):
        text = value["error"]
    return _short(_ERROR_PREFIX.sub("", text))


def _line_range(text: str) -> str:
    m = _VIEWING.search(text)
    return f", lines {m.group(1)}-{m.group(2)}" if m else ""


def _pretty_title(title: str) -> str:
    return title.replace(", page ", " p. ")


def _quoted(value: object) -> str:
    return f"'{_short(str(value))}'" if value is not None else "(nothing)"


def _short(text: str, limit: int = _NOTE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
