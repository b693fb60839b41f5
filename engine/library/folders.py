"""Watched folders, rescanned on demand: what changed on disk since the last index.

A rescan only compares sizes and modification times, so it is cheap enough to run at start-up
and whenever the app regains focus; `index_files(changes.to_index)` then reads what changed
(and hashes first, so a touched but unchanged file is not re-read).
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.documents import SUPPORTED_SUFFIXES
from engine.library.records import FolderChanges
from engine.library.store import Library, canonical


def folder_files(folder: Path) -> list[Path]:
    """Supported documents under `folder`, recursively; hidden files and folders are skipped."""
    found = []
    # os.walk does not follow symlinked folders, so a link loop cannot trap the scan.
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in SUPPORTED_SUFFIXES:
                found.append(canonical(Path(root) / name))
    return found


def scan_folder(library: Library, folder_id: int) -> FolderChanges:
    """Compare a watched folder's files with what the library holds for it."""
    folder = dict(library.folders()).get(folder_id)
    if folder is None:
        raise ValueError(f"no watched folder with id {folder_id}")
    known = {d.path: d for d in library.documents(folder_id=folder_id)}
    on_disk = folder_files(folder) if folder.is_dir() else []
    added: list[Path] = []
    modified: list[Path] = []
    unchanged: list[Path] = []
    for path in on_disk:
        record = known.pop(path, None)
        if record is None:
            added.append(path)
            continue
        try:
            stat = path.stat()
        except OSError:
            known[path] = record  # vanished between the walk and now
            continue
        same = record.size_bytes == stat.st_size and record.mtime_ns == stat.st_mtime_ns
        (unchanged if same and record.status != "indexing" else modified).append(path)
    return FolderChanges(
        folder=folder,
        added=tuple(added),
        modified=tuple(modified),
        deleted=tuple(sorted(known)),
        unchanged=tuple(unchanged),
    )


def scan_folders(library: Library) -> list[FolderChanges]:
    return [scan_folder(library, folder_id) for folder_id, _ in library.folders()]
