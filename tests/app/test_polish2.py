"""Issue 15, finding 9 and 10 (rest) and "not built yet": dated sidebar groups, the chat in the
window title, the export's suggested file, the text size, the shortcuts window, Open Recent and
the Dock menu. Each test failed before its fix."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication, QFileDialog, QLabel
from pytestqt.qtbot import QtBot

from app.export_files import documents_folder, export_file_name
from app.history import ConversationSummary
from app.menus import ShortcutsDialog, build_dock_menu
from app.settings import MAX_RECENT_DOCUMENTS, FontSize, SettingsStore
from app.settings_dialog import SettingsDialog
from app.sidebar import HEADING_ROLE, Sidebar, date_group
from tests.app.conftest import MakeWindow

pytestmark = pytest.mark.qt_log_ignore(
    "This plugin does not support propagateSizeHints", "This plugin does not support raise"
)

TODAY = date(2026, 12, 6)


def summary(chat_id: int, title: str, when: datetime) -> ConversationSummary:
    stamp = when.timestamp()
    return ConversationSummary(chat_id, title, stamp, stamp, "medium", 2, f"about {title}")


# -- sidebar dates and groups ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "group"),
    [
        (datetime(2026, 12, 6, 0, 1), "Today"),
        (datetime(2026, 12, 7, 9, 0), "Today"),  # a clock set back
        (datetime(2026, 12, 5, 23, 59), "Yesterday"),
        (datetime(2026, 12, 4, 12, 0), "Previous 7 Days"),
        (datetime(2026, 11, 30, 8, 0), "Previous 7 Days"),
        (datetime(2026, 11, 29, 8, 0), "November 2026"),
        (datetime(2025, 12, 6, 8, 0), "December 2025"),
    ],
)
def test_chats_are_grouped_by_when_they_last_changed(when: datetime, group: str) -> None:
    assert date_group(when, TODAY) == group


def test_the_sidebar_groups_chats_under_date_headings(qtbot: QtBot) -> None:
    sidebar = Sidebar()
    qtbot.addWidget(sidebar)
    noon = datetime(2026, 12, 6, 12, 0)
    chats = [
        summary(1, "Old plan", noon - timedelta(days=40)),
        summary(2, "Lunch", noon),
        summary(3, "Trip", noon - timedelta(days=1)),
        summary(4, "Budget", noon - timedelta(days=3)),
        summary(5, "Taxes", noon - timedelta(days=2)),
    ]
    sidebar.set_conversations(chats, today=TODAY)
    rows = [sidebar.list.item(r) for r in range(sidebar.list.count())]
    assert [r.text() for r in rows] == ["Lunch", "Trip", "Taxes", "Budget", "Old plan"]
    assert [r.data(HEADING_ROLE) for r in rows] == [
        "Today",
        "Yesterday",
        "Previous 7 Days",
        None,
        "October 2026",
    ]
    assert sidebar.headings() == ["Today", "Yesterday", "Previous 7 Days", "October 2026"]
    # a heading is drawn inside its chat's row: that row is taller than one without
    plain = sidebar.list.visualItemRect(rows[3]).height()
    assert sidebar.list.visualItemRect(rows[2]).height() > plain + 8
    sidebar.show()
    image = sidebar.list.viewport().grab().toImage()
    top = sidebar.list.visualItemRect(rows[0])
    inked = {
        image.pixel(x, y)
        for x in range(top.left() + 8, top.left() + 80)
        for y in range(top.top(), top.top() + plain // 2 + 6)
    }
    assert len(inked) > 1  # the heading's text is painted above the title
    assert "12:00" in rows[0].toolTip()  # today's chat shows its time
    assert "Oct 2026" in rows[4].toolTip()
    assert sidebar.title_of(3) == "Trip"


# -- window title ------------------------------------------------------------------------------


def test_the_window_title_names_the_open_chat(qtbot: QtBot, make_window: MakeWindow) -> None:
    window = make_window(load=False)
    assert window.windowTitle() == "OSS Desk"
    chat = window.store.create_conversation("Trip to Lisbon")
    window.controller.refresh_sidebar()
    window.controller.open_conversation(chat)
    assert window.windowTitle() == "Trip to Lisbon — OSS Desk"
    window.controller.rename(chat, "Lisbon in May")
    assert window.windowTitle() == "Lisbon in May — OSS Desk"
    window.controller.new_chat()
    assert window.windowTitle() == "OSS Desk"


# -- export ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "name"),
    [
        ("Trip to Lisbon", "Trip to Lisbon.md"),
        ('a/b: c? "d" <e>|f*', "a b c d e f.md"),
        ("..hidden", "hidden.md"),
        ("line\nbreak\ttab", "line break tab.md"),
        ("///", "Chat.md"),
        ("x" * 300, "x" * 100 + ".md"),
    ],
)
def test_export_file_names_are_safe(title: str, name: str) -> None:
    assert export_file_name(title) == name


def test_export_suggests_the_chat_title_in_documents(
    qtbot: QtBot, make_window: MakeWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = make_window(load=False)
    chat = window.store.create_conversation("Q3 plan: draft/2")
    window.controller.refresh_sidebar()
    window.controller.open_conversation(chat)
    asked: list[Any] = []

    def fake_save(*args: Any) -> tuple[str, str]:
        asked.append(args)
        return "", ""

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(fake_save))
    window.choose_export()
    (args,) = asked
    assert Path(args[2]) == documents_folder() / "Q3 plan draft 2.md"
    assert "chat.md" not in args[2]


def test_without_a_documents_folder_export_suggests_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    assert documents_folder() == tmp_path
    (tmp_path / "Documents").mkdir()
    assert documents_folder() == tmp_path / "Documents"


# -- text size ---------------------------------------------------------------------------------


def test_the_text_size_applies_to_the_conversation_at_once(
    qtbot: QtBot, make_window: MakeWindow
) -> None:
    window = make_window(load=False)
    message = window.view.add_user("How far is Lisbon?")
    label = next(w for w in message.findChildren(QLabel) if "Lisbon" in w.text())
    default = label.font().pointSizeF()
    dialog = SettingsDialog(window.settings, window)
    qtbot.addWidget(dialog)
    dialog.font_size.setCurrentIndex(dialog.font_size.findData("large"))
    assert window.settings.settings.font_size is FontSize.LARGE
    assert label.font().pointSizeF() == pytest.approx(default * 1.2)
    dialog.font_size.setCurrentIndex(dialog.font_size.findData("small"))
    assert label.font().pointSizeF() == pytest.approx(default * 0.9)
    # the menus and the sidebar keep the system size
    assert window.sidebar.search.font().pointSizeF() == pytest.approx(default)


def test_the_text_size_is_kept(tmp_path: Path) -> None:
    store = SettingsStore.in_file(tmp_path / "s.ini")
    store.update(font_size=FontSize.SMALL)
    assert "font_size=small" in (tmp_path / "s.ini").read_text()
    assert SettingsStore.in_file(tmp_path / "s.ini").settings.font_size is FontSize.SMALL


# -- keyboard shortcuts ------------------------------------------------------------------------


def test_keyboard_shortcuts_open_a_window_not_a_banner(
    qtbot: QtBot, make_window: MakeWindow
) -> None:
    window = make_window(load=False)
    window.menu_actions.shortcuts_help.trigger()
    dialogs = [d for d in window.findChildren(ShortcutsDialog) if d.isVisible()]
    assert len(dialogs) == 1
    assert window.banners.banners() == []
    rows = dict(dialogs[0].rows())
    assert rows["Regenerate"] == window.menu_actions.regenerate.shortcut().toString(
        window.menu_actions.regenerate.shortcut().SequenceFormat.NativeText
    )
    assert "Export Chat" in rows and "Search Chats" in rows and "Send the message" in rows
    assert "Reasoning effort: High" in rows
    assert dialogs[0].windowModality() == Qt.WindowModality.WindowModal  # a sheet on a Mac
    dialogs[0].reject()


# -- Open Recent -------------------------------------------------------------------------------


def recent_titles(window: Any) -> list[str]:
    menu = window.menu_actions.open_recent
    menu.aboutToShow.emit()
    return [a.text() for a in menu.actions() if not a.isSeparator()]


def test_attached_documents_are_offered_again_after_a_restart(
    qtbot: QtBot, make_window: MakeWindow, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("Lisbon has seven hills.\n")
    window = make_window(load=False)
    assert recent_titles(window) == []
    assert not window.menu_actions.open_recent.isEnabled()
    window.open_files([str(notes)])
    qtbot.waitUntil(lambda: window.settings.settings.recent_documents == (str(notes),))
    assert window.menu_actions.open_recent.isEnabled()  # a disabled menu never fills itself
    window.close()

    again = make_window(load=False)
    assert recent_titles(again) == ["notes.txt", "Clear Menu"]
    (open_notes,) = [a for a in again.menu_actions.open_recent.actions() if a.text() == "notes.txt"]
    open_notes.trigger()
    assert [a.path for a in again.attachments.items()] == [notes]
    notes.unlink()  # a moved or deleted document is not offered
    assert recent_titles(again) == []


def newest_is(window: Any, path: str) -> bool:
    return bool(window.settings.settings.recent_documents[:1] == (path,))


def test_open_recent_keeps_the_last_ten_and_can_be_cleared(
    qtbot: QtBot, make_window: MakeWindow, tmp_path: Path
) -> None:
    window = make_window(load=False)
    paths = []
    for n in range(12):
        path = tmp_path / f"doc{n:02}.txt"
        path.write_text(f"document {n}\n")
        paths.append(str(path))
        window.open_files([str(path)])
        qtbot.waitUntil(partial(newest_is, window, str(path)))
    recent = window.settings.settings.recent_documents
    assert list(recent) == paths[::-1][:MAX_RECENT_DOCUMENTS]
    titles = recent_titles(window)
    assert titles[0] == "doc11.txt" and len(titles) == MAX_RECENT_DOCUMENTS + 1
    (clear,) = [a for a in window.menu_actions.open_recent.actions() if a.text() == "Clear Menu"]
    clear.trigger()
    assert window.settings.settings.recent_documents == ()


@pytest.mark.parametrize("stored", ['["/a/one.txt"]', "not json", '{"a": 1}', "[1, 2]"])
def test_recent_documents_survive_the_ini_file(tmp_path: Path, stored: str) -> None:
    path = tmp_path / "s.ini"
    SettingsStore.in_file(path).update(recent_documents=("/a/one.txt",))
    raw = QSettings(str(path), QSettings.Format.IniFormat)
    raw.setValue("recent_documents", stored)
    raw.sync()
    expected = ("/a/one.txt",) if stored.startswith('["') else ()
    assert SettingsStore.in_file(path).settings.recent_documents == expected


# -- Dock menu ---------------------------------------------------------------------------------


def test_the_dock_menu_is_only_built_on_macos(qtbot: QtBot, make_window: MakeWindow) -> None:
    window = make_window(load=False)
    assert build_dock_menu(window.menu_actions, window) is None
    assert window.dock_menu is None
    assert QApplication.instance() is not None
