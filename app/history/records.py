"""What the history store hands out and takes in: frozen records with string enums.

Enum-like fields (role, status, effort) are stored as these exact strings, never as indices, so a
value never changes meaning between versions (convention 19). New values may be added; none are
renumbered or reused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, TypeAlias

Effort: TypeAlias = Literal["low", "medium", "high"]
Role: TypeAlias = Literal["user", "assistant", "tool", "system"]
Status: TypeAlias = Literal["complete", "streaming", "cancelled", "error", "interrupted"]

EFFORTS: tuple[str, ...] = ("low", "medium", "high")
ROLES: tuple[str, ...] = ("user", "assistant", "tool", "system")
STATUSES: tuple[str, ...] = ("complete", "streaming", "cancelled", "error", "interrupted")
# States an answer may end in; "interrupted" is only set by the store when it finds a dead stream.
# "interrupted": the app quit while the answer streamed (start-up recovery writes it too).
FINAL_STATUSES: tuple[str, ...] = ("complete", "cancelled", "error", "interrupted")

# Control characters cannot come from the keyboard, so the GUI can HTML-escape a snippet first and
# then turn these into <b>…</b> without ambiguity.
MATCH_START = "\x02"
MATCH_END = "\x03"


def check_choice(value: str, allowed: tuple[str, ...], what: str) -> str:
    """`value` as a plain str (a StrEnum member becomes its value); ValueError if not allowed."""
    text = str(value)
    if text not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}; got {value!r}")
    return text


@dataclass(frozen=True)
class NewAttachment:
    """A dropped document as the composer prepared it, before it is saved."""

    name: str
    kind: str  # "pdf", "docx", "text", ...: free text, only shown and exported
    text: str  # the extracted text that was given to the model
    token_count: int
    pages: int | None = None
    sha256: str = ""  # of the original file, so a re-drop can be recognised


@dataclass(frozen=True)
class StoredAttachment:
    id: int
    name: str
    kind: str
    pages: int | None
    token_count: int
    text: str
    sha256: str


@dataclass(frozen=True)
class ToolCall:
    """One call the model made and, once it ran, what the tool answered.

    A call the tool loop ran for a tool provider (python, an MCP function) is also a step of the
    reasoning pane (schema v4): `kind` says which, and the rest is what the pane shows again."""

    recipient: str  # e.g. "browser.search" or "functions.get_weather"
    arguments: str  # raw text as the model wrote it: it may not be valid JSON (python: code)
    result: str | None = None  # a step's output is capped (engine STEP_OUTPUT_CHARS)
    kind: str | None = None  # "python" or "function" for a step; None: a plain call
    title: str = ""  # the tool's name for people: "Python", "read_file (MCP server “files”)"
    language: str = ""  # of `arguments`: "python" or "json"
    summary: str = ""  # the pane's line: "ran Python (0.4 s)"
    ok: bool = True  # False: the tool reported an error, or the call did not run
    duration_s: float | None = None
    declined: bool = False  # the user said no; the model read that instead of a result

    def to_json(self) -> dict[str, Any]:
        """The stored shape: the three keys every version wrote, and a step's facts when set."""
        data: dict[str, Any] = {
            "recipient": self.recipient,
            "arguments": self.arguments,
            "result": self.result,
        }
        for f in fields(self)[3:]:
            value = getattr(self, f.name)
            if value != f.default:
                data[f.name] = value
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ToolCall:
        """Reads `to_json`'s shape; keys a newer version may add are skipped."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class StoredMessage:
    id: int
    conversation_id: int
    position: int  # 0, 1, 2, ... within the conversation
    role: Role
    content: str  # the user's text or the final answer
    reasoning: str  # analysis channel; "" when there was none
    status: Status
    effort: Effort | None  # the effort an answer was generated with; None for user messages
    created_at: float  # Unix time, seconds
    tool_calls: tuple[ToolCall, ...] = ()
    # ttft_s, reasoning_tokens, answer_tokens, decode_tps, prefill_tps, thinking_s, budget_cut, ...
    stats: dict[str, Any] = field(default_factory=dict, hash=False)  # a dict cannot be hashed
    error: str | None = None
    attachments: tuple[StoredAttachment, ...] = ()
    # An answer regenerated: which version this is (1, 2, ... in the order they were written),
    # and, on the selected one as get_conversation returns it, the others in that order.
    version: int = 1
    alternatives: tuple[StoredMessage, ...] = ()

    @property
    def version_count(self) -> int:
        return 1 + len(self.alternatives)

    def __post_init__(self) -> None:
        check_choice(self.role, ROLES, "role")
        check_choice(self.status, STATUSES, "status")
        if self.effort is not None:
            check_choice(self.effort, EFFORTS, "effort")


@dataclass(frozen=True)
class ConversationSummary:
    """One row of the sidebar."""

    id: int
    title: str
    created_at: float
    updated_at: float
    reasoning_effort: Effort
    message_count: int
    preview: str  # the latest user or assistant text, whitespace collapsed, cut short
    instructions: str | None = None  # the chat's own custom instructions (None: the app's)

    def __post_init__(self) -> None:
        check_choice(self.reasoning_effort, EFFORTS, "reasoning_effort")


@dataclass(frozen=True)
class SearchHit:
    """A conversation that matches a search, with the best matching passage."""

    conversation_id: int
    title: str
    snippet: str  # matches are wrapped in MATCH_START ... MATCH_END
    message_id: int | None  # None when only the title matched
    in_reasoning: bool = False  # the passage comes from the reasoning, not the answer

    def parts(self) -> list[tuple[str, bool]]:
        """The snippet as (text, is_match) pieces, for a view that styles matches itself."""
        pieces: list[tuple[str, bool]] = []
        for i, chunk in enumerate(self.snippet.split(MATCH_START)):
            if i == 0:
                pieces.append((chunk, False))
                continue
            match, _, rest = chunk.partition(MATCH_END)
            pieces += [(match, True), (rest, False)]
        return [(text, is_match) for text, is_match in pieces if text]
