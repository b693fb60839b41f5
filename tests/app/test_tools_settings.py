"""Settings › Tools: python off until enabled (and not at all without a sandbox), MCP servers as
checked JSON kept on disk, Claude Desktop's servers imported, always-allowed tools removable."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from app.settings import SettingsStore
from app.settings_dialog import SettingsDialog
from app.tools_settings import ToolsSettings
from engine.tools.mcp import ServerState, ServerStatus

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

FILES = {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]}
SEARCH = {"url": "http://127.0.0.1:8123/mcp", "headers": {"X-Key": "k"}}


def page(
    qtbot: QtBot, store: SettingsStore, reason: str | None = None, **kwargs: object
) -> ToolsSettings:
    tools = ToolsSettings(store, availability=lambda: reason, **kwargs)  # type: ignore[arg-type]
    qtbot.addWidget(tools)
    tools.show()
    return tools


def test_the_tool_settings_are_kept_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "settings.ini"
    fresh = SettingsStore.in_file(path).settings
    assert not fresh.python_tool_enabled and fresh.mcp_servers_json == ""
    assert fresh.always_approved_tools == []
    servers = json.dumps({"mcpServers": {"files": FILES}})
    SettingsStore.in_file(path).update(
        python_tool_enabled=True,
        mcp_servers_json=servers,
        always_approved_tools=["python"],  # one item: INI files give single lists back as text
    )
    again = SettingsStore.in_file(path).settings
    assert again.python_tool_enabled
    assert again.mcp_servers_json == servers
    assert again.always_approved_tools == ["python"]


def test_python_is_off_by_default_and_the_checkbox_saves_it(qtbot: QtBot, tmp_path: Path) -> None:
    store = SettingsStore.in_file(tmp_path / "settings.ini")
    tools = page(qtbot, store)
    assert tools.python.isEnabled() and not tools.python.isChecked()
    assert not tools.python_reason.isVisible()
    assert "30 s" in tools.python_limits.text() and "1 GB" in tools.python_limits.text()
    tools.python.click()
    assert SettingsStore.in_file(tmp_path / "settings.ini").settings.python_tool_enabled


def test_without_a_sandbox_python_cannot_be_enabled_and_the_page_says_why(
    qtbot: QtBot, tmp_path: Path
) -> None:
    store = SettingsStore.in_file(tmp_path / "settings.ini")
    store.update(python_tool_enabled=True)  # enabled on a machine that had a sandbox
    reason = "Install bubblewrap (bwrap) to run Python in a sandbox."
    tools = page(qtbot, store, reason)
    assert not tools.python.isEnabled() and not tools.python.isChecked()
    assert tools.python_reason.isVisible() and reason in tools.python_reason.text()


def test_invalid_servers_name_the_server_and_field_and_are_not_saved(
    qtbot: QtBot, tmp_path: Path
) -> None:
    store = SettingsStore.in_file(tmp_path / "settings.ini")
    tools = page(qtbot, store)
    good = json.dumps({"mcpServers": {"files": FILES}}, indent=2)
    tools.servers.setPlainText(good)
    assert store.settings.mcp_servers_json == good
    assert tools.servers_message.text() == "1 server, saved."
    assert tools.server_lines.text().startswith("files: starts “npx”")
    tools.servers.setPlainText(json.dumps({"mcpServers": {"files": {**FILES, "args": "-y"}}}))
    message = tools.servers_message.text()
    assert message.startswith("Not saved") and '"args"' in message and '"files"' in message
    assert tools.servers_message.property("role") == "error"
    tools.servers.setPlainText('{"mcpServers": {"files": }')
    assert "line 1, column 26" in tools.servers_message.text()
    assert store.settings.mcp_servers_json == good  # the last valid text stays saved


def test_the_status_line_says_what_the_running_servers_report(qtbot: QtBot, tmp_path: Path) -> None:
    store = SettingsStore.in_file(tmp_path / "settings.ini")
    store.update(mcp_servers_json=json.dumps({"mcpServers": {"files": FILES, "search": SEARCH}}))
    reported = [ServerStatus("files", ServerState.RUNNING, tool_count=11)]
    tools = page(qtbot, store, server_status=lambda: reported)
    lines = tools.server_lines.text().splitlines()
    assert lines == [
        "files: running, 11 tools",
        "search: connects to http://127.0.0.1:8123/mcp when the model first uses it",
    ]
    reported[0] = ServerStatus("files", ServerState.FAILED, "npx: command not found")
    tools.hide()
    tools.show()  # the page asks again each time it is shown
    assert tools.server_lines.text().splitlines()[0] == "files: failed: npx: command not found"


def test_claude_desktop_servers_are_imported_beside_the_users_own(
    qtbot: QtBot, tmp_path: Path
) -> None:
    claude = tmp_path / "claude_desktop_config.json"
    theirs = {"files": {"command": "uvx", "args": ["other"]}, "search": SEARCH}
    claude.write_text(json.dumps({"mcpServers": theirs, "globalShortcut": "Cmd+Space"}))
    store = SettingsStore.in_file(tmp_path / "settings.ini")
    store.update(mcp_servers_json=json.dumps({"mcpServers": {"files": FILES}}))
    tools = page(qtbot, store, claude_config=claude)
    assert tools.import_claude.isVisible() and tools.import_claude.isEnabled()
    tools.import_claude.click()
    saved = json.loads(store.settings.mcp_servers_json)
    assert saved == {"mcpServers": {"files": FILES, "search": SEARCH}}  # their files: not taken
    assert (
        tools.servers_message.text()
        == "Imported 1 from Claude Desktop; kept yours for files. Saved."
    )


@pytest.mark.skipif(sys.platform == "darwin", reason="a Mac shows the button disabled instead")
def test_without_claude_desktop_the_import_button_is_not_offered(
    qtbot: QtBot, tmp_path: Path
) -> None:
    store = SettingsStore.in_file(tmp_path / "settings.ini")
    tools = page(qtbot, store, claude_config=tmp_path / "missing.json")
    assert not tools.import_claude.isVisible()


def test_always_allowed_tools_can_be_removed(qtbot: QtBot, tmp_path: Path) -> None:
    store = SettingsStore.in_file(tmp_path / "settings.ini")
    store.update(always_approved_tools=["python", "functions.files__read_file"])
    tools = page(qtbot, store)
    assert [tools.always.item(i).text() for i in range(tools.always.count())] == [
        "Python",
        "read_file (MCP server files)",
    ]
    assert tools.always_allowed() == ["python", "functions.files__read_file"]
    assert not tools.remove_always.isEnabled()  # nothing selected yet
    tools.always.setCurrentRow(0)
    tools.remove_always.click()
    on_disk = SettingsStore.in_file(tmp_path / "settings.ini").settings
    assert on_disk.always_approved_tools == ["functions.files__read_file"]
    store.update(always_approved_tools=[])  # e.g. the last one removed
    assert not tools.always.isVisible() and tools.always_empty.isVisible()
    store.update(always_approved_tools=["python"])  # "Always allow" chosen in a chat
    assert tools.always.isVisible() and tools.always_allowed() == ["python"]


def test_the_settings_window_has_a_tools_page_with_named_controls(
    qtbot: QtBot, tmp_path: Path
) -> None:
    store = SettingsStore.in_file(tmp_path / "settings.ini")
    store.update(always_approved_tools=["python"])
    dialog = SettingsDialog(store)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.show_page("Tools")
    tools = dialog.tools
    assert isinstance(tools, ToolsSettings) and dialog.pages.currentWidget().isAncestorOf(tools)
    controls = [w for w in tools.findChildren(QWidget) if w.isVisible() and w.focusPolicy().value]
    assert tools.python in controls and tools.servers in controls
    assert [w for w in controls if not w.accessibleName()] == []
