"""A Markdown answer on screen: finished blocks rendered once, only the growing tail re-rendered.

Prose blocks are gathered into labels of at most PROSE_BLOCKS_PER_LABEL blocks, so a finished
block costs one small relayout however long the answer is; each code block is its own widget
with a Copy button. Layouts cache every untouched label's height, so an update costs about the
size of the tail, not of the conversation (tests/app/test_chat_view.py measures it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache

from PySide6.QtCore import Qt, QTimer, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices, QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app import resources
from app.markdown_render import (
    CITATION_HREF,
    CITATION_LINK,
    Block,
    MarkdownRenderer,
    StreamingMarkdown,
    StreamUpdate,
)

PROSE_BLOCKS_PER_LABEL = 8
COPIED_FEEDBACK_MS = 1500


class HeightCachingLayout(QVBoxLayout):
    """A column that remembers its height for the last few widths until its content changes.

    Qt's box layout keeps one width; the scroll area asks each message at two widths per layout
    pass, so without this every label of the conversation was measured on every streamed token.
    """

    CACHED_WIDTHS = 4

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self._heights: dict[int, int] = {}

    def heightForWidth(self, width: int) -> int:
        height = self._heights.get(width)
        if height is None:
            if len(self._heights) >= self.CACHED_WIDTHS:
                self._heights.clear()
            height = self._heights[width] = super().heightForWidth(width)
        return height

    def invalidate(self) -> None:
        self._heights.clear()  # a child changed: every remembered height may be wrong
        super().invalidate()


@lru_cache(maxsize=2)
def shared_renderer(dark: bool) -> MarkdownRenderer:
    """Building a parser costs milliseconds, so every view shares one per appearance."""
    return MarkdownRenderer(dark=dark)


class ProseLabel(QLabel):
    def __init__(self, accessible_name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setWordWrap(True)
        # Links come to the view (linkActivated): citations open their document, others the browser.
        self.setOpenExternalLinks(False)
        self.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
            | Qt.TextInteractionFlag.LinksAccessibleByMouse
        )
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.setProperty("role", "message-text")
        self.setAccessibleName(accessible_name)


class CodeBlockWidget(QFrame):
    """A highlighted code block with its language and a Copy button."""

    def __init__(self, block: Block, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setProperty("role", "code-block")
        self._code = ""
        self.language_label = QLabel()
        self.language_label.setProperty("role", "code-language")
        self.copy_button = QToolButton()
        self.copy_button.setText("Copy")
        self.copy_button.setIcon(resources.icon("copy"))
        self.copy_button.setProperty("icon_name", "copy")
        self.copy_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.copy_button.setAutoRaise(True)
        self.copy_button.setAccessibleName("Copy code")
        self.copy_button.clicked.connect(self.copy)
        self.code_label = QLabel()
        self.code_label.setTextFormat(Qt.TextFormat.RichText)
        self.code_label.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.code_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.code_label.setProperty("role", "code")
        self.code_label.setAccessibleName("Code")
        self.code_scroll = QScrollArea()
        self.code_scroll.setWidget(self.code_label)
        self.code_scroll.setWidgetResizable(True)
        self.code_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.code_scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.code_scroll.setAccessibleName("Code block")
        # The block's own background (QSS role code-block) shows through, in either appearance.
        self.code_scroll.viewport().setAutoFillBackground(False)
        self.code_scroll.setStyleSheet("QScrollArea { background: transparent; }")
        self.code_label.setAutoFillBackground(False)
        header = QHBoxLayout()
        header.addWidget(self.language_label)
        header.addStretch(1)
        header.addWidget(self.copy_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 8)
        layout.addLayout(header)
        layout.addWidget(self.code_scroll)
        self.set_block(block)

    @property
    def code(self) -> str:
        return self._code

    def set_block(self, block: Block) -> None:
        self._code = block.code or ""
        self.language_label.setText(block.language or "code")
        self.code_label.setText(block.html)
        self._fit_height()

    @Slot()
    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self._code)
        self.copy_button.setText("Copied")
        QTimer.singleShot(COPIED_FEEDBACK_MS, self, lambda: self.copy_button.setText("Copy"))

    def resizeEvent(self, event: object) -> None:
        super().resizeEvent(event)  # type: ignore[arg-type]
        self._fit_height()

    def _fit_height(self) -> None:
        hint = self.code_label.sizeHint()
        scrollbar = self.code_scroll.horizontalScrollBar().sizeHint().height()
        needs_bar = hint.width() > self.code_scroll.viewport().width()
        self.code_scroll.setFixedHeight(hint.height() + (scrollbar if needs_bar else 0) + 2)


CitationKey = tuple[int, int, int]  # (cursor, first line, last line), as the model wrote it


class MarkdownView(QWidget):
    """Shows one answer; `append` while streaming, `set_markdown` for a finished one.

    Citations 【cursor†Lx-Ly】 show as small numbered links, numbered by first appearance;
    once `set_citations` says which point nowhere, those show struck through, never dropped."""

    citation_clicked = Signal(object)  # CitationKey

    def __init__(self, *, dark: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._citation_numbers: dict[CitationKey, int] = {}
        self._citations_found: Mapping[CitationKey, bool] | None = None
        self._dark = dark
        self._layout = HeightCachingLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(6)
        self._stream = StreamingMarkdown(shared_renderer(dark))
        self._prose: ProseLabel | None = None
        self._prose_html: list[str] = []
        self._finished_count = 0  # widgets in the layout that never change again
        self._tail: list[QWidget] = []
        self._streaming = False

    @property
    def markdown(self) -> str:
        return self._stream.text

    def code_blocks(self) -> list[CodeBlockWidget]:
        # Replaced widgets leave the layout at once but are deleted on the next event loop pass.
        return [w for w in self.findChildren(CodeBlockWidget) if self._layout.indexOf(w) >= 0]

    def prose_labels(self) -> list[ProseLabel]:
        return [w for w in self.findChildren(ProseLabel) if self._layout.indexOf(w) >= 0]

    def append(self, delta: str) -> None:
        if delta:
            self._streaming = True
            self._apply(self._stream.append(delta))

    def finish(self) -> None:
        self._streaming = False
        self._apply(StreamUpdate(self._stream.finish(), []))

    def set_markdown(self, text: str) -> None:
        self._reset()
        update = self._stream.append(text)
        self._apply(StreamUpdate(update.finished + self._stream.finish(), []))

    def resume(self) -> None:
        """Treat a finished (restored) text as still growing, so the next delta continues its
        last block instead of starting a new one."""
        text = self.markdown
        self._reset()
        self._streaming = True
        self._apply(self._stream.append(text))

    def citation_number(self, key: CitationKey) -> int | None:
        return self._citation_numbers.get(key)

    def set_citations(self, found: Mapping[CitationKey, bool]) -> None:
        """Which citations lead to lines (True) and which point nowhere (False)."""
        self._citations_found = dict(found)
        self._render_again()

    def set_dark(self, dark: bool) -> None:
        """Render again with the other appearance's code colours."""
        if dark == self._dark:
            return
        self._dark = dark
        self._render_again()

    def _render_again(self) -> None:
        text, streaming = self.markdown, self._streaming
        self._reset()
        update = self._stream.append(text)
        self._apply(
            update if streaming else StreamUpdate(update.finished + self._stream.finish(), [])
        )

    def _reset(self) -> None:
        while (item := self._layout.takeAt(0)) is not None:
            if (widget := item.widget()) is not None:
                widget.hide()  # deletion waits for the event loop; hide it now
                widget.deleteLater()
        self._stream = StreamingMarkdown(shared_renderer(self._dark))
        self._prose, self._prose_html, self._finished_count, self._tail = None, [], 0, []
        self._citation_numbers = {}  # numbered again in the same order as the text renders

    def _apply(self, update: StreamUpdate) -> None:
        for block in update.finished:
            self._add_finished(block)
        self._show_tail(update.tail)

    def _add_finished(self, block: Block) -> None:
        if block.is_code:
            self._prose = None
            self._insert_finished(CodeBlockWidget(block))
            return
        if self._prose is None or len(self._prose_html) >= PROSE_BLOCKS_PER_LABEL:
            self._prose, self._prose_html = ProseLabel("Answer text"), []
            self._prose.linkActivated.connect(self._link_activated)
            self._insert_finished(self._prose)
        self._prose_html.append(self._numbered(block.html))
        self._prose.setText("".join(self._prose_html))

    def _insert_finished(self, widget: QWidget) -> None:
        self._layout.insertWidget(self._finished_count, widget)
        self._finished_count += 1

    def _show_tail(self, blocks: list[Block]) -> None:
        for i, block in enumerate(blocks):
            current = self._tail[i] if i < len(self._tail) else None
            if block.is_code and isinstance(current, CodeBlockWidget):
                current.set_block(block)
            elif not block.is_code and isinstance(current, ProseLabel):
                current.setText(self._numbered(block.html))
            else:
                widget: QWidget = (
                    CodeBlockWidget(block) if block.is_code else ProseLabel("Answer text")
                )
                if isinstance(widget, ProseLabel):
                    widget.setText(self._numbered(block.html))
                    widget.linkActivated.connect(self._link_activated)
                if current is not None:
                    self._layout.replaceWidget(current, widget)
                    current.hide()
                    current.deleteLater()
                    self._tail[i] = widget
                else:
                    self._layout.addWidget(widget)
                    self._tail.append(widget)
        for extra in self._tail[len(blocks) :]:
            self._layout.removeWidget(extra)
            extra.hide()
            extra.deleteLater()
        del self._tail[len(blocks) :]

    def _numbered(self, html: str) -> str:
        """The renderer's citation placeholders as numbered links (struck through when known
        to point nowhere)."""
        if CITATION_HREF not in html:
            return html

        def link(found: re.Match[str]) -> str:
            key = (int(found.group(1)), int(found.group(2)), int(found.group(3)))
            n = self._citation_numbers.setdefault(key, len(self._citation_numbers) + 1)
            href = f"{CITATION_HREF}{key[0]}:{key[1]}:{key[2]}"
            if self._citations_found is not None and not self._citations_found.get(key, False):
                return (
                    f'<a href="{href}" style="text-decoration: line-through"><sup>[{n}?]</sup></a>'
                )
            return f'<a href="{href}" style="text-decoration: none"><sup>[{n}]</sup></a>'

        return CITATION_LINK.sub(link, html)

    @Slot(str)
    def _link_activated(self, link: str) -> None:
        if link.startswith(CITATION_HREF):
            parts = link.removeprefix(CITATION_HREF).split(":")
            if len(parts) == 3 and all(p.isdigit() for p in parts):
                self.citation_clicked.emit((int(parts[0]), int(parts[1]), int(parts[2])))
            return
        QDesktopServices.openUrl(QUrl(link))
