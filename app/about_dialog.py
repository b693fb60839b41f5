"""About OSS Desk: name, version, credits, and the diagnostics a bug report needs, copyable."""

from __future__ import annotations

import importlib.metadata
import platform
from collections.abc import Mapping

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt, Slot, qVersion
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app import resources
from app.handover import APP_NAME

DISTRIBUTION = "oss-desk"
CREDIT = (
    "Runs OpenAI's open-weight gpt-oss models on this Mac with Apple's MLX. "
    "gpt-oss is released by OpenAI under the Apache 2.0 license."
)


def app_version() -> str:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "development build"


def system_rows() -> dict[str, str]:
    """What the app knows about itself without the engine: versions and the operating system."""
    mac = platform.mac_ver()[0]
    system = f"macOS {mac}" if mac else platform.platform(terse=True)
    return {
        f"{APP_NAME} version": app_version(),
        "System": f"{system} ({platform.machine()})",
        "Python": platform.python_version(),
        "Qt": f"{qVersion()} (PySide6 {pyside_version})",
    }


class AboutDialog(QDialog):
    """`diagnostics` are rows such as "Model path", "Profile", "Expert backend", "MLX",
    "Memory budget", shown in the given order after the app's own rows."""

    def __init__(self, diagnostics: Mapping[str, str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"About {APP_NAME}")
        self._rows = system_rows() | dict(diagnostics)

        header = QHBoxLayout()
        logo = QLabel()
        logo.setPixmap(resources.icon("app-icon").pixmap(64, 64))
        logo.setAccessibleName(f"{APP_NAME} icon")
        header.addWidget(logo, 0, Qt.AlignmentFlag.AlignTop)
        titles = QVBoxLayout()
        name = QLabel(APP_NAME)
        name.setProperty("role", "title")
        titles.addWidget(name)
        titles.addWidget(QLabel(f"Version {app_version()}"))
        credit = QLabel(CREDIT)
        credit.setWordWrap(True)
        credit.setProperty("role", "secondary")
        titles.addWidget(credit)
        header.addLayout(titles, 1)

        self.table = QTableWidget(len(self._rows), 2)
        self.table.setAccessibleName("Diagnostics")
        self.table.setHorizontalHeaderLabels(["", ""])
        self.table.horizontalHeader().hide()
        self.table.verticalHeader().hide()
        self.table.setCornerButtonEnabled(False)
        self.table.setShowGrid(False)
        self.table.setAlternatingRowColors(True)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setWordWrap(True)
        for row, (key, value) in enumerate(self._rows.items()):
            self.table.setItem(row, 0, QTableWidgetItem(key))
            item = QTableWidgetItem(value)
            item.setToolTip(value)
            self.table.setItem(row, 1, item)
        self.table.horizontalHeader().setSectionResizeMode(
            0, QHeaderView.ResizeMode.ResizeToContents
        )
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.resizeRowsToContents()

        self.copy_button = QPushButton("Copy Diagnostics")
        self.copy_button.setAccessibleName("Copy diagnostics")
        self.copy_button.setAccessibleDescription("Copies the table above, for a bug report.")
        self.copy_button.clicked.connect(self.copy_diagnostics)
        self.copied_label = QLabel("")
        self.copied_label.setProperty("role", "secondary")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close = buttons.button(QDialogButtonBox.StandardButton.Close)
        close.setAccessibleName("Close")
        buttons.rejected.connect(self.reject)
        footer = QHBoxLayout()
        footer.addWidget(self.copy_button)
        footer.addWidget(self.copied_label, 1)
        footer.addWidget(buttons)

        layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addWidget(self.table, 1)
        layout.addLayout(footer)
        self.resize(560, 420)

    def diagnostics_text(self) -> str:
        """Plain "key: value" lines, ready to paste into an issue."""
        return "\n".join(f"{key}: {value}" for key, value in self._rows.items())

    @Slot()
    def copy_diagnostics(self) -> None:
        QGuiApplication.clipboard().setText(self.diagnostics_text())
        self.copied_label.setText("Copied.")
