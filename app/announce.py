"""Spoken announcements for screen readers: VoiceOver says "Answer finished" when an answer ends.

An answer can take minutes; someone who cannot see the window would otherwise have to poll it
to learn that it is done. Qt (6.8+) turns a QAccessibleAnnouncementEvent into the platform's own
request (NSAccessibilityAnnouncementRequestedNotification on macOS, UIA notifications on
Windows, AT-SPI announcements on Linux); without an active screen reader it costs nothing.
"""

from __future__ import annotations

import re

from PySide6.QtCore import QObject
from PySide6.QtGui import QAccessible, QAccessibleAnnouncementEvent

from app.turn_stream import TurnResult

FINISHED = "Answer finished."
STOPPED = "Answer stopped."
INTERRUPTED = "Answer interrupted."

_FIRST_SENTENCE = re.compile(r"^(.+?[.!?])(?:\s|$)", re.S)


def first_sentence(text: str) -> str:
    """The sentence that names the problem and what to do; the rest is for the banner."""
    text = " ".join(text.split())
    found = _FIRST_SENTENCE.match(text)
    return found.group(1) if found else text


def turn_announcement(result: TurnResult) -> str:
    """What to say when a turn ends: finished, stopped, or the error's first sentence."""
    if result.error is not None:
        return f"Answer stopped with an error: {first_sentence(result.error.text)}"
    if result.status == "cancelled":
        return STOPPED
    if result.status == "interrupted":
        return INTERRUPTED
    return FINISHED


def announce(source: QObject, text: str, *, assertive: bool = False) -> None:
    """Ask the screen reader to say `text`; polite ones wait for what it is saying to end."""
    event = QAccessibleAnnouncementEvent(source, text)
    event.setPoliteness(
        QAccessible.AnnouncementPoliteness.Assertive
        if assertive
        else QAccessible.AnnouncementPoliteness.Polite
    )
    QAccessible.updateAccessibility(event)


def announce_turn(source: QObject, result: TurnResult) -> None:
    """Announce the end of an answer shown in `source` (the window); an error interrupts."""
    announce(source, turn_announcement(result), assertive=result.error is not None)
