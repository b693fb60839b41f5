"""Asking the user before a tool call runs: the request the loop makes and the answers it takes.

The tool loop runs on the engine thread and blocks in its `Approver` until the user answers (the
app shows a dialog through a queued signal and hands the decision back); `cancel` set while it
waits means Stop was pressed, and the call is not run. What was approved "for this chat" lives
with the chat's loop; what was approved "always" lives in the app's settings.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass
from typing import Protocol


class Decision(enum.Enum):
    ONCE = "once"  # run this call
    CHAT = "chat"  # run it and every later call to this tool in this chat
    ALWAYS = "always"  # run it and every later call to this tool, in every chat
    DECLINE = "decline"  # do not run it; the model reads DECLINED_TEXT


# The tool message a declined call returns, so the model can go on without it.
DECLINED_TEXT = "The user declined to run this tool call."


@dataclass(frozen=True)
class ApprovalRequest:
    """What the user is shown: which tool, and exactly what would run."""

    recipient: str  # "python", "functions.files__read_file"
    title: str  # for people: "Python", "read_file (MCP server “files”)"
    arguments: str  # the code, or the JSON arguments as the model wrote them
    language: str  # "python" for code, "json" for arguments: how to highlight them


class Approver(Protocol):
    def __call__(self, request: ApprovalRequest, cancel: threading.Event) -> Decision:
        """Blocks until the user decides; returns DECLINE if `cancel` is set first."""
        ...
