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

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

from app import messages
from app.engine_client import EngineClient
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


class AttachmentChip(QFrame):
    remove_requested = Signal(int)

    def __init__(self, item: Attachment, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setProperty("role", "card")
        self.key = item.key
        self.label = QLabel(item.label)
        self.label.setToolTip(str(item.path))
        self.remove_button = QToolButton()
        self.remove_button.setText("×")
        self.remove_button.setAutoRaise(True)
        self.remove_button.setAccessibleName(f"Remove {item.path.name}")
        self.remove_button.clicked.connect(lambda: self.remove_requested.emit(self.key))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 2, 2, 2)
        layout.addWidget(self.label)
        layout.addWidget(self.remove_button)


class AttachmentTray(QWidget):
    """The chips above the composer's text field; hidden when there are none."""

    def __init__(self, attachments: AttachmentList, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._attachments = attachments
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setAlignment(Qt.AlignmentFlag.AlignLeft)
        attachments.changed.connect(self.refresh)
        self.refresh()

    def chips(self) -> list[AttachmentChip]:
        # Old chips leave the layout at once but are deleted on the next event loop pass.
        return [c for c in self.findChildren(AttachmentChip) if self._layout.indexOf(c) >= 0]

    @Slot()
    def refresh(self) -> None:
        while (old := self._layout.takeAt(0)) is not None:
            if (widget := old.widget()) is not None:
                widget.hide()  # deletion waits for the event loop; hide it now
                widget.deleteLater()
        for item in self._attachments.items():
            chip = AttachmentChip(item, self)
            chip.remove_requested.connect(self._attachments.remove)
            self._layout.addWidget(chip)
        self.setVisible(bool(self._attachments.items()))
