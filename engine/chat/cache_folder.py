"""Where saved prompt caches live and how much room they take: file operations only, so the
app's Settings can show and clear the folder without importing MLX."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir

DEFAULT_MAX_BYTES = 5 * 10**9
SUFFIX = ".kv.safetensors"


def default_folder() -> Path:
    return Path(os.environ.get("OSS_DESK_PROMPT_CACHE_DIR") or user_cache_dir("OSS Desk")) / (
        "prompts"
    )


def clear_folder(folder: Path) -> int:
    """Deletes every saved cache in `folder` (no model needed); returns the bytes freed."""
    freed = 0
    for _, size, path in saved_files(folder):
        path.unlink(missing_ok=True)
        freed += size
    return freed


def folder_bytes(folder: Path) -> int:
    """The bytes the saved caches in `folder` take (what Settings shows before clearing)."""
    return sum(size for _, size, _ in saved_files(folder))


def saved_files(folder: Path) -> list[tuple[float, int, Path]]:
    """(last use, size, path) of every saved cache, oldest first."""
    found = []
    for path in folder.glob(f"*{SUFFIX}") if folder.is_dir() else ():
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        found.append((st.st_mtime, st.st_size, path))
    return sorted(found)
