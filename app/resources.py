"""The one way the app reaches its assets (convention 17): icons, stylesheets, prompt texts.

Files live in the repository's top-level `resources/` folder; inside a PyInstaller bundle that
folder is `sys._MEIPASS/resources`. Nothing here touches the network or caches global state.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QByteArray, QRectF, Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QImage, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer

ICON_DIR = "icons"
# Line icons are drawn at these pixel sizes; QIcon picks the nearest (so 2x displays get 32 px
# for a 16 pt button) and only scales when nothing is close.
LINE_ICON_PIXELS = (16, 20, 24, 32, 40, 48, 64, 96, 128)


def root() -> Path:
    """The resources folder: next to the app in the source tree, or in the frozen bundle."""
    bundle = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def path(name: str) -> Path:
    """The file `name` (e.g. "icons/send.svg", "dark.qss") in the resources folder.

    Raises FileNotFoundError when it is missing (a packaging mistake, never the user's), and
    ValueError for a name that would leave the folder.
    """
    base = root()
    target = (base / name).resolve()
    if Path(name).is_absolute() or not target.is_relative_to(base.resolve()):
        raise ValueError(f"resource names are relative to {base}: {name!r}")
    if not target.is_file():
        raise FileNotFoundError(f"The resource {name!r} is missing from {base}.")
    return target


def read_text(name: str) -> str:
    """A text resource, e.g. read_text("prompts/developer.md")."""
    return path(name).read_text(encoding="utf-8")


def stylesheet(dark: bool) -> str:
    """The application stylesheet for the dark or the light appearance."""
    return read_text("dark.qss" if dark else "light.qss")


def icon(name: str, color: QColor | str | None = None) -> QIcon:
    """An icon by name: "send", "stop", "attach", "reasoning", "copy", "new-chat", "settings",
    "app-icon", or a file name such as "icons/send.svg".

    Line icons are drawn in `color`, by default the palette's text colour at the time of the
    call: ask again after the appearance changes (QStyleHints.colorSchemeChanged). Needs a
    QGuiApplication, as every QIcon does.
    """
    file = _find_icon(name)
    if file.parent.name != ICON_DIR or file.suffix != ".svg":
        return QIcon(str(file))  # the app icon keeps its own colours; SVG scales to any size
    qcolor = _color(color)
    svg = file.read_text(encoding="utf-8").replace("currentColor", qcolor.name())
    renderer = QSvgRenderer(QByteArray(svg.encode()))
    if not renderer.isValid():
        raise ValueError(f"{file} is not a valid SVG icon")
    result = QIcon()
    for pixels in LINE_ICON_PIXELS:
        result.addPixmap(_render(renderer, pixels, qcolor.alphaF()))
    return result


def _find_icon(name: str) -> Path:
    if Path(name).suffix:
        return path(name)
    for candidate in (f"{ICON_DIR}/{name}.svg", f"{name}.svg", f"{name}.png"):
        try:
            return path(candidate)
        except FileNotFoundError:
            continue
    raise FileNotFoundError(f"No icon named {name!r} in {root()}.")


def _color(color: QColor | str | None) -> QColor:
    if color is None:
        return QGuiApplication.palette().color(QPalette.ColorRole.WindowText)
    qcolor = QColor(color)
    if not qcolor.isValid():
        raise ValueError(f"not a colour: {color!r}")
    return qcolor


def _render(renderer: QSvgRenderer, pixels: int, opacity: float) -> QPixmap:
    image = QImage(pixels, pixels, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter, QRectF(0, 0, pixels, pixels))
    if opacity < 1.0:  # fade the finished drawing, so overlapping strokes stay even
        painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_DestinationIn)
        painter.fillRect(image.rect(), QColor(0, 0, 0, round(255 * opacity)))
    painter.end()
    return QPixmap.fromImage(image)
