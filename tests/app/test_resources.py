"""Assets: found in the tree and in a frozen bundle, icons drawn, stylesheets that Qt accepts."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import (
    QFrame,
    QLabel,
    QListView,
    QPlainTextEdit,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from pytestqt.qtbot import QtBot

from app import resources

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

LINE_ICONS = ("send", "stop", "attach", "reasoning", "copy", "new-chat", "settings")
ROOT = Path(__file__).resolve().parents[2] / "resources"


def load_make_icons() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_icons", ROOT / "make_icons.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_path_finds_files_in_the_resources_folder() -> None:
    for name in ("light.qss", "dark.qss", "app-icon.svg", "icons/send.svg", "prompts/developer.md"):
        assert resources.path(name) == ROOT / name


def test_path_refuses_missing_files_and_names_outside_the_folder() -> None:
    with pytest.raises(FileNotFoundError, match=r"nothing\.qss"):
        resources.path("nothing.qss")
    with pytest.raises(ValueError):
        resources.path("../pyproject.toml")
    with pytest.raises(ValueError):
        resources.path(str(ROOT / "light.qss"))


def test_inside_a_frozen_bundle_the_folder_is_under_meipass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "resources").mkdir()
    (tmp_path / "resources" / "light.qss").write_text("QLabel {}")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resources.path("light.qss") == tmp_path / "resources" / "light.qss"
    assert resources.stylesheet(dark=False) == "QLabel {}"


def opaque_pixels(image: QImage) -> list[QColor]:
    return [
        image.pixelColor(x, y)
        for x in range(image.width())
        for y in range(image.height())
        if image.pixelColor(x, y).alpha() == 255
    ]


@pytest.mark.parametrize("name", LINE_ICONS)
def test_line_icons_are_drawn_in_the_colour_asked_for(qtbot: QtBot, name: str) -> None:
    image = resources.icon(name, "#ff2000").pixmap(48, 48).toImage()
    solid = opaque_pixels(image)
    assert len(solid) > 40  # strokes, not an empty square
    assert {c.name() for c in solid} == {"#ff2000"}


def test_line_icons_follow_the_palette_by_default(qtbot: QtBot) -> None:
    from PySide6.QtGui import QGuiApplication, QPalette

    text = QGuiApplication.palette().color(QPalette.ColorRole.WindowText).name()
    solid = opaque_pixels(resources.icon("send").pixmap(32, 32).toImage())
    assert solid and {c.name() for c in solid} == {text}


def test_the_app_icon_renders_at_any_size(qtbot: QtBot) -> None:
    icon = resources.icon("app-icon")
    for size in (16, 128, 1024):
        image = icon.pixmap(size, size).toImage()
        assert image.width() == size
        assert image.pixelColor(size // 2, size // 4).alpha() == 255  # inside the rounded square
        assert image.pixelColor(0, 0).alpha() == 0  # the corner stays transparent


def test_unknown_icons_are_an_error(qtbot: QtBot) -> None:
    with pytest.raises(FileNotFoundError, match="sparkles"):
        resources.icon("sparkles")


def test_committed_pngs_have_their_sizes() -> None:
    make_icons = load_make_icons()
    for size in make_icons.COMMITTED_SIZES:
        image = QImage(str(ROOT / "app-icon" / make_icons.png_name(size)))
        assert (image.width(), image.height()) == (size, size)
    assert not (ROOT / "app-icon" / make_icons.png_name(1024)).exists()  # made at build time


def test_make_icons_writes_a_complete_iconset(qtbot: QtBot, tmp_path: Path) -> None:
    written = load_make_icons().write_iconset(tmp_path / "OSS Desk.iconset")
    sizes = {p.name: QImage(str(p)).width() for p in written}
    assert len(sizes) == 10
    assert sizes["icon_16x16.png"] == 16 and sizes["icon_512x512@2x.png"] == 1024


def selectors(qss: str) -> list[str]:
    without_comments = re.sub(r"/\*.*?\*/", "", qss, flags=re.S)
    return [s.strip() for s in re.findall(r"([^{}]+)\{", without_comments)]


def test_light_and_dark_style_the_same_things_differently() -> None:
    light, dark = resources.stylesheet(dark=False), resources.stylesheet(dark=True)
    assert selectors(light) == selectors(dark)
    assert len(selectors(light)) > 20
    assert light != dark


def styled_window() -> QWidget:
    """A widget for each kind of selector in the stylesheets."""
    window = QWidget()
    layout = QVBoxLayout(window)
    roles: list[tuple[type[QWidget], str | None, str | None]] = [
        (QFrame, "user-message", None),
        (QFrame, "code-block", None),
        (QPlainTextEdit, "code", None),
        (QTextBrowser, "message-text", None),
        (QLabel, "stats", None),
        (QLabel, "error", None),
        (QToolButton, "send", None),
        (QFrame, "banner", "error"),
        (QFrame, None, "composer"),
        (QListView, None, "chatList"),
    ]
    for kind, role, name in roles:
        widget = kind()
        if role:
            widget.setProperty("role", role)
        if name and role:
            widget.setProperty("level", name)
        elif name:
            widget.setObjectName(name)
        layout.addWidget(widget)
    return window


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_stylesheets_parse_without_qt_warnings(qtbot: QtBot, dark: bool) -> None:
    window = styled_window()
    qtbot.addWidget(window)
    window.setStyleSheet(resources.stylesheet(dark))
    window.show()  # polishing parses the sheet; a parse error is a Qt warning, which fails
    code = window.findChild(QPlainTextEdit)
    assert code is not None
    expected = "#1c1c1e" if dark else "#f5f5f7"
    assert code.palette().color(code.backgroundRole()).name() == expected


def test_default_instructions_are_plain_text() -> None:
    text = resources.read_text("prompts/developer.md")
    assert "Mac" in text and len(text) < 2000
