"""Settings › Tools: whether the model may run Python, which MCP servers it may call, and the tools
the user chose to "Always allow" (each other call waits for approval, app/tool_approval.py).

Python is off by default and cannot be turned on where no sandbox can be set up: the page says
why, in the sandbox's own words. The MCP servers are JSON in the shape other desktop apps use;
the text is saved only when it is valid, and otherwise a message names the server and field.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from enum import Enum
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.code_highlight import code_font
from app.mcp_servers_config import (
    CLAUDE_DESKTOP_CONFIG,
    EXAMPLE,
    ServersError,
    check_servers,
    describe,
    merged_with_claude_desktop,
)
from app.settings import Settings, SettingsStore

SERVER_LINES = 7  # the JSON box's height

Availability = Callable[[], str | None]


class ServerStatus(Protocol):
    """One server as the MCP tools report it (engine.tools.mcp.ServerStatus)."""

    @property
    def name(self) -> str: ...
    @property
    def state(self) -> Enum: ...
    @property
    def message(self) -> str | None: ...
    @property
    def tool_count(self) -> int | None: ...


StatusSource = Callable[[], Iterable[ServerStatus]]  # e.g. McpTools.status of the open chat


def status_text(status: ServerStatus) -> str:
    """A status as a few words: "running, 3 tools", "failed: <why>", "not started"."""
    text = str(status.state.value)
    if status.tool_count is not None:
        text += f", {status.tool_count} tool{'s' if status.tool_count != 1 else ''}"
    return f"{text}: {status.message}" if status.message else text


def tool_label(recipient: str) -> str:
    """How the list shows an always-allowed recipient: "Python", "read_file (MCP server files)"."""
    if recipient == "python":
        return "Python"
    name = recipient.removeprefix("functions.")
    server, _, tool = name.partition("__")  # MCP functions are SERVER__TOOL
    return f"{tool} (MCP server {server})" if tool else name


def python_availability() -> str | None:
    """None when the sandbox can run here, else the reason it cannot (a sentence)."""
    from engine import PythonTool  # its first call probes for a sandbox (0.1 s)

    return PythonTool.availability()


def python_limits() -> str:
    """The sandbox's limits in words, from the tool's own defaults once it is there."""
    from engine import PythonLimits

    limits = PythonLimits()
    seconds, memory = float(limits.seconds), int(limits.memory_bytes)
    gigabytes = memory / (1 << 30)
    size = f"{gigabytes:g} GB" if gigabytes >= 1 else f"{memory / (1 << 20):g} MB"
    return (
        f"Each run may take {seconds:g} s and {size} of memory, has no network, and writes "
        "only to its own temporary folder; your attached documents are readable as copies."
    )


def _named(widget: QWidget, name: str, description: str = "") -> None:
    widget.setAccessibleName(name)
    if description:
        widget.setAccessibleDescription(description)
        widget.setToolTip(description)


def _note(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setProperty("role", "secondary")
    label.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
    return label


class ToolsSettings(QWidget):
    def __init__(
        self,
        store: SettingsStore,
        parent: QWidget | None = None,
        *,
        availability: Availability = python_availability,
        server_status: StatusSource | None = None,
        claude_config: Path = CLAUDE_DESKTOP_CONFIG,
    ) -> None:
        super().__init__(parent)
        self._store = store
        self._server_status = server_status
        self._claude_config = claude_config

        self.python = QCheckBox("Let the model run Python in a sandbox")
        _named(
            self.python,
            "Let the model run Python in a sandbox",
            "Off by default. You approve every run unless you chose Always allow.",
        )
        self.python_reason = _note()
        self.python_limits = _note(python_limits())
        reason = availability()
        if reason:
            self.python.setEnabled(False)
            self.python_reason.setText(f"Not available: {reason}")
        self.python_reason.setVisible(bool(reason))
        python_box = QGroupBox("Python")
        python_layout = QVBoxLayout(python_box)
        for widget in (self.python, self.python_reason, self.python_limits):
            python_layout.addWidget(widget)

        self.servers = QPlainTextEdit()
        self.servers.setFont(code_font())
        self.servers.setTabChangesFocus(True)
        self.servers.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.servers.setPlaceholderText(EXAMPLE)
        spacing = self.servers.fontMetrics().lineSpacing()
        self.servers.setFixedHeight(SERVER_LINES * spacing + 2 * self.servers.frameWidth() + 8)
        _named(
            self.servers,
            "MCP servers",
            'The "mcpServers" JSON other desktop apps use: a command to start, or a URL.',
        )
        self.servers_message = _note()
        self.servers_message.setAccessibleName("MCP servers check")
        self.import_claude = QPushButton("Import from Claude Desktop")
        _named(
            self.import_claude,
            "Import from Claude Desktop",
            f"Adds the servers listed in {claude_config}.",
        )
        found = claude_config.is_file()
        self.import_claude.setEnabled(found)
        # Claude Desktop keeps its settings there on a Mac only: elsewhere the button is noise.
        self.import_claude.setVisible(found or sys.platform == "darwin")
        self.server_lines = _note()
        self.server_lines.setAccessibleName("MCP server status")
        servers_box = QGroupBox("MCP servers")
        servers_layout = QVBoxLayout(servers_box)
        servers_layout.addWidget(self.servers)
        row = QHBoxLayout()
        row.addWidget(self.servers_message, 1)
        row.addWidget(self.import_claude, 0, Qt.AlignmentFlag.AlignTop)
        servers_layout.addLayout(row)
        servers_layout.addWidget(self.server_lines)

        self.always = QListWidget()
        self.always.setFixedHeight(4 * self.always.fontMetrics().lineSpacing() + 12)
        _named(self.always, "Always allowed tools", "These run without asking you first.")
        self.remove_always = QPushButton("Remove")
        _named(self.remove_always, "Remove from always allowed")
        self.always_empty = _note("No tool runs without asking: each call waits for you.")
        always_box = QGroupBox("Always allowed")
        always_layout = QVBoxLayout(always_box)
        always_layout.addWidget(self.always_empty)
        always_row = QHBoxLayout()
        always_row.addWidget(self.always, 1)
        always_row.addWidget(self.remove_always, 0, Qt.AlignmentFlag.AlignTop)
        always_layout.addLayout(always_row)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for box in (python_box, servers_box, always_box):
            layout.addWidget(box)

        self._show(store.settings)
        self.servers.setPlainText(store.settings.mcp_servers_json)
        self._check_servers()
        store.changed.connect(self._show)
        self.python.toggled.connect(lambda on: store.update(python_tool_enabled=on))
        self.servers.textChanged.connect(self._check_servers)
        self.import_claude.clicked.connect(self.import_from_claude)
        self.always.itemSelectionChanged.connect(self._update_remove)
        self.remove_always.clicked.connect(self.remove_selected)

    @Slot(object)
    def _show(self, settings: Settings) -> None:
        self.python.blockSignals(True)  # showing the value must not write it back
        self.python.setChecked(settings.python_tool_enabled and self.python.isEnabled())
        self.python.blockSignals(False)
        tools = settings.always_approved_tools
        if self.always_allowed() != tools:
            self.always.clear()
            for recipient in tools:
                item = QListWidgetItem(tool_label(recipient))
                item.setData(Qt.ItemDataRole.UserRole, recipient)
                item.setToolTip(recipient)
                self.always.addItem(item)
        self.always.setVisible(bool(tools))
        self.always_empty.setVisible(not tools)
        self._update_remove()
        if (
            self.servers.toPlainText() != settings.mcp_servers_json
            and check_servers(self.servers.toPlainText()).ok
        ):  # changed elsewhere; a draft with an error is the user's work and stays
            self.servers.setPlainText(settings.mcp_servers_json)

    @Slot()
    def _check_servers(self) -> None:
        text = self.servers.toPlainText()
        check = check_servers(text)
        if check.ok:
            n = len(check.servers)
            self._say(f"{n} server{'s' if n != 1 else ''}, saved." if n else "No MCP servers.")
            self._store.update(mcp_servers_json=text)
        else:
            self._say(f"Not saved: {check.problem}", error=True)
        self.show_server_status()

    def _say(self, text: str, *, error: bool = False) -> None:
        self.servers_message.setText(text)
        self.servers_message.setProperty("role", "error" if error else "secondary")
        self.servers_message.style().polish(self.servers_message)

    def show_server_status(self) -> None:
        """One line per saved server: what the MCP tools report, or how it will be reached."""
        check = check_servers(self._store.settings.mcp_servers_json)
        reported = self._server_status() if self._server_status is not None else ()
        status = {s.name: status_text(s) for s in reported}
        lines = [f"{s.name}: {status.get(s.name) or describe(s)}" for s in check.servers]
        self.server_lines.setText("\n".join(lines))
        self.server_lines.setVisible(bool(lines))

    @Slot()
    def import_from_claude(self) -> None:
        try:
            text, added, skipped = merged_with_claude_desktop(
                self.servers.toPlainText(), self._claude_config
            )
        except ServersError as e:
            self._say(str(e), error=True)
            return
        self.servers.setPlainText(text)  # checked and saved as if typed
        if not added and not skipped:
            self._say("Claude Desktop lists no MCP servers.")
            return
        kept = f"; kept yours for {', '.join(skipped)}" if skipped else ""
        self._say(f"Imported {len(added)} from Claude Desktop{kept}. Saved.")

    @Slot()
    def _update_remove(self) -> None:
        self.remove_always.setEnabled(bool(self.always.selectedItems()))
        self.remove_always.setVisible(self.always.count() > 0)

    def always_allowed(self) -> list[str]:
        """The recipients the list shows, in order."""
        items = (self.always.item(i) for i in range(self.always.count()))
        return [str(item.data(Qt.ItemDataRole.UserRole)) for item in items]

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.show_server_status()  # servers may have started or failed since

    @Slot()
    def remove_selected(self) -> None:
        gone = {item.data(Qt.ItemDataRole.UserRole) for item in self.always.selectedItems()}
        tools = [t for t in self._store.settings.always_approved_tools if t not in gone]
        self._store.update(always_approved_tools=tools)
