"""The attachment tray never breaks the window (issue 15, finding 1): many chips wrap onto rows
and scroll beyond MAX_ROWS, a long name is elided in the middle, removing chips shrinks the tray
away, and the window keeps its size (also the size it saves)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QByteArray, QDataStream, QRect, QSize, Qt
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from app.attachments import MAX_ROWS, AttachmentChip, AttachmentTray
from app.chat_view import ChatView
from app.main_window import MINIMUM_SIZE, MainWindow
from app.message_widget import describe_attachment
from tests.app.conftest import MakeWindow, close

pytestmark = pytest.mark.qt_log_ignore(
    "This plugin does not support propagateSizeHints", "This plugin does not support raise"
)

WINDOW = QSize(900, 600)
# Linux allows 255 bytes per file name; the path, as the tooltip shows it, is longer than 300.
LONG_NAME = "quarterly-report-" + "very-long-" * 22 + "final.txt"


def many_files(folder: Path, count: int = 30) -> list[Path]:
    folder.mkdir()
    paths = []
    for i in range(count):
        path = folder / f"notes-{i:02}.txt"
        path.write_text(f"Note number {i}.\n")
        paths.append(path)
    deep = folder / ("nested-folder-" * 4) / ("deeper-" * 4)
    deep.mkdir(parents=True)
    long_one = deep / LONG_NAME
    long_one.write_text("A file whose name is longer than any window.\n")
    return [*paths, long_one]


def tray_of(window: MainWindow) -> AttachmentTray:
    tray = window.composer.tray
    assert isinstance(tray, AttachmentTray)
    return tray


def inside_window(window: MainWindow, widget: QWidget) -> bool:
    where = QRect(widget.mapTo(window, widget.rect().topLeft()), widget.size())
    return widget.isVisible() and window.rect().contains(where)


def effective_minimum(window: MainWindow) -> QSize:
    return window.minimumSize().expandedTo(window.minimumSizeHint())


def test_many_chips_and_a_long_name_never_grow_the_window(
    qtbot: QtBot, make_window: MakeWindow, tmp_path: Path
) -> None:
    window = make_window(load=False)
    window.resize(WINDOW)
    qtbot.waitUntil(lambda: window.size() == WINDOW)
    qtbot.wait(50)  # let the layouts settle
    minimum_before = effective_minimum(window)
    files = many_files(tmp_path / "docs")

    window.open_files([str(p) for p in files])
    tray = tray_of(window)
    qtbot.waitUntil(lambda: len(tray.chips()) == len(files))
    qtbot.wait(50)  # let the layouts settle
    assert window.size() == WINDOW
    assert effective_minimum(window) == minimum_before
    assert minimum_before.height() <= MINIMUM_SIZE[1]
    assert inside_window(window, window.composer.send_button)
    assert inside_window(window, window.composer.status_label)
    assert inside_window(window, window.composer.input)

    # Chips wrap onto rows, MAX_ROWS of them show, the rest scroll.
    chips = tray.chips()
    rows = sorted({chip.y() for chip in chips})
    row_height = max(chip.height() for chip in chips)
    assert len(rows) > MAX_ROWS
    assert tray.height() <= MAX_ROWS * (row_height + tray.flow.spacing()) + 2 * tray.frameWidth()
    assert tray.height() >= MAX_ROWS * row_height
    assert tray.verticalScrollBar().maximum() > 0
    assert all(chip.width() <= tray.viewport().width() for chip in chips)

    # The long name is cut in its middle (its start and its extension stay), the path is the tip.
    (long_chip,) = [c for c in chips if c.toolTip() == str(files[-1])]
    shown = long_chip.label.shown_text()
    assert "…" in shown
    assert shown.startswith("quarterly-report-") and ".txt" in shown
    assert long_chip.label.text().startswith(LONG_NAME)  # the whole text stays for VoiceOver

    # Removing every chip shrinks the tray away; the window stays.
    while chips := tray.chips():
        tray.ensureWidgetVisible(chips[0])
        qtbot.mouseClick(chips[0].remove_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not tray.isVisible())
    assert window.size() == WINDOW
    assert effective_minimum(window) == minimum_before

    # The size saved on closing is the window's own.
    close(window)
    assert saved_size(window.settings.settings.window_geometry) == WINDOW


def saved_size(geometry: str) -> QSize:
    """The window size in QWidget.saveGeometry()'s data (format 3). Restoring it would not do:
    the offscreen screen is 800x600, and restoreGeometry fits the window to the screen."""
    stream = QDataStream(QByteArray.fromBase64(geometry.encode()))
    magic, major = stream.readUInt32(), stream.readUInt16()
    assert (magic, major) == (0x1D9D0CB, 3)
    stream.readUInt16()
    frame, normal = QRect(), QRect()
    stream >> frame
    stream >> normal
    stream.readInt32(), stream.readUInt8(), stream.readUInt8(), stream.readInt32()
    shown = QRect()
    stream >> shown
    return shown.size()


def test_one_chip_is_one_row_and_more_chips_grow_the_tray(
    qtbot: QtBot, make_window: MakeWindow, tmp_path: Path
) -> None:
    window = make_window(load=False)
    window.resize(WINDOW)
    qtbot.waitUntil(lambda: window.size() == WINDOW)
    first = tmp_path / "first.txt"
    first.write_text("The first file.\n")
    window.open_files([str(first)])
    tray = tray_of(window)
    qtbot.waitUntil(lambda: len(tray.chips()) == 1 and tray.isVisible())
    (chip,) = tray.chips()
    assert isinstance(chip, AttachmentChip)
    assert chip.label.shown_text() == chip.label.text()  # short: shown whole
    qtbot.waitUntil(lambda: tray.height() == chip.height() + 2 * tray.frameWidth())
    assert tray.verticalScrollBar().maximum() == 0

    # More files while the tray shows: it grows to MAX_ROWS rows at the same width.
    window.open_files([str(p) for p in many_files(tmp_path / "more")])
    qtbot.waitUntil(lambda: len(tray.chips()) == 32)
    qtbot.wait(50)
    row_height = max(chip.height() for chip in tray.chips())
    assert tray.height() >= MAX_ROWS * row_height
    assert window.size() == WINDOW


def test_a_sent_long_name_keeps_the_chat_column(qtbot: QtBot) -> None:
    """The sent message lists its attachments: a long name is cut at the column's edge."""
    view = ChatView()
    qtbot.addWidget(view)
    view.resize(700, 500)
    view.show()
    description = describe_attachment(LONG_NAME, None, 190)
    view.add_user("What is in it?", [description])
    qtbot.waitUntil(lambda: view.messages()[0].height() > 0)
    qtbot.wait(50)
    container = view.widget()
    assert container is not None and container.width() <= view.viewport().width()
    assert view.messages()[0].width() <= view.viewport().width()


def test_a_long_status_gives_way_instead_of_widening_the_window(
    qtbot: QtBot, make_window: MakeWindow
) -> None:
    """The narrowest window is the one MINIMUM_SIZE names: the status text by Send is cut with
    "…" (whole in its tooltip) rather than pushing the composer's toolbar wider."""
    window = make_window()
    status = window.composer.status_label
    text = "Reading the conversation… 91% · about 12 s left · " + "context 98,304 tokens " * 3
    status.setText(text)
    window.resize(*MINIMUM_SIZE)
    window.show()
    qtbot.waitExposed(window)
    assert effective_minimum(window).width() <= MINIMUM_SIZE[0]
    assert window.width() == MINIMUM_SIZE[0]
    assert inside_window(window, window.composer.send_button)
    assert status.width() < status.fontMetrics().horizontalAdvance(text)
    assert status.text() == text and status.toolTip() == text
