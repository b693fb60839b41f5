"""The menu bar a Mac user expects: app menu (About, Settings ⌘,, Quit), File, Edit, View, Chat,
Window, Help.

Qt writes ⌘ as "Ctrl" and ⌃ as "Meta" in shortcuts. Qt moves About, Settings and Quit into the
application menu by their MenuRole; every other action gets NoRole, because the default
text heuristic would move any item whose title merely starts with "About" or "Settings".
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QMainWindow,
    QMenu,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app import resources
from app.composer import FINISH_SHORTCUT

EFFORT_SHORTCUTS = {"low": "Ctrl+Alt+1", "medium": "Ctrl+Alt+2", "high": "Ctrl+Alt+3"}


@dataclass
class Actions:
    new_chat: QAction
    attach: QAction
    open_recent: QMenu
    choose_model: QAction
    export: QAction
    settings: QAction
    quit: QAction
    about: QAction
    undo: QAction
    redo: QAction
    cut: QAction
    copy: QAction
    paste: QAction
    select_all: QAction
    search: QAction
    show_reasoning: QAction
    show_sidebar: QAction
    stop: QAction
    finish_now: QAction
    regenerate: QAction
    edit_last: QAction
    chat_instructions: QAction
    effort: dict[str, QAction]
    effort_group: QActionGroup
    minimize: QAction
    zoom: QAction
    shortcuts_help: QAction


def _action(
    menu: QMenu,
    text: str,
    shortcut: QKeySequence | QKeySequence.StandardKey | str | list[str] | None = None,
    *,
    role: QAction.MenuRole = QAction.MenuRole.NoRole,
    icon: str | None = None,
    checkable: bool = False,
) -> QAction:
    action = QAction(text, menu)
    action.setMenuRole(role)
    if isinstance(shortcut, list):
        action.setShortcuts([QKeySequence(s) for s in shortcut])
    elif shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    if icon:
        action.setIcon(resources.icon(icon))
        action.setIconVisibleInMenu(False)  # Mac menus carry no icons
    action.setCheckable(checkable)
    menu.addAction(action)
    return action


def build_menus(window: QMainWindow) -> Actions:
    bar = window.menuBar()
    key = QKeySequence.StandardKey

    file = bar.addMenu("&File")
    new_chat = _action(file, "New Chat", key.New, icon="new-chat")
    attach = _action(file, "Attach Documents…", key.Open, icon="attach")
    open_recent = file.addMenu("Open Recent")  # filled by the window as it is opened
    open_recent.menuAction().setMenuRole(QAction.MenuRole.NoRole)
    choose_model = _action(file, "Choose Model…")
    file.addSeparator()
    export = _action(file, "Export Chat…", "Ctrl+Shift+E")
    file.addSeparator()
    settings = _action(file, "Settings…", "Ctrl+,", role=QAction.MenuRole.PreferencesRole)
    quit_ = _action(file, "Quit OSS Desk", key.Quit, role=QAction.MenuRole.QuitRole)

    edit = bar.addMenu("&Edit")
    undo = _action(edit, "Undo", key.Undo)
    redo = _action(edit, "Redo", key.Redo)
    edit.addSeparator()
    cut = _action(edit, "Cut", key.Cut)
    copy = _action(edit, "Copy", key.Copy)
    paste = _action(edit, "Paste", key.Paste)
    select_all = _action(edit, "Select All", key.SelectAll)
    edit.addSeparator()
    search = _action(edit, "Search Chats…", ["Ctrl+Shift+F", "Ctrl+F"])

    view = bar.addMenu("&View")
    show_reasoning = _action(view, "Show Reasoning", "Ctrl+Alt+R", checkable=True)
    show_sidebar = _action(view, "Show Sidebar", "Meta+Ctrl+S", checkable=True)

    chat = bar.addMenu("&Chat")
    stop = _action(chat, "Stop", ["Ctrl+.", "Esc"], icon="stop")
    finish_now = _action(chat, "Finish Now", FINISH_SHORTCUT)
    finish_now.setEnabled(False)  # only while the model reasons (Composer.finish_available)
    regenerate = _action(chat, "Regenerate", "Ctrl+R")
    edit_last = _action(chat, "Edit Last Message")
    chat.addSeparator()
    chat_instructions = _action(chat, "Chat Instructions…")
    effort_menu = chat.addMenu("Reasoning Effort")
    effort_group = QActionGroup(window)
    effort_group.setExclusive(True)
    effort = {}
    for value, shortcut in EFFORT_SHORTCUTS.items():
        action = _action(effort_menu, value.capitalize(), shortcut, checkable=True)
        action.setData(value)
        effort_group.addAction(action)
        effort[value] = action

    window_menu = bar.addMenu("&Window")
    minimize = _action(window_menu, "Minimize", "Ctrl+M")
    zoom = _action(window_menu, "Zoom")

    help_menu = bar.addMenu("&Help")
    shortcuts_help = _action(help_menu, "Keyboard Shortcuts", "Ctrl+?")
    about = _action(help_menu, "About OSS Desk", role=QAction.MenuRole.AboutRole)

    return Actions(
        new_chat=new_chat,
        attach=attach,
        open_recent=open_recent,
        choose_model=choose_model,
        export=export,
        settings=settings,
        quit=quit_,
        about=about,
        undo=undo,
        redo=redo,
        cut=cut,
        copy=copy,
        paste=paste,
        select_all=select_all,
        search=search,
        show_reasoning=show_reasoning,
        show_sidebar=show_sidebar,
        stop=stop,
        finish_now=finish_now,
        regenerate=regenerate,
        edit_last=edit_last,
        chat_instructions=chat_instructions,
        effort=effort,
        effort_group=effort_group,
        minimize=minimize,
        zoom=zoom,
        shortcuts_help=shortcuts_help,
    )


# Keys that belong to the message box, not to a menu item.
COMPOSER_SHORTCUTS = (
    ("Send the message", "Return"),
    ("New line in the message", "Shift+Return"),
    ("Edit the last message (in an empty box)", "Up"),
)


def shortcut_rows(actions: Actions) -> list[tuple[str, str]]:
    """(what, keys) for every menu item with a shortcut, then the message box's keys, in the
    platform's notation (⌘N on a Mac, Ctrl+N elsewhere)."""
    native = QKeySequence.SequenceFormat.NativeText
    rows = []
    for value in vars(actions).values():
        if isinstance(value, QAction) and value.shortcuts():
            keys = ", ".join(k.toString(native) for k in value.shortcuts())
            rows.append((value.text().rstrip("…"), keys))
    for effort in actions.effort.values():
        rows.append((f"Reasoning effort: {effort.text()}", effort.shortcut().toString(native)))
    rows += [(what, QKeySequence(keys).toString(native)) for what, keys in COMPOSER_SHORTCUTS]
    return rows


class ShortcutsDialog(QDialog):
    """Help › Keyboard Shortcuts: a sheet on a Mac (window-modal), a small window elsewhere."""

    def __init__(self, rows: list[tuple[str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard Shortcuts")
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.table = QTableWidget(len(rows), 2)
        self.table.setAccessibleName("Keyboard shortcuts")
        self.table.setHorizontalHeaderLabels(["Action", "Shortcut"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setShowGrid(False)
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # a list to read, not to edit
        for row, (what, keys) in enumerate(rows):
            self.table.setItem(row, 0, QTableWidgetItem(what))
            self.table.setItem(row, 1, QTableWidgetItem(keys))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.table.resizeRowsToContents()
        rows_height = sum(self.table.rowHeight(r) for r in range(len(rows)))
        # every row visible without scrolling, up to a height that fits a 13-inch screen
        self.resize(480, min(760, rows_height + self.table.horizontalHeader().height() + 70))

    def rows(self) -> list[tuple[str, str]]:
        cells = [
            (self.table.item(r, 0), self.table.item(r, 1)) for r in range(self.table.rowCount())
        ]
        return [(what.text(), keys.text()) for what, keys in cells if what and keys]


def build_dock_menu(actions: Actions, parent: QWidget) -> QMenu | None:
    """The Dock icon's menu (New Chat, Attach Documents) on macOS; None elsewhere, where Qt has
    no Dock to give it to."""
    if sys.platform != "darwin":
        return None
    menu = QMenu(parent)
    menu.addAction(actions.new_chat)
    menu.addAction(actions.attach)
    menu.setAsDockMenu()
    return menu
