"""User-facing messages go through one bridge (convention 12): `error`, `warning`, `info`.

Each logs, then posts a `UserMessage` on the module's `MessageBridge`, which keeps messages until
a view attaches (start-up problems happen before the window exists) and then hands them over.
The window shows them in a non-modal banner with "Copy details". Call these from the UI thread;
worker threads send `ErrorInfo` values through their own signals instead.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)

Level: TypeAlias = Literal["info", "warning", "error"]


@dataclass(frozen=True)
class ErrorInfo:
    """An error as a value that can cross threads: what to show, and what to copy for a report.

    `is_bug` marks an unexpected exception (a defect of ours), as opposed to an expected problem
    such as a damaged file.
    """

    title: str
    text: str
    details: str = ""
    is_bug: bool = False

    @classmethod
    def from_exception(
        cls, error: BaseException, *, title: str = "", bug: bool = False
    ) -> ErrorInfo:
        details = "".join(traceback.format_exception(error)).strip()
        if bug:
            text = (
                "Something went wrong inside OSS Desk. The conversation so far is kept. "
                "Please report this with the details below."
            )
            return cls(title or "Unexpected error", text, details, is_bug=True)
        return cls(title, str(error) or type(error).__name__, details)


@dataclass(frozen=True)
class Action:
    """A button on the banner that does the remedy (e.g. "Set Up Model…")."""

    label: str
    run: Callable[[], None] = field(compare=False)


@dataclass(frozen=True)
class UserMessage:
    """`topic` names what the message is about ("fit", "model"): a newer message on the same
    topic replaces the banner of the older one instead of stacking under it."""

    level: Level
    text: str
    details: str = ""
    topic: str = ""
    action: Action | None = None


class MessageBridge(QObject):
    """Carries messages to the one view that shows them; caches until it attaches."""

    message_posted = Signal(object)  # UserMessage
    topic_withdrawn = Signal(str)  # what the messages on this topic said is no longer true

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pending: list[UserMessage] = []
        self._attached = False

    def post(self, message: UserMessage) -> None:
        if self._attached:
            self.message_posted.emit(message)
        else:
            self._pending.append(message)

    def withdraw(self, topic: str) -> None:
        self._pending = [m for m in self._pending if m.topic != topic]
        self.topic_withdrawn.emit(topic)

    def attach(self, slot: Callable[[UserMessage], None]) -> None:
        """Connect the view and deliver what arrived before it."""
        self.message_posted.connect(slot)
        self._attached = True
        pending, self._pending = self._pending, []
        for message in pending:
            self.message_posted.emit(message)

    def detach(self, slot: Callable[[UserMessage], None]) -> None:
        self.message_posted.disconnect(slot)
        self._attached = False


_bridge: MessageBridge | None = None


def bridge() -> MessageBridge:
    """The application's bridge; one of the two module-level singletons (convention 17)."""
    global _bridge
    if _bridge is None:
        _bridge = MessageBridge()
    return _bridge


def _post(
    level: Level, text: str, details: str | None, topic: str = "", action: Action | None = None
) -> None:
    log.log(
        {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}[level],
        "%s%s",
        text,
        f"\n{details}" if details else "",
    )
    bridge().post(UserMessage(level, text, details or "", topic, action))


def error(
    text: str, *, details: str | None = None, topic: str = "", action: Action | None = None
) -> None:
    _post("error", text, details, topic, action)


def warning(
    text: str, *, details: str | None = None, topic: str = "", action: Action | None = None
) -> None:
    _post("warning", text, details, topic, action)


def info(
    text: str, *, details: str | None = None, topic: str = "", action: Action | None = None
) -> None:
    _post("info", text, details, topic, action)


def withdraw(topic: str) -> None:
    """Close the banners about `topic` (e.g. the documents fit again)."""
    bridge().withdraw(topic)


def show_error(problem: ErrorInfo, *, topic: str = "", action: Action | None = None) -> None:
    """An ErrorInfo from a worker, as an error banner."""
    text = (
        problem.text if problem.title in ("", problem.text) else f"{problem.title}: {problem.text}"
    )
    error(text, details=problem.details or None, topic=topic, action=action)
