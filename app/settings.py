"""Settings: one frozen dataclass, one store on QSettings, one `changed` signal (convention 13).

On a Mac QSettings is a plist in ~/Library/Preferences (after the application's organization
domain and name are set); tests and screenshots pass their own INI file. Enum values are stored
as their string values, never as indices, and a `version` key lets a later release migrate.
A stored value that cannot be read falls back to its default instead of failing the start.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QSettings, Signal

from engine import ReasoningEffort

log = logging.getLogger(__name__)

SETTINGS_VERSION = 1


class Theme(StrEnum):
    SYSTEM = "system"
    LIGHT = "light"
    DARK = "dark"


class FontSize(StrEnum):
    """The conversation's text size; the scale is applied to the system font's size."""

    SMALL = "small"
    DEFAULT = "default"
    LARGE = "large"


FONT_SCALE = {FontSize.SMALL: 0.9, FontSize.DEFAULT: 1.0, FontSize.LARGE: 1.2}


class AnswerLength(StrEnum):
    """How long answers should be: a cap on the final answer's tokens and one sentence of
    guidance in the developer message (app.chat_instructions)."""

    SHORT = "short"
    NORMAL = "normal"
    LONG = "long"


# Short still leaves room for a small table or code block; Normal (None) keeps the engine's cap.
ANSWER_TOKENS: dict[AnswerLength, int | None] = {
    AnswerLength.SHORT: 1024,
    AnswerLength.NORMAL: None,
    AnswerLength.LONG: 32768,
}
MAX_RECENT_DOCUMENTS = 10


class Profile(StrEnum):
    """engine.memory precision profiles; AUTO asks the planner for the best that fits."""

    AUTO = "auto"
    FULL = "full"
    GB16 = "16gb"
    COMPACT = "compact"


@dataclass(frozen=True)
class Settings:
    reasoning_effort: ReasoningEffort = ReasoningEffort.MEDIUM  # for new conversations
    temperature: float = 1.0  # OpenAI's recommendation for gpt-oss
    # The developer message's custom part for every chat (a chat may have its own).
    custom_instructions: str = ""
    answer_length: AnswerLength = AnswerLength.NORMAL
    model_dir: str = ""
    profile: Profile = Profile.AUTO
    theme: Theme = Theme.SYSTEM
    show_reasoning: bool = True
    collapse_reasoning_when_done: bool = True
    include_reasoning_in_exports: bool = True
    show_sidebar: bool = True
    font_size: FontSize = FontSize.DEFAULT
    # File › Open Recent, newest first, at most MAX_RECENT_DOCUMENTS.
    recent_documents: tuple[str, ...] = ()
    prompt_cache_gb: float = 5.0  # each chat's KV cache on disk, least recently used evicted
    # Settings › Model › Use a server (app/remote_backend.py); its token is in the keychain.
    remote_enabled: bool = False
    remote_url: str = ""
    remote_model: str = ""
    remote_verify_tls: bool = True
    remote_ca_file: str = ""
    # The model folder the user chose to load although the planner says it does not fit.
    oversized_model_dir: str = ""
    # Settings › Server (app/app_server.py): off, and this Mac only, unless the user says so.
    server_enabled: bool = False
    server_port: int = 8000
    server_allow_network: bool = False
    # Settings › Tools (app/tools_settings.py): python off until the user enables it; the MCP
    # servers as {"mcpServers": ...} JSON (app/mcp_servers_config.py); tools never asked about.
    python_tool_enabled: bool = False
    mcp_servers_json: str = ""
    always_approved_tools: list[str] = dataclasses.field(default_factory=list)
    # Base64 of QWidget.saveGeometry() / QMainWindow.saveState() / QSplitter.saveState().
    window_geometry: str = ""
    window_state: str = ""
    splitter_state: str = ""


def _coerce(kind: Any, value: Any) -> Any:
    """A QSettings value (INI files give back strings) as the field's type; ValueError if not."""
    if isinstance(kind, type) and issubclass(kind, StrEnum):
        return kind(str(value))
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text not in ("true", "false", "1", "0"):
            raise ValueError(f"not a boolean: {value!r}")
        return text in ("true", "1")
    if kind is float:
        return float(value)
    if kind is int:
        return int(str(value))
    if kind is tuple:
        # Kept as a JSON list: an INI file gives a one-element QSettings list back as a string.
        items = json.loads(str(value))
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ValueError(f"not a list of strings: {value!r}")
        return tuple(items[:MAX_RECENT_DOCUMENTS])
    if kind is list:
        items = json.loads(str(value))
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ValueError(f"not a list of strings: {value!r}")
        return items
    return str(value)


def _stored(value: Any) -> Any:
    """A field's value as written to QSettings: enums by value, tuples and lists as JSON."""
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, tuple | list):
        return json.dumps(list(value))
    return value


_TYPES: dict[str, Any] = {
    "reasoning_effort": ReasoningEffort,
    "temperature": float,
    "custom_instructions": str,
    "answer_length": AnswerLength,
    "model_dir": str,
    "profile": Profile,
    "theme": Theme,
    "show_reasoning": bool,
    "collapse_reasoning_when_done": bool,
    "include_reasoning_in_exports": bool,
    "show_sidebar": bool,
    "font_size": FontSize,
    "recent_documents": tuple,
    "prompt_cache_gb": float,
    "remote_enabled": bool,
    "remote_url": str,
    "remote_model": str,
    "remote_verify_tls": bool,
    "remote_ca_file": str,
    "oversized_model_dir": str,
    "server_enabled": bool,
    "server_port": int,
    "server_allow_network": bool,
    "python_tool_enabled": bool,
    "mcp_servers_json": str,
    "always_approved_tools": list,
    "window_geometry": str,
    "window_state": str,
    "splitter_state": str,
}


MAX_PROMPT_CACHE_GB = 1000.0


class SettingsStore(QObject):
    """The only place that reads or writes QSettings."""

    changed = Signal(object)  # the new Settings

    def __init__(self, qsettings: QSettings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._qs = qsettings
        self._settings = self._load()

    @classmethod
    def in_file(cls, path: Path, parent: QObject | None = None) -> SettingsStore:
        """Settings kept in an INI file (for --data-dir), not in the user's preferences."""
        return cls(QSettings(str(path), QSettings.Format.IniFormat), parent)

    @property
    def settings(self) -> Settings:
        return self._settings

    def update(self, **changes: Any) -> Settings:
        """Apply `changes`, write them, and emit `changed` if anything differs."""
        new = replace(self._settings, **changes)
        if new == self._settings:
            return new
        self._settings = new
        for name in changes:
            value = getattr(new, name)
            self._qs.setValue(name, _stored(value))
        self._qs.setValue("version", SETTINGS_VERSION)
        self._qs.sync()
        self.changed.emit(new)
        return new

    def _load(self) -> Settings:
        values: dict[str, Any] = {}
        for field in fields(Settings):
            raw = self._qs.value(field.name)
            if raw is None:
                continue
            try:
                values[field.name] = _coerce(_TYPES[field.name], raw)
            except ValueError:  # json.JSONDecodeError is one
                log.warning("ignoring unreadable setting %s=%r", field.name, raw)
        settings = Settings(**values)
        if settings.temperature < 0 or settings.temperature > 2:
            settings = replace(settings, temperature=Settings.temperature)
        if not 0 <= settings.prompt_cache_gb <= MAX_PROMPT_CACHE_GB:
            settings = replace(settings, prompt_cache_gb=Settings.prompt_cache_gb)
        if not 0 <= settings.server_port <= 65535:
            settings = replace(settings, server_port=Settings.server_port)
        return settings


def with_recent(recent: tuple[str, ...], path: str) -> tuple[str, ...]:
    """`recent` with `path` first, once, cut to MAX_RECENT_DOCUMENTS (File › Open Recent)."""
    return (path, *(p for p in recent if p != path))[:MAX_RECENT_DOCUMENTS]
