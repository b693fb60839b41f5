"""About OSS Desk: version from the package metadata, diagnostics shown and copied."""

from __future__ import annotations

import importlib.metadata

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QAbstractButton, QAbstractItemView
from pytestqt.qtbot import QtBot

from app.about_dialog import AboutDialog

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

DIAGNOSTICS = {
    "Model path": "/Users/ada/models/gpt-oss-20b",
    "Profile": "16gb",
    "Expert backend": "ops (Custom kernels disabled: Metal is not available on this machine)",
    "MLX": "0.32.4 on cpu",
    "Memory budget": "10.7 GiB (Metal working set)",
}


@pytest.fixture
def dialog(qtbot: QtBot) -> AboutDialog:
    about = AboutDialog(DIAGNOSTICS)
    qtbot.addWidget(about)
    about.show()
    return about


def test_shows_version_and_every_diagnostic_in_order(dialog: AboutDialog) -> None:
    table = dialog.table

    def cell(row: int, column: int) -> str:
        item = table.item(row, column)
        assert item is not None
        return item.text()

    rows = {cell(r, 0): cell(r, 1) for r in range(table.rowCount())}
    assert rows["OSS Desk version"] == importlib.metadata.version("oss-desk")
    assert list(rows)[-len(DIAGNOSTICS) :] == list(DIAGNOSTICS)
    assert rows["Expert backend"] == DIAGNOSTICS["Expert backend"]
    assert {"System", "Python", "Qt"} <= rows.keys()


def test_copy_puts_the_diagnostics_on_the_clipboard(qtbot: QtBot, dialog: AboutDialog) -> None:
    QGuiApplication.clipboard().clear()
    qtbot.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)
    copied = QGuiApplication.clipboard().text()
    assert copied == dialog.diagnostics_text()
    assert f"OSS Desk version: {importlib.metadata.version('oss-desk')}" in copied.splitlines()
    assert f"Expert backend: {DIAGNOSTICS['Expert backend']}" in copied.splitlines()
    assert dialog.copied_label.text() == "Copied."


def test_every_control_has_an_accessible_name(dialog: AboutDialog) -> None:
    found = dialog.findChildren(QAbstractButton) + dialog.findChildren(QAbstractItemView)
    controls = [w for w in found if w.isVisible()]  # hidden table headers are out of reach
    assert len(controls) >= 3
    assert [w for w in controls if not w.accessibleName()] == []
