"""Where a download keeps its state inside the model folder, and how files are checked.

Partial files live in `<dest>/.oss-desk/partial/`, on the same disk as the model (so finishing is
an atomic rename) and outside the app bundle (so an app update cannot wipe them). Each partial is
named after the content hash it must end up with: a newer revision of a file never appends to
bytes of an older one, which is how "checksum failed after resume" happens elsewhere.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATE_DIR = ".oss-desk"
PARTIAL_DIR = "partial"
MANIFEST = "verified.json"
_MANIFEST_VERSION = 1
_HASH_CHUNK = 4 << 20
SHA256 = re.compile(r"[0-9a-f]{64}")
GIT_OID = re.compile(r"[0-9a-f]{40}")  # git's object ids (sha1), as the Hub reports blob ids
MAX_NAME_BYTES = 1024
MAX_PART_BYTES = 200  # leaves room for the ".<hash>.part" suffix within a 255-byte file name
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

log = logging.getLogger(__name__)


class HashCancelled(Exception):
    """Raised inside hashing when the cancel event is set."""


@dataclass(frozen=True)
class RemoteFile:
    """A repo file as the Hub describes it. `oid` is the LFS sha256, or the git blob sha1."""

    name: str
    size: int
    oid: str
    lfs: bool

    def __post_init__(self) -> None:
        # engine.download.listing refuses bad listings with a message; this is the last guard
        # before `name` and `oid` become paths.
        problem = name_problem(self.name)
        if problem is None and not (SHA256 if self.lfs else GIT_OID).fullmatch(self.oid):
            problem = f"the hash {shown(self.oid)} is not a hex digest"
        if problem:
            raise ValueError(problem)

    @property
    def sha256(self) -> str | None:
        return self.oid if self.lfs else None


def shown(value: object, limit: int = 80) -> str:
    """A value from the server as a message may quote it: escaped, short."""
    small = isinstance(value, int) and abs(value) < 10**30
    text = repr(value) if isinstance(value, str) or small else type(value).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def name_problem(name: object) -> str | None:
    """Why `name` cannot be a file of a repo checked out under the model folder, or None."""
    if not isinstance(name, str):
        return f"a file name is {shown(name)}, not text"
    if not name:
        return "a file name is empty"
    if "\x00" in name or _CONTROL.search(name):
        return f"the file name {shown(name)} contains a NUL or control character"
    if "\\" in name:
        return f"the file name {shown(name)} contains a backslash"
    if name.startswith("/"):
        return f"the file name {shown(name)} is an absolute path"
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return f"the file name {shown(name)} has an empty, '.' or '..' part"
    try:
        sizes = [len(part.encode()) for part in parts]
    except UnicodeEncodeError:
        return f"the file name {shown(name)} is not valid Unicode"
    if sum(sizes) + len(parts) > MAX_NAME_BYTES or max(sizes) > MAX_PART_BYTES:
        return f"the file name {shown(name)} is too long"
    return None


def partial_path(dest: Path, remote: RemoteFile) -> Path:
    return dest / STATE_DIR / PARTIAL_DIR / f"{remote.name}.{remote.oid[:16]}.part"


def partial_files(dest: Path) -> list[Path]:
    root = dest / STATE_DIR / PARTIAL_DIR
    return sorted(p for p in root.rglob("*.part") if p.is_file()) if root.is_dir() else []


def file_digest(
    path: Path,
    remote: RemoteFile,
    *,
    cancel: threading.Event | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> str:
    """The hash the Hub publishes for `remote`, computed over the bytes of `path`."""
    if remote.lfs:
        h = hashlib.sha256()
    else:
        # A git blob id is sha1 over a "blob <size>\0" header and the content.
        h = hashlib.sha1(usedforsecurity=False)
        h.update(b"blob %d\0" % path.stat().st_size)
    done = 0
    with path.open("rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            if cancel is not None and cancel.is_set():
                raise HashCancelled
            h.update(chunk)
            done += len(chunk)
            if on_bytes is not None:
                on_bytes(done)
    return h.hexdigest()


class Manifest:
    """Files already verified, keyed by name, so a re-plan does not re-hash 13 GB.

    An entry counts only while the file's size and mtime are unchanged since it was hashed.
    """

    def __init__(self, dest: Path) -> None:
        self._path = dest / STATE_DIR / MANIFEST
        self._entries: dict[str, dict[str, Any]] = {}
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(self._path.read_text(encoding="utf-8"))
            if data.get("version") == _MANIFEST_VERSION and isinstance(data.get("files"), dict):
                self._entries = data["files"]

    def is_verified(self, path: Path, remote: RemoteFile) -> bool:
        entry = self._entries.get(remote.name)
        try:
            st = path.stat()
        except OSError:
            return False
        return entry == _entry(remote, st)

    def mark_verified(self, path: Path, remote: RemoteFile) -> None:
        self._entries[remote.name] = _entry(remote, path.stat())
        self._save()

    def forget(self, remote: RemoteFile) -> None:
        if self._entries.pop(remote.name, None) is not None:
            self._save()

    def _save(self) -> None:
        tmp = self._path.with_suffix(".tmp")
        data = {"version": _MANIFEST_VERSION, "files": self._entries}
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
            os.replace(tmp, self._path)
        except OSError as e:
            # Only a cache of hashing work: losing it costs a re-hash, not the download.
            log.warning("cannot save %s: %s", self._path, e)


def _entry(remote: RemoteFile, st: os.stat_result) -> dict[str, Any]:
    return {"oid": remote.oid, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
