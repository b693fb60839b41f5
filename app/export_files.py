"""Where an exported chat goes: a safe file name from its title, in the user's Documents."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from PySide6.QtCore import QStandardPaths

ExportFormat = Literal["markdown", "json"]
# Characters Finder or other systems refuse in a file name, and control characters.
_UNSAFE_IN_NAME = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')


def export_file_name(title: str, suffix: str = ".md") -> str:
    """A chat title as a file name: unsafe characters dropped, no leading dot, not too long."""
    name = " ".join(_UNSAFE_IN_NAME.sub(" ", title).split()).lstrip(".").strip()
    return (name[:100].rstrip() or "Chat") + suffix


def documents_folder() -> Path:
    """~/Documents, or the home folder where there is none (a save dialog given a missing
    folder opens in the current one, which is wherever the app was started)."""
    folder = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    return Path(folder) if folder and Path(folder).is_dir() else Path.home()
