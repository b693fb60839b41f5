"""Documents attached to the next message: read off the UI thread, counted on the engine thread,
shown as removable chips.

A dropped file goes through: reading (engine.extract in QThreadPool: a big PDF takes seconds and
touches no MLX), counting (the tokenizer lives on the engine thread, so the worker counts the
document's whole <document> block), ready. A file that cannot be read is reported in the banner
with the engine's own sentence (it names the file and says what to do) and dropped; nothing else
is affected.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal, Slot
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

from app import messages
from app.engine_client import EngineClient
from app.message_widget import describe_attachment
from app.messages import ErrorInfo
from engine import ExtractedDocument, UnsupportedDocumentError, attachment_block, extract

log = logging.getLogger(__name__)

State = Literal["reading", "counting", "ready"]


@dataclass(frozen=True)
class Attachment:
    key: int
    path: Path
    state: State = "reading"
    doc: ExtractedDocument | None = None
    tokens: int | None = None  # of the whole <document> block; -1 when it could not be counted

    @property
    def label(self) -> str:
        if self.state == "reading":
            return f"{self.path.name} · reading…"
        pages = self.doc.pages if self.doc else None
        if self.state == "counting":
            return describe_attachment(self.path.name, pages, None) + " · counting…"
        return describe_attachment(self.path.name, pages, self.tokens)


class _ExtractionSignals(QObject):
    extracted = Signal(int, object)  # key, ExtractedDocument
    failed = Signal(int, object)  # key, ErrorInfo


class _Extraction(QRunnable):
    def __init__(self, key: int, path: Path, signals: _ExtractionSignals) -> None:
        super().__init__()
        self._key, self._path, self._signals = key, path, signals

    def run(self) -> None:
        try:
            doc = extract(self._path)
        except UnsupportedDocumentError as e:
            self._signals.failed.emit(self._key, ErrorInfo.from_exception(e, title=""))
        except Exception as e:  # the pool's boundary: report, never lose the UI
            log.exception("extracting %s crashed", self._path)
            self._signals.failed.emit(
                self._key, ErrorInfo.from_exception(e, title=f"{self._path.name}", bug=True)
            )
        else:
            self._signals.extracted.emit(self._key, doc)


class AttachmentList(QObject):
    """The attachments of the message being written (UI thread)."""

    changed = Signal()
    failed = Signal(object)  # ErrorInfo, also shown in the banner

    def __init__(self, engine: EngineClient, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._engine = engine
        self._items: dict[int, Attachment] = {}
        self._next_key = 0
        # Children are destroyed in creation order: the pool first, whose destructor waits for
        # running extractions, so none of them emits on an already deleted _signals.
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(2)
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
            self.pool.start(_Extraction(key, path, self._signals))
        self.changed.emit()

    def remove(self, key: int) -> None:
        if self._items.pop(key, None) is not None:
            self.changed.emit()

    def clear(self) -> None:
        self._items.clear()
        self.changed.emit()

    def pending(self) -> bool:
        return any(a.state != "ready" for a in self._items.values())

    def ready(self) -> list[Attachment]:
        return [a for a in self._items.values() if a.state == "ready" and a.doc is not None]

    def documents(self) -> list[ExtractedDocument]:
        return [a.doc for a in self.ready() if a.doc is not None]

    def token_total(self) -> int:
        return sum(max(0, a.tokens or 0) for a in self.ready())

    @Slot(int, object)
    def _extracted(self, key: int, doc: ExtractedDocument) -> None:
        if key not in self._items:
            return  # removed while it was being read
        self._items[key] = replace(self._items[key], state="counting", doc=doc)
        for warning in doc.warnings:
            messages.warning(warning)
        self._engine.count_tokens(key, attachment_block(doc))
        self.changed.emit()

    @Slot(int, object)
    def _failed(self, key: int, problem: ErrorInfo) -> None:
        self._items.pop(key, None)
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
