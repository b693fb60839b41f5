"""Documents attached to the next message: read in reader processes, counted on the engine
thread, shown as removable chips.

A dropped file goes through: reading (engine.ReaderPool: each file in its own process, under time
and memory limits, so a hostile file cannot stall or exhaust the app), counting (the tokenizer
lives on the engine thread, so the worker counts the document's whole <document> block), ready.
Removing a chip while it reads kills its reader; so does quitting (`shutdown`). A file that
cannot be read is reported in the banner with the engine's own sentence (it names the file and
says what to do) and dropped; nothing else is affected.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Literal

from PySide6.QtCore import QObject, QSize, Qt, Signal, Slot
from PySide6.QtGui import QPainter, QPaintEvent, QResizeEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QWidget,
)

from app import messages
from app.engine_client import EngineClient
from app.flow_layout import FlowLayout
from app.message_widget import describe_attachment
from app.messages import ErrorInfo
from engine import (
    ExtractedDocument,
    ReaderPool,
    Reading,
    UnsupportedDocumentError,
    attachment_block,
)

log = logging.getLogger(__name__)

State = Literal["reading", "counting", "ready"]
SEARCHED_SUFFIX = " · will be searched"
# The tray shows this many rows of chips and scrolls beyond them.
MAX_ROWS = 3
# A chip's text is at most this wide; a longer file name is elided in its middle.
MAX_CHIP_TEXT_WIDTH = 320


@dataclass(frozen=True)
class Attachment:
    key: int
    path: Path
    state: State = "reading"
    doc: ExtractedDocument | None = None
    tokens: int | None = None  # of the whole <document> block; -1 when it could not be counted
    searchable: bool = False  # too long to read whole: the model will search it instead

    @property
    def label(self) -> str:
        if self.state == "reading":
            return f"{self.path.name} · reading…"
        pages = self.doc.pages if self.doc else None
        if self.state == "counting":
            return describe_attachment(self.path.name, pages, None) + " · counting…"
        if self.searchable:
            return describe_attachment(self.path.name, pages, None) + SEARCHED_SUFFIX
        return describe_attachment(self.path.name, pages, self.tokens)


class _ExtractionSignals(QObject):
    extracted = Signal(int, object, str)  # key, ExtractedDocument, its <document> block
    failed = Signal(int, object)  # key, ErrorInfo


def _deliver(signals: _ExtractionSignals, key: int, reading: Reading) -> None:
    """A reading's outcome, as a signal to the UI thread. Runs on the reading's own thread (or,
    for a cancel, on the UI thread, and then does nothing): it must only emit, and it does the
    work that a long document makes slow here rather than on the UI thread."""
    if reading.cancelled():
        return
    # RuntimeError: the window was closed while this file was read, and nobody is waiting for it.
    with contextlib.suppress(RuntimeError):
        try:
            doc = reading.result(0)
            block = attachment_block(doc)
        except UnsupportedDocumentError as e:
            signals.failed.emit(key, ErrorInfo.from_exception(e, title=""))
        except Exception as e:  # the reader's boundary: report, never lose the UI
            log.error("reading %s crashed", reading.path, exc_info=e)
            signals.failed.emit(key, ErrorInfo.from_exception(e, title=reading.path.name, bug=True))
        else:
            signals.extracted.emit(key, doc, block)


class AttachmentList(QObject):
    """The attachments of the message being written (UI thread)."""

    changed = Signal()
    failed = Signal(object)  # ErrorInfo, also shown in the banner

    def __init__(
        self,
        engine: EngineClient,
        parent: QObject | None = None,
        *,
        readers: ReaderPool | None = None,
    ) -> None:
        super().__init__(parent)
        self._engine = engine
        self._items: dict[int, Attachment] = {}
        self._readings: dict[int, Reading] = {}
        self._next_key = 0
        self.readers = readers or ReaderPool()
        self._signals = _ExtractionSignals(self)
        self._signals.extracted.connect(self._extracted)
        self._signals.failed.connect(self._failed)
        engine.tokens_counted.connect(self._counted)

    def items(self) -> list[Attachment]:
        return list(self._items.values())

    def add_paths(self, paths: Iterable[str | Path]) -> None:
        for raw in paths:
            path = Path(raw)
            if any(a.path == path for a in self._items.values()):
                continue
            self._next_key += 1
            key = self._next_key
            self._items[key] = Attachment(key, path)
            reading = self.readers.read(path)  # returns at once; the reader runs elsewhere
            self._readings[key] = reading
            reading.add_done_callback(partial(_deliver, self._signals, key))
        self.changed.emit()

    def remove(self, key: int) -> None:
        self._stop_reading(key)
        if self._items.pop(key, None) is not None:
            self.changed.emit()

    def clear(self) -> None:
        for key in list(self._readings):
            self._stop_reading(key)
        self._items.clear()
        self.changed.emit()

    def shutdown(self) -> None:
        """Kill every reader now (quitting): never waits for one to finish."""
        self._readings.clear()
        self.readers.shutdown()

    def pending(self) -> bool:
        return any(a.state != "ready" for a in self._items.values())

    def ready(self) -> list[Attachment]:
        return [a for a in self._items.values() if a.state == "ready" and a.doc is not None]

    def documents(self) -> list[ExtractedDocument]:
        return [a.doc for a in self.ready() if a.doc is not None]

    def set_searchable(self, searchable: bool) -> None:
        """Mark the ready documents as searched (too long to read whole) or read whole; the
        chat decides, since it depends on the context left."""
        changed = False
        for key, item in self._items.items():
            if item.state == "ready" and item.searchable != searchable:
                self._items[key] = replace(item, searchable=searchable)
                changed = True
        if changed:
            self.changed.emit()

    def token_total(self) -> int:
        return sum(max(0, a.tokens or 0) for a in self.ready())

    def _stop_reading(self, key: int) -> None:
        reading = self._readings.pop(key, None)
        if reading is not None:
            reading.cancel()  # kills its process; its callback sees the cancel and stays quiet

    @Slot(int, object, str)
    def _extracted(self, key: int, doc: ExtractedDocument, block: str) -> None:
        self._readings.pop(key, None)
        if key not in self._items:
            return  # removed while it was being read
        self._items[key] = replace(self._items[key], state="counting", doc=doc)
        for warning in doc.warnings:
            messages.warning(warning)
        self._engine.count_tokens(key, block)
        self.changed.emit()

    @Slot(int, object)
    def _failed(self, key: int, problem: ErrorInfo) -> None:
        self._readings.pop(key, None)
        if self._items.pop(key, None) is None:
            return  # removed while it was being read: its problem no longer matters
        messages.show_error(problem)
        self.failed.emit(problem)
        self.changed.emit()

    @Slot(int, int)
    def _counted(self, key: int, tokens: int) -> None:
        item = self._items.get(key)
        if item is None or item.state != "counting":
            return
        self._items[key] = replace(item, state="ready", tokens=tokens)
        self.changed.emit()


class ChipLabel(QLabel):
    """A chip's text with the file name elided in its middle, so that the name's start, its
    extension and the facts after it (pages, tokens) stay readable in any width.

    text() stays the whole label, so VoiceOver and copy see all of it; only painting is cut.
    """

    def __init__(self, name: str, text: str, parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self._name = name if text.startswith(name) else ""

    def shown_text(self, width: int | None = None) -> str:
        """What is painted in `width` pixels (the label's own width by default)."""
        text = self.text()
        width = self.contentsRect().width() if width is None else width
        metrics = self.fontMetrics()
        if metrics.horizontalAdvance(text) <= width:
            return text
        facts = text[len(self._name) :]
        room = width - metrics.horizontalAdvance(facts)
        if self._name and room >= metrics.horizontalAdvance("ab…yz"):
            return metrics.elidedText(self._name, Qt.TextElideMode.ElideMiddle, room) + facts
        return metrics.elidedText(text, Qt.TextElideMode.ElideRight, width)

    def sizeHint(self) -> QSize:
        full = super().sizeHint()
        return QSize(min(full.width(), MAX_CHIP_TEXT_WIDTH), full.height())

    def minimumSizeHint(self) -> QSize:
        # A few characters and the ellipsis: the chip may narrow to its row, never widen it.
        width = self.fontMetrics().horizontalAdvance("abc…")
        return QSize(width, super().minimumSizeHint().height())

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        rect = self.contentsRect()
        self.style().drawItemText(
            painter,
            rect,
            int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
            self.palette(),
            self.isEnabled(),
            self.shown_text(rect.width()),
            self.foregroundRole(),
        )


class AttachmentChip(QFrame):
    remove_requested = Signal(int)

    def __init__(self, item: Attachment, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setProperty("role", "card")
        self.key = item.key
        self.label = ChipLabel(item.path.name, item.label)
        self.setToolTip(str(item.path))  # the whole path: the name may be elided
        self.remove_button = QToolButton()
        self.remove_button.setText("×")
        self.remove_button.setAutoRaise(True)
        self.remove_button.setAccessibleName(f"Remove {item.path.name}")
        self.remove_button.setToolTip(f"Remove {item.path.name}")
        self.remove_button.clicked.connect(lambda: self.remove_requested.emit(self.key))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 2, 2, 2)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.remove_button)


class AttachmentTray(QScrollArea):
    """The chips above the composer's text field, hidden when there are none.

    Chips wrap onto rows (FlowLayout); beyond MAX_ROWS rows the tray scrolls, so no number of
    files, and no file name, can make the composer taller or wider than the window allows
    (issue 15: the window used to grow off the screen and keep that size).
    """

    def __init__(self, attachments: AttachmentList, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._attachments = attachments
        self.setObjectName("attachmentTray")
        self.setAccessibleName("Attachments")
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        # Its height is set from its width (fit_height); the width is the composer's.
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        content = QWidget()
        content.setObjectName("attachmentChips")
        self.flow = FlowLayout(content)
        self.flow.setContentsMargins(0, 0, 0, 0)
        self.setWidget(content)
        self.viewport().setAutoFillBackground(False)  # the composer's background shows through
        content.setAutoFillBackground(False)
        self._fitted_width = -1
        attachments.changed.connect(self.refresh)
        self.refresh()

    def chips(self) -> list[AttachmentChip]:
        # Old chips leave the layout at once but are deleted on the next event loop pass.
        return [c for c in self.findChildren(AttachmentChip) if self.flow.indexOf(c) >= 0]

    def minimumSizeHint(self) -> QSize:
        return QSize(0, super().minimumSizeHint().height())

    @Slot()
    def refresh(self) -> None:
        scrolled = self.verticalScrollBar().value()
        while (old := self.flow.takeAt(0)) is not None:
            if (widget := old.widget()) is not None:
                widget.hide()  # deletion waits for the event loop; hide it now
                widget.deleteLater()
        content = self.widget()
        for item in self._attachments.items():
            chip = AttachmentChip(item, content)
            chip.remove_requested.connect(self._attachments.remove)
            self.flow.addWidget(chip)
            chip.show()  # now, not on the layout's queued show: fit_height measures shown chips
        self.setVisible(bool(self._attachments.items()))
        self.fit_height()
        self.verticalScrollBar().setValue(scrolled)  # a removed chip leaves the rest in place

    def fit_height(self) -> None:
        """As tall as the chips' rows at this width, at most MAX_ROWS rows."""
        self._fitted_width = self.width()
        chips = self.chips()
        if not chips:
            self.setFixedHeight(0)
            return
        frame = 2 * self.frameWidth()
        row = max(chip.sizeHint().height() for chip in chips)
        most = MAX_ROWS * row + (MAX_ROWS - 1) * self.flow.spacing()
        self.setFixedHeight(min(self.flow.heightForWidth(self.width() - frame), most) + frame)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self.width() != self._fitted_width:  # rows rewrap; a new height alone changes nothing
            self.fit_height()
