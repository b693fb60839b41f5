"""The QApplication: identity for QSettings, Finder/Dock file opens, and the appearance.

macOS delivers "Open With", a file dropped on the Dock icon and `open -a` as QFileOpenEvent to
the application object, possibly before any window exists; those paths are kept until the
window asks for them (`deliver_files_to`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QColor, QFileOpenEvent, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from app import resources
from app.handover import APP_NAME
from app.settings import Theme

log = logging.getLogger(__name__)

ORGANIZATION_DOMAIN = "ossdesk.app"  # reversed, it is the bundle id's prefix: app.ossdesk


class Application(QApplication):
    files_opened = Signal(list)  # local paths

    def __init__(self, argv: Sequence[str]) -> None:
        super().__init__(list(argv))
        self.setOrganizationName(APP_NAME)
        self.setOrganizationDomain(ORGANIZATION_DOMAIN)
        self.setApplicationName(APP_NAME)
        self.setApplicationDisplayName(APP_NAME)
        self.setQuitOnLastWindowClosed(True)
        try:
            self.setWindowIcon(resources.icon("app-icon"))
        except FileNotFoundError:
            log.warning("the app icon is missing from the resources")
        self._waiting: list[str] = []
        self._receiver: Callable[[list[str]], None] | None = None

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.FileOpen and isinstance(event, QFileOpenEvent):
            path = event.file()
            if path:
                self._deliver([path])
            return True
        return super().event(event)

    def deliver_files_to(self, receiver: Callable[[list[str]], None]) -> None:
        """Hand opened files to `receiver` from now on, starting with those that waited."""
        self._receiver = receiver
        self.files_opened.connect(receiver)
        waiting, self._waiting = self._waiting, []
        if waiting:
            receiver(waiting)

    def _deliver(self, paths: list[str]) -> None:
        if self._receiver is None:
            self._waiting.extend(paths)
        else:
            self.files_opened.emit(paths)


def is_dark(theme: Theme) -> bool:
    if theme is Theme.DARK:
        return True
    if theme is Theme.LIGHT:
        return False
    return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark


_system_palette: QPalette | None = None


def _match_palette(app: QApplication, dark: bool) -> None:
    """macOS switches the palette with the color scheme; platforms that ignore the request (X11,
    offscreen) keep a light palette, so a dark theme gets a dark palette of our own there."""
    global _system_palette
    if _system_palette is None:
        _system_palette = QPalette(app.palette())
    palette_is_dark = app.palette().color(QPalette.ColorRole.Window).lightness() < 128
    if dark == palette_is_dark:
        return
    if not dark:
        app.setPalette(_system_palette)
        return
    p = QPalette()
    colors = {
        QPalette.ColorRole.Window: "#1e1e1e",
        QPalette.ColorRole.WindowText: "#e6e6e6",
        QPalette.ColorRole.Base: "#252526",
        QPalette.ColorRole.AlternateBase: "#2d2d2d",
        QPalette.ColorRole.Text: "#e6e6e6",
        QPalette.ColorRole.Button: "#2d2d2d",
        QPalette.ColorRole.ButtonText: "#e6e6e6",
        QPalette.ColorRole.ToolTipBase: "#2d2d2d",
        QPalette.ColorRole.ToolTipText: "#e6e6e6",
        QPalette.ColorRole.Highlight: "#2f6fdb",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.PlaceholderText: "#8a8a8a",
        QPalette.ColorRole.Link: "#6ea8ff",
    }
    for role, color in colors.items():
        p.setColor(role, QColor(color))
    app.setPalette(p)


def apply_theme(app: QApplication, theme: Theme) -> bool:
    """Ask the platform for the appearance (Qt >= 6.8 follows or overrides the system) and load
    the matching stylesheet; returns whether it is dark."""
    scheme = {
        Theme.SYSTEM: Qt.ColorScheme.Unknown,
        Theme.LIGHT: Qt.ColorScheme.Light,
        Theme.DARK: Qt.ColorScheme.Dark,
    }[theme]
    QGuiApplication.styleHints().setColorScheme(scheme)
    dark = is_dark(theme)
    _match_palette(app, dark)
    try:
        app.setStyleSheet(resources.stylesheet(dark))
    except FileNotFoundError:
        log.warning("the stylesheet is missing from the resources")
    return dark
