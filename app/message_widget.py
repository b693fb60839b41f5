"""One widget per message: the user's words, or an answer with its reasoning and facts line.

Answers render at most every RENDER_INTERVAL_MS: streamed text is queued and a single-shot timer
renders it, immediately if the last render is old enough, otherwise when it is. The worker
already sends about 25 updates a second; this keeps a busy UI thread from rendering each one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

from app import resources
from app.history import StoredMessage
from app.history.facts import CUT_NOTES, facts_text
from app.history_bridge import stored_step
from app.markdown_view import CitationKey, HeightCachingLayout, MarkdownView
from app.thinking_pane import ThinkingPane
from app.turn_stream import TurnResult, TurnUpdate, citation_records
from engine import CitationsResolved

_CITATION_KEYS = ("cursor", "first", "last")

RENDER_INTERVAL_MS = 33


def describe_attachment(name: str, pages: int | None, tokens: int | None) -> str:
    facts = [name]
    if pages is not None:
        facts.append(f"{pages} page{'s' if pages != 1 else ''}")
    if tokens is not None and tokens >= 0:
        facts.append(f"{tokens:,} tokens")
    return " · ".join(facts)


def _tool_button(text: str, accessible: str, icon: str | None = None) -> QToolButton:
    button = QToolButton()
    button.setText(text)
    button.setAccessibleName(accessible)
    button.setToolTip(accessible)
    button.setAutoRaise(True)
    if icon:
        button.setIcon(resources.icon(icon))
        button.setProperty("icon_name", icon)  # drawn again on an appearance change
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    return button


def _unseen(delta: str, start: int, have: int) -> str:
    """The part of `delta` (which starts at `start` of the whole text) beyond `have` chars."""
    return delta[max(0, have - start) :]


def _attachment_chip(description: str) -> QWidget:
    """The paperclip icon and the file's facts; an icon, not 📎, which many fonts lack."""
    chip = QWidget()
    row = QHBoxLayout(chip)
    row.setContentsMargins(0, 0, 0, 0)
    row.setSpacing(4)
    icon = QLabel()
    size = chip.fontMetrics().height()
    icon.setPixmap(resources.icon("attach").pixmap(size, size))
    text = QLabel(description)
    text.setProperty("role", "secondary")
    text.setAccessibleName(f"Attachment: {description}")
    text.setToolTip(description)
    text.setMinimumWidth(1)  # a long file name is cut at the column's edge, never widens it
    row.addWidget(icon)
    row.addWidget(text, 1)
    return chip


class VersionSwitcher(QWidget):
    """‹ 2/3 › under an answer that was regenerated: which version is shown, and the way to
    the others. Hidden while an answer has a single version."""

    version_chosen = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.version, self.count, self._allowed = 1, 1, True
        self.previous = _tool_button("‹", "Previous version of this answer")
        self.next = _tool_button("›", "Next version of this answer")
        self.label = QLabel()
        self.label.setProperty("role", "secondary")
        self.previous.clicked.connect(lambda: self.version_chosen.emit(self.version - 1))
        self.next.clicked.connect(lambda: self.version_chosen.emit(self.version + 1))
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        for widget in (self.previous, self.label, self.next):
            row.addWidget(widget)
        self.set_versions(1, 1)

    def set_versions(self, version: int, count: int) -> None:
        self.version, self.count = version, count
        self.label.setText(f"{version}/{count}")
        self.label.setAccessibleName(f"Version {version} of {count}")
        self.setVisible(count > 1)
        self._sync()

    def set_allowed(self, allowed: bool) -> None:
        """False while a turn runs: the conversation under it must not change."""
        self._allowed = allowed
        self._sync()

    def _sync(self) -> None:
        self.previous.setEnabled(self._allowed and self.version > 1)
        self.next.setEnabled(self._allowed and self.version < self.count)


class UserMessageWidget(QFrame):
    edit_requested = Signal()

    def __init__(
        self, text: str, attachments: Sequence[str] = (), parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setProperty("role", "user-message")
        self.text = text
        self.label = QLabel(text)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setAccessibleName("Your message")
        layout = HeightCachingLayout(self)
        for description in attachments:
            layout.addWidget(_attachment_chip(description))
        layout.addWidget(self.label)
        self.edit_button = _tool_button("Edit", "Edit and resend this message")
        self.edit_button.clicked.connect(self.edit_requested)
        self.edit_button.hide()
        layout.addWidget(self.edit_button, 0, Qt.AlignmentFlag.AlignRight)
        self.label.setVisible(bool(text))


class AssistantMessageWidget(QFrame):
    regenerate_requested = Signal()
    version_requested = Signal(int, int)  # message id, version number

    def __init__(
        self,
        message_id: int,
        effort: str | None,
        *,
        dark: bool = False,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setProperty("role", "assistant-message")
        self.message_id = message_id
        self.effort = effort
        self.streaming = False
        self.thinking = ThinkingPane()
        self.thinking.hide()
        self.status_label = QLabel()
        self.status_label.setProperty("role", "secondary")
        self.status_label.hide()
        self.answer = MarkdownView(dark=dark)
        self.answer.citation_clicked.connect(self.open_citation)
        # Each citation's record (turn_stream.citation_records); None until they are known.
        self._citations: dict[CitationKey, dict[str, Any]] | None = None
        self.facts_label = QLabel()
        self.facts_label.setProperty("role", "stats")
        self.facts_label.setWordWrap(True)
        self.facts_label.hide()
        self.copy_button = _tool_button("Copy", "Copy answer", "copy")
        self.copy_button.clicked.connect(self.copy_answer)
        self.regenerate_button = _tool_button("Regenerate", "Regenerate this answer")
        self.regenerate_button.clicked.connect(self.regenerate_requested)
        self.regenerate_button.hide()
        self.versions = VersionSwitcher()
        self.versions.version_chosen.connect(
            lambda version: self.version_requested.emit(self.message_id, version)
        )
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.versions)
        buttons.addWidget(self.copy_button)
        buttons.addWidget(self.regenerate_button)
        buttons.addStretch(1)
        layout = HeightCachingLayout(self)
        layout.setSpacing(4)
        for widget in (self.thinking, self.status_label, self.answer, self.facts_label):
            layout.addWidget(widget)
        layout.addLayout(buttons)
        self._queued = ""
        self._analysis_len = 0  # analysis characters received, to skip what a restore showed
        self._last_render = 0.0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.render_queued)
        self._reasoning_visible = True

    # -- streaming -----------------------------------------------------------------------

    def begin(self, *, show_reasoning_live: bool = True) -> None:
        self.streaming = True
        self.thinking.set_expanded(show_reasoning_live)
        self.set_status("Waiting for the model…")
        self.copy_button.hide()

    def resume(self) -> None:
        """A restored answer that is still streaming in this window continues live."""
        self.streaming = True
        self.answer.resume()
        self.set_status("")
        self.copy_button.hide()

    def apply(self, update: TurnUpdate) -> None:
        if update.prefill is not None:
            done, total = update.prefill
            if done < total:
                status = f"Reading the conversation… {100 * done // max(total, 1)}%"
                self.set_status(status + _time_left(update.prefill_eta_s))
            elif not self.answer.markdown and not self._queued:
                self.set_status("Thinking…")  # the last chunk is read: decoding has begun
        analysis = _unseen(update.analysis, update.analysis_start, self._analysis_len)
        answer = _unseen(
            update.answer, update.answer_start, len(self.answer.markdown) + len(self._queued)
        )
        if analysis:
            self._analysis_len += len(analysis)
            self.thinking.append(analysis)
            self._show_thinking()
            if not self.answer.markdown and not self._queued:
                self.set_status("Thinking…")
        for call in update.tool_calls:
            if not call.recipient.startswith("browser"):  # browser calls arrive as steps
                self.thinking.add_tool_call(call)
                self._show_thinking()
        for step in update.steps:
            self.thinking.add_step(step)
            self._show_thinking()
        if update.cut is not None:
            self.thinking.set_status(CUT_NOTES[update.cut.reason])
        if update.citations is not None:
            self.set_citations(update.citations)
        if answer:
            self.set_status("")
            self._queued += answer
            self._schedule()

    def finish(self, result: TurnResult, *, collapse_reasoning: bool) -> None:
        self.render_queued()
        self.answer.finish()
        self.streaming = False
        self.set_status("")
        if result.error is not None:
            self.set_status(f"The answer stopped with an error: {result.error.text}")
        elif result.status == "cancelled":
            self.set_status(
                "Stopped." if self.answer.markdown else "Stopped before the answer began."
            )
        self.set_facts(result.stats)
        self._show_thinking_time(result.stats)
        if collapse_reasoning:
            self.thinking.set_expanded(False)
        self.copy_button.setVisible(bool(self.answer.markdown))

    @Slot()
    def render_queued(self) -> None:
        self._timer.stop()
        if self._queued:
            text, self._queued = self._queued, ""
            self.answer.append(text)
        self._last_render = time.monotonic()

    def _schedule(self) -> None:
        if self._timer.isActive():
            return
        waited_ms = (time.monotonic() - self._last_render) * 1000
        self._timer.start(max(0, int(RENDER_INTERVAL_MS - waited_ms)))

    # -- finished messages -----------------------------------------------------------------

    def restore(self, message: StoredMessage) -> None:
        self._analysis_len = len(message.reasoning)
        if message.reasoning:
            self.thinking.set_text(message.reasoning)
        for number, call in enumerate(message.tool_calls, 1):
            step = stored_step(call, number)  # a python or MCP call shows as it did live
            if step is not None:
                self.thinking.add_step(step)
            else:
                self.thinking.add_tool_call((call.recipient, call.arguments))
        self._show_thinking()
        self.answer.set_markdown(message.content)
        notes = {
            # as finish() says it live
            "cancelled": "Stopped." if message.content else "Stopped before the answer began.",
            "interrupted": "Interrupted: OSS Desk closed before the answer was finished.",
            "error": f"The answer stopped with an error: {message.error or 'unknown'}",
            "streaming": "Still being written in another window.",
        }
        self.set_status(notes.get(message.status, ""))
        self.set_facts(message.stats)
        self._show_thinking_time(message.stats)
        if isinstance(cited := message.stats.get("citations"), list):
            self.set_citations(cited)
        self.copy_button.setVisible(bool(message.content))
        self.versions.set_versions(message.version, message.version_count)

    def show_version(self, message: StoredMessage, count: int) -> None:
        """Replace what the answer shows by another of its versions (answer, reasoning, facts)."""
        expanded = self.thinking.is_expanded()
        fresh = ThinkingPane()  # a version's tool calls and steps must not add to another's
        fresh.set_expanded(expanded)
        layout = self.layout()
        assert layout is not None
        layout.replaceWidget(self.thinking, fresh)
        self.thinking.hide()
        self.thinking.deleteLater()
        self.thinking = fresh
        self.effort = message.effort
        self._citations = None
        self.answer.set_citations({})
        self.restore(message)
        self.versions.set_versions(message.version, count)

    # -- shared ----------------------------------------------------------------------------

    def set_status(self, text: str) -> None:
        self.status_label.setText(text)
        self.status_label.setVisible(bool(text))

    def set_facts(self, stats: dict[str, object]) -> None:
        text = facts_text(self.effort, stats) if stats else ""
        self.facts_label.setText(text)
        self.facts_label.setVisible(bool(text))

    def set_citations(self, resolved: CitationsResolved | list[Any]) -> None:
        """Where each citation of the answer leads (live, or as stored with the answer)."""
        self.render_queued()  # the citations belong to the whole answer
        records = (
            citation_records(resolved) if isinstance(resolved, CitationsResolved) else resolved
        )
        self._citations = {}
        for r in records:
            if isinstance(r, dict) and all(isinstance(r.get(k), int) for k in _CITATION_KEYS):
                self._citations[(r["cursor"], r["first"], r["last"])] = r
        self.answer.set_citations({k: "url" in r for k, r in self._citations.items()})

    @Slot(object)
    def open_citation(self, key: CitationKey) -> None:
        """Open the cited document at its page in the system viewer (PDFs honour #page=N)."""
        n = self.answer.citation_number(key)
        label = f"Citation [{n}]" if n is not None else "This citation"
        if self._citations is None:
            self.set_status(
                f"{label} cannot be opened: this answer was saved without where its citations lead."
            )
            return
        target = self._citations.get(key, {})
        if not isinstance(target.get("url"), str):
            self.set_status(
                f"{label} points to nothing the model opened; it is shown as the model wrote it."
            )
            return
        if not QDesktopServices.openUrl(QUrl(target["url"])):
            name = Path(str(target.get("path", ""))).name or "The document"
            self.set_status(
                f"{label}: {name} could not be opened. Check that the file still exists and "
                "that an app can open it."
            )
            return
        self.set_status("")

    def set_reasoning_visible(self, visible: bool) -> None:
        self._reasoning_visible = visible
        self._show_thinking()

    def set_dark(self, dark: bool) -> None:
        self.answer.set_dark(dark)

    def answer_text(self) -> str:
        """What is on screen (the queued text is shown within one render interval)."""
        return self.answer.markdown

    @Slot()
    def copy_answer(self) -> None:
        QGuiApplication.clipboard().setText(self.answer.markdown)

    def _show_thinking_time(self, stats: dict[str, object]) -> None:
        thought = stats.get("thinking_s")
        if isinstance(thought, int | float) and not stats.get("budget_cut"):
            self.thinking.set_status(f"thought for {thought:.1f} s")

    def _show_thinking(self) -> None:
        self.thinking.setVisible(self._reasoning_visible and not self.thinking.is_empty())


def _time_left(seconds: float | None) -> str:
    """ " · about 40 s left" for a prompt that takes a while; nothing for a short one."""
    if seconds is None or seconds < 3:
        return ""
    if seconds < 90:
        return f" · about {round(seconds / 5) * 5 or 5} s left"
    return f" · about {round(seconds / 60)} min left"
