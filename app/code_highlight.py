"""Code and JSON shown with syntax colours in Qt text documents: the approval dialog and the
reasoning pane's python and MCP steps.

Pygments lexes the whole text (so a triple-quoted string spanning lines stays one string) and
each token goes in as a character format of its own; the colours are the ones the Markdown
answers use (app.markdown_render), so code looks the same everywhere in the window.
"""

from __future__ import annotations

from functools import lru_cache

from pygments.lexer import Lexer
from pygments.lexers import JsonLexer, PythonLexer, TextLexer
from pygments.styles import get_style_by_name
from pygments.token import _TokenType
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontDatabase,
    QGuiApplication,
    QPalette,
    QTextCharFormat,
    QTextCursor,
)
from PySide6.QtWidgets import QWidget

from app.markdown_render import DARK_CODE_STYLE, LIGHT_CODE_STYLE


def code_font() -> QFont:
    font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    font.setFixedPitch(True)  # where the family is an alias ("monospace"), say it outright
    return font


def is_dark(widget: QWidget) -> bool:
    """Whether `widget` is drawn on a dark background. Its own palette's background may be the
    stylesheet's "transparent", so the nearest opaque window colour decides (the application
    sets a palette for each theme, app.application)."""
    current: QWidget | None = widget
    while current is not None:
        colour = current.palette().color(QPalette.ColorRole.Window)
        if colour.alpha() == 255:
            return colour.lightness() < 128
        current = current.parentWidget()
    return QGuiApplication.palette().color(QPalette.ColorRole.Window).lightness() < 128


def _lexer(language: str) -> Lexer:
    # The text is shown exactly as it will run: no newline added or stripped.
    options = {"stripnl": False, "ensurenl": False}
    if language == "python":
        return PythonLexer(**options)
    if language == "json":
        return JsonLexer(**options)
    return TextLexer(**options)


@lru_cache(maxsize=512)
def _token_format(token: _TokenType, dark: bool) -> QTextCharFormat:
    style = get_style_by_name(DARK_CODE_STYLE if dark else LIGHT_CODE_STYLE)
    found = style.style_for_token(token)
    fmt = QTextCharFormat()
    fmt.setFont(code_font())
    if found["color"]:
        fmt.setForeground(QColor(f"#{found['color']}"))
    if found["bold"]:
        fmt.setFontWeight(QFont.Weight.Bold)
    if found["italic"]:
        fmt.setFontItalic(True)
    return fmt


def insert_highlighted(cursor: QTextCursor, code: str, language: str, *, dark: bool) -> None:
    """Inserts `code` at `cursor` in a monospace font, coloured for `language` ("python",
    "json"; anything else is plain monospace)."""
    for token, value in _lexer(language).get_tokens(code):
        if value:
            cursor.insertText(value, _token_format(token, dark))


def plain_code_format() -> QTextCharFormat:
    """Monospace without colours: a program's output."""
    fmt = QTextCharFormat()
    fmt.setFont(code_font())
    return fmt
