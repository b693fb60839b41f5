"""What the tool loop reports besides the chat's own events: one readable step per tool call
(for the reasoning pane and the history), and the answer's citations resolved to documents,
pages and lines.

A browser step is a summary line. A python or function (MCP) step also carries what ran and what
came back, so the pane can show the code and its output and the history can keep them."""

from __future__ import annotations

import json
import re
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from engine.browser import BrowserSession, Citation, CitedLines, ToolOutput
from engine.chat.events import ChatEvent
from engine.tools.base import ToolOutcome, truncate_output

# "python": a call to the python tool; "function": a call to a provider's function (MCP).
StepKind: TypeAlias = Literal["search", "open", "find", "other", "limit", "python", "function"]

_VIEWING = re.compile(r"^\*\*viewing lines \[(\d+) - (\d+)\] of (\d+)\*\*$", re.M)
_FIND_TITLE = re.compile(r"in `(.*)`$", re.S)
# The browser's wrappers around a backend error; the user reads only the reason.
_ERROR_PREFIX = re.compile(r"^Error (?:fetching URL `[^`]*`|during search for `[^`]*`): ", re.S)
_NOTE_CHARS = 200
_KINDS: dict[str, StepKind] = {"search": "search", "open": "open", "find": "find"}
# Tool calls per answer (tool_loop.py); here, with the limit's texts, so that a loop elsewhere
# (app/remote_tools.py) can use them without importing the session and MLX.
DEFAULT_MAX_CALLS = 8
# What a step keeps of a tool's output: enough to read in the pane, bounded in the history.
STEP_OUTPUT_CHARS = 8_000


@dataclass(frozen=True)
class ToolStep:
    """One tool call of the turn as the user reads it: "searched: rust borrow checker (5
    results)", "opened report.pdf p. 12, lines 40-80", "found 'X' in report.pdf p. 12: 3
    matches", "ran Python (40 ms)". `ok` is False when the model got an error text instead, or
    the call did not run (`summary` says why)."""

    kind: StepKind
    summary: str
    ok: bool
    recipient: str
    number: int  # 1 for the turn's first tool call
    cursor: int | None = None  # the browser page shown, for citations
    # Python and function calls only: the tool's name for people, what the model sent (code or
    # JSON arguments, highlighted as `language`), what came back (capped, with a visible note),
    # the seconds it ran, and whether the user declined it (then it never ran).
    title: str = ""
    arguments: str = ""
    language: str = ""
    output: str = ""
    duration_s: float | None = None
    declined: bool = False
    waited_s: float = 0.0  # how long the call waited for the user's approval: not thinking time


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


LoopEvent: TypeAlias = ChatEvent | ToolStep | CitationsResolved
# One turn through its tool calls; `close()` it to stop early, as with TurnEvents.
LoopEvents: TypeAlias = Generator[LoopEvent, None, None]


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


def answer_now_text(max_calls: int) -> str:
    """What the model reads instead of the result of a call over the limit."""
    return (
        f"Tool call limit reached: {max_calls} tool calls have been made for this answer. "
        "Do not call any tool again. Answer the user now from what you have read, citing it."
    )


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


def provider_step(
    recipient: str,
    title: str,
    arguments: str,
    number: int,
    outcome: ToolOutcome | None,
    *,
    duration_s: float | None = None,
    declined: bool = False,
    waited_s: float = 0.0,
) -> ToolStep:
    """The step for a python or function call: it ran (`outcome`), the user declined it, or it
    was stopped before it ran (`outcome` None, not declined)."""
    kind: StepKind = "python" if recipient == "python" else "function"
    language = "python" if kind == "python" else "json"
    if declined:
        summary, ok, output = f"not run: the user declined {title}", False, ""
    elif outcome is None:
        summary, ok, output = f"not run: stopped before {title} ran", False, ""
    else:
        output = truncate_output(outcome.text, STEP_OUTPUT_CHARS)[0]
        took = f" ({_seconds(duration_s)})" if duration_s is not None else ""
        ok = not outcome.is_error
        verb = "ran" if kind == "python" else "called"
        summary = f"{verb} {title}{took}" if ok else f"{title} failed{took}: {_gist(output)}"
    return ToolStep(
        kind,
        summary,
        ok,
        recipient,
        number,
        title=title,
        arguments=arguments,
        language=language,
        output=output,
        duration_s=duration_s,
        declined=declined,
        waited_s=waited_s,
    )


def _seconds(duration_s: float) -> str:
    return f"{duration_s * 1000:.0f} ms" if duration_s < 1 else f"{duration_s:.1f} s"


def _gist(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return _short(lines[-1] if lines else "no output", 120)  # a traceback's last line says what


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
