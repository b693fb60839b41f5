"""Small helpers the setup dialog's cards share: accessible names, wrapped labels, roles."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

SELECTABLE = Qt.TextInteractionFlag.TextSelectableByMouse | (
    Qt.TextInteractionFlag.TextSelectableByKeyboard
)


def named(widget: QWidget, name: str, description: str = "") -> None:
    widget.setAccessibleName(name)
    if description:
        widget.setAccessibleDescription(description)


def label(text: str = "", role: str | None = None) -> QLabel:
    result = QLabel(text)
    result.setWordWrap(True)
    if role:
        result.setProperty("role", role)
    return result


def set_role(widget: QLabel, role: str) -> None:
    widget.setProperty("role", role)
    widget.style().unpolish(widget)
    widget.style().polish(widget)
