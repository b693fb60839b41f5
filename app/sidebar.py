"""The list of conversations under date headings (Today, Yesterday, Previous 7 Days, by month),
with New Chat, rename (double-click or F2), delete, and search over titles, answers and reasoning
with the matching words highlighted.

The sidebar is a view: it emits what the user asked for and the chat controller does it. The
one exception is search, which runs on a thread of its own (BackgroundSearch) when the window
gives it one: typing must never wait for SQLite, and each keystroke stops the search before it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPoint,
    QSize,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import QFont, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app import messages, resources
from app.history import MATCH_END, MATCH_START, ConversationSummary, HistoryError, SearchHit
from app.history.searcher import Searcher, SearchResult

SEARCH_DELAY_MS = 150
# The date heading ("Today", "Yesterday", …) drawn above the first chat of its group.
HEADING_ROLE = Qt.ItemDataRole.UserRole + 2
ID_ROLE = Qt.ItemDataRole.UserRole
MESSAGE_ROLE = Qt.ItemDataRole.UserRole + 1
# A hit's matched words (as the snippet marks them) and whether they are in the reasoning.
MATCHES_ROLE = Qt.ItemDataRole.UserRole + 3
IN_REASONING_ROLE = Qt.ItemDataRole.UserRole + 4


# Markdown syntax a snippet may carry from an answer: the marks go, the words stay.
_MARKDOWN_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
# Emphasis marks touch a word on one side; "2 * 3" keeps its star.
_MARKDOWN_EMPHASIS = re.compile(r"(?:\*{1,3}|_{2,3}|~~)(?=\S)|(?<=\S)(?:\*{1,3}|_{2,3}|~~)|`+")
_MARKDOWN_LINE_START = re.compile(r"(^|\n)\s*(#{1,6}\s+|>\s?|[-*+]\s+|\d+\.\s+)")


def plain_snippet(snippet: str) -> str:
    """A snippet of Markdown as the words a reader sees: no `**`, backticks, `#` or link URLs."""
    text = _MARKDOWN_LINK.sub(r"\1", snippet)
    text = _MARKDOWN_LINE_START.sub(r"\1", text)
    text = _MARKDOWN_EMPHASIS.sub("", text)
    return " ".join(text.split())


def highlighted(snippet: str) -> str:
    """A search snippet as HTML: Markdown marks dropped, escaped, then the match markers <b>."""
    text = html.escape(plain_snippet(snippet))
    return text.replace(MATCH_START, "<b>").replace(MATCH_END, "</b>")


def matched_words(hit: SearchHit) -> list[str]:
    """The words a hit matched, as written in the message ("pyth" matches "Python"), once each."""
    words: dict[str, str] = {}
    for text, is_match in hit.parts():
        if is_match and text.strip():
            words.setdefault(text.strip().casefold(), text.strip())
    return list(words.values())


def date_group(when: datetime, today: date) -> str:
    """The sidebar heading a chat last changed at `when` goes under, as Mac chat apps group them:
    Today, Yesterday, Previous 7 Days, then one heading per month ("November 2026")."""
    day = when.date()
    if day >= today:  # a clock set back still files the chat under Today
        return "Today"
    if day == today - timedelta(days=1):
        return "Yesterday"
    if day > today - timedelta(days=7):
        return "Previous 7 Days"
    return f"{when:%B %Y}"


def date_text(when: datetime, today: date) -> str:
    """The date shown on a chat's row: the time today, the weekday this week, else the date."""
    if when.date() >= today:
        return f"{when:%H:%M}"
    if when.date() > today - timedelta(days=7):
        return f"{when:%A}"
    return f"{when.day} {when:%b %Y}"


AnyIndex = QModelIndex | QPersistentModelIndex


class HeadingDelegate(QStyledItemDelegate):
    """Draws a row's date heading above it, in the row's own space: the heading is not an item,
    so it cannot be selected, renamed or counted as a chat, and keyboard moves skip it."""

    def _heading_height(self, index: AnyIndex) -> int:
        return 0 if not index.data(HEADING_ROLE) else self._font(index).pointSize() * 2 + 10

    def _font(self, index: AnyIndex) -> QFont:
        parent = self.parent()
        font = QFont(parent.font()) if isinstance(parent, QWidget) else QFont()
        font.setBold(True)
        font.setPointSizeF(max(8.0, font.pointSizeF() * 0.85))
        return font

    def _below_heading(self, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        option.rect = option.rect.adjusted(0, self._heading_height(index), 0, 0)

    def sizeHint(self, option: QStyleOptionViewItem, index: AnyIndex) -> QSize:
        size = super().sizeHint(option, index)
        return QSize(size.width(), size.height() + self._heading_height(index))

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        heading = index.data(HEADING_ROLE)
        if heading:
            area = option.rect.adjusted(8, 6, -8, 0)
            area.setHeight(self._heading_height(index) - 6)
            painter.save()
            painter.setFont(self._font(index))
            painter.setPen(option.palette.placeholderText().color())
            painter.drawText(
                area, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, heading
            )
            painter.restore()
        below = QStyleOptionViewItem(option)
        self._below_heading(below, index)
        super().paint(painter, below, index)

    def updateEditorGeometry(
        self, editor: QWidget, option: QStyleOptionViewItem, index: AnyIndex
    ) -> None:
        below = QStyleOptionViewItem(option)
        self._below_heading(below, index)
        super().updateEditorGeometry(editor, below, index)


class BackgroundSearch(QObject):
    """app.history.searcher.Searcher for Qt: its results arrive as a signal on the UI thread."""

    result_ready = Signal(object)  # SearchResult, emitted on the search thread (so: queued)

    def __init__(
        self,
        path: Path | str,
        parent: QObject | None = None,
        *,
        on_step: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(parent)
        self._searcher = searcher = Searcher(path, self.result_ready.emit, on_step=on_step)
        # The thread must not emit from a deleted object, whoever deletes it.
        self.destroyed.connect(lambda *_: searcher.close())

    def submit(self, text: str) -> int:
        return self._searcher.submit(text)

    def cancel(self) -> int:
        return self._searcher.cancel()

    def close(self) -> bool:
        return self._searcher.close()


class Sidebar(QWidget):
    conversation_selected = Signal(int)
    hit_selected = Signal(int, object)  # conversation id, message id or None
    # After hit_selected has opened the chat: message id or None, matched words, in reasoning.
    hit_opened = Signal(object, list, bool)
    new_chat_requested = Signal()
    rename_requested = Signal(int, str)
    delete_requested = Signal(int)
    search_changed = Signal(str)
    conversations_shown = Signal()  # the list was filled again: titles may have changed

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sidebar")
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search chats")
        self.search.setClearButtonEnabled(True)
        self.search.setAccessibleName("Search chats")
        self.search.setAccessibleDescription("Finds words in titles, answers and reasoning.")
        self.new_button = QToolButton()
        self.new_button.setIcon(resources.icon("new-chat"))
        self.new_button.setProperty("icon_name", "new-chat")
        self.new_button.setText("New Chat")
        self.new_button.setAccessibleName("New chat")
        self.new_button.setToolTip("New Chat (Ctrl+N)")
        self.new_button.setAutoRaise(True)
        self.new_button.clicked.connect(self.new_chat_requested)
        self.list = QListWidget()
        self.list.setObjectName("chatList")
        self.list.setAccessibleName("Chats")
        # long titles are cut with an ellipsis, never scrolled sideways
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setEditTriggers(
            QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.DoubleClicked
        )
        self.list.setItemDelegate(HeadingDelegate(self.list))
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._context_menu)
        self.list.itemActivated.connect(self._activated)
        self.list.itemClicked.connect(self._activated)
        self.list.itemChanged.connect(self._renamed)
        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(self.new_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addLayout(top)
        layout.addWidget(self.list, 1)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(SEARCH_DELAY_MS)
        self._timer.timeout.connect(self._search_now)
        self.search.textChanged.connect(self._typed)
        self._filling = False
        self._current: int | None = None
        self._background: BackgroundSearch | None = None
        self._generation = 0  # of the search whose result may be shown
        self._last_error = ""
        self._titles: dict[int, str] = {}

    # -- filling -----------------------------------------------------------------------------

    def searching(self) -> bool:
        return bool(self.search.text().strip())

    def use_background_search(self, background: BackgroundSearch) -> None:
        """Search with `background` from now on; without one, search_changed asks the owner."""
        self._background = background
        background.setParent(self)
        background.result_ready.connect(self._show_result)

    def refresh_search(self) -> bool:
        """Search again (the history changed); False when there is no background search."""
        if self._background is None or not self.searching():
            return False
        self._generation = self._background.submit(self.search.text().strip())
        return True

    def title_of(self, conversation_id: int) -> str | None:
        """The title the list last showed for a chat (None if it was not in the list)."""
        return self._titles.get(conversation_id)

    def set_conversations(
        self, conversations: Sequence[ConversationSummary], *, today: date | None = None
    ) -> None:
        """Fill the list, newest first, under date headings (see date_group)."""
        today = today or date.today()
        self._filling = True
        self._set_showing_hits(False)
        self._titles = {s.id: s.title for s in conversations}
        try:
            self.list.clear()
            heading = None
            for summary in sorted(conversations, key=lambda s: -s.updated_at):
                when = datetime.fromtimestamp(summary.updated_at)
                item = QListWidgetItem(summary.title)
                if date_group(when, today) != heading:
                    heading = date_group(when, today)
                    item.setData(HEADING_ROLE, heading)
                item.setData(ID_ROLE, summary.id)
                shown = date_text(when, today)
                item.setToolTip(f"{summary.preview or summary.title}\n{shown}")
                item.setData(Qt.ItemDataRole.AccessibleDescriptionRole, f"Last changed {shown}")
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
                self.list.addItem(item)
        finally:
            self._filling = False
        self.mark_current(self._current)
        self.conversations_shown.emit()

    def headings(self) -> list[str]:
        """The date headings shown, top to bottom."""
        items = (self.list.item(r) for r in range(self.list.count()))
        return [str(i.data(HEADING_ROLE)) for i in items if i.data(HEADING_ROLE)]

    def _set_showing_hits(self, on: bool) -> None:
        """Hits are drawn by labels that need the item's whole rectangle: the stylesheet drops
        the chat rows' padding for them (QListView#chatList[hits="true"])."""
        if bool(self.list.property("hits")) != on:
            self.list.setProperty("hits", on)
            self.list.style().unpolish(self.list)
            self.list.style().polish(self.list)

    def show_hits(self, hits: Sequence[SearchHit]) -> None:
        self._filling = True
        self._set_showing_hits(True)
        try:
            self.list.clear()
            for hit in hits:
                item = QListWidgetItem()
                item.setData(ID_ROLE, hit.conversation_id)
                item.setData(MESSAGE_ROLE, hit.message_id)
                item.setData(MATCHES_ROLE, matched_words(hit))
                item.setData(IN_REASONING_ROLE, hit.in_reasoning)
                where = " (in reasoning)" if hit.in_reasoning else ""
                label = QLabel(
                    f"<b>{html.escape(hit.title)}</b><br>"
                    f"<span>{highlighted(hit.snippet)}{where}</span>"
                )
                label.setWordWrap(True)
                label.setTextFormat(Qt.TextFormat.RichText)
                label.setContentsMargins(8, 4, 8, 4)  # lines up with the chat rows' text
                label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
                # The label is all that is drawn: item text would be painted under it (in the
                # selection colour once selected). VoiceOver reads the accessible text instead.
                item.setData(Qt.ItemDataRole.AccessibleTextRole, hit.title)
                width = max(120, self.list.viewport().width() - 8)
                item.setSizeHint(QSize(width, label.heightForWidth(width) + 4))
                self.list.addItem(item)
                self.list.setItemWidget(item, label)
            if not hits:
                empty = QListWidgetItem("No chats match.")
                empty.setFlags(Qt.ItemFlag.NoItemFlags)
                self.list.addItem(empty)
        finally:
            self._filling = False

    def mark_current(self, conversation_id: int | None) -> None:
        self._current = conversation_id
        self.list.blockSignals(True)
        try:
            self.list.clearSelection()
            for row in range(self.list.count()):
                item = self.list.item(row)
                if item.data(ID_ROLE) == conversation_id and conversation_id is not None:
                    self.list.setCurrentItem(item)
                    break
        finally:
            self.list.blockSignals(False)

    def focus_search(self) -> None:
        self.search.setFocus()
        self.search.selectAll()

    def rename(self, conversation_id: int) -> None:
        for row in range(self.list.count()):
            item = self.list.item(row)
            if item.data(ID_ROLE) == conversation_id:
                self.list.editItem(item)

    # -- slots ---------------------------------------------------------------------------

    @Slot(str)
    def _typed(self, _text: str) -> None:
        if self._background is not None:
            self._generation = self._background.cancel()  # its result would be out of date
        self._timer.start()

    @Slot()
    def _search_now(self) -> None:
        text = self.search.text().strip()
        if text and self._background is not None:
            self._generation = self._background.submit(text)
        else:
            self.search_changed.emit(text)

    @Slot(object)
    def _show_result(self, result: SearchResult) -> None:
        if result.generation != self._generation or not self.searching():
            return
        error = result.error
        if error is None:
            self._last_error = ""
            self.show_hits(result.hits)
        elif str(error) != self._last_error:  # once, not on every keystroke
            self._last_error = str(error)
            if isinstance(error, HistoryError):
                messages.error(str(error), details=error.details or None)
            else:
                messages.show_error(messages.ErrorInfo.from_exception(error, bug=True))

    @Slot(QListWidgetItem)
    def _activated(self, item: QListWidgetItem) -> None:
        conversation_id = item.data(ID_ROLE)
        if conversation_id is None:
            return
        if self.searching():
            message_id = item.data(MESSAGE_ROLE)
            self.hit_selected.emit(int(conversation_id), message_id)
            words = item.data(MATCHES_ROLE) or []
            self.hit_opened.emit(message_id, list(words), bool(item.data(IN_REASONING_ROLE)))
        elif conversation_id != self._current:  # a click and an activation may both arrive
            self._current = int(conversation_id)
            self.conversation_selected.emit(int(conversation_id))

    @Slot(QListWidgetItem)
    def _renamed(self, item: QListWidgetItem) -> None:
        if self._filling or self.searching() or item.data(ID_ROLE) is None:
            return
        self.rename_requested.emit(int(item.data(ID_ROLE)), item.text())

    @Slot(QPoint)
    def _context_menu(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        if item is None or item.data(ID_ROLE) is None:
            return
        conversation_id = int(item.data(ID_ROLE))
        menu = QMenu(self)
        menu.addAction("Rename", lambda: self.list.editItem(item))
        menu.addAction("Delete…", lambda: self.delete_requested.emit(conversation_id))
        menu.popup(self.list.viewport().mapToGlobal(pos))
