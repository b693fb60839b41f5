"""The Hub's file list, checked whole before any of it becomes a path.

Whoever answers at HF_ENDPOINT (a mirror, a proxy) controls every name, size and hash in the
listing, and names and hashes end up in paths under the model folder: `dest / name` and the
partial file `<name>.<hash>.part`. So a listing is used only if every name is a plain relative
path inside the repo and every hash has the form the Hub gives it; otherwise nothing is written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Protocol

from engine.download.layout import GIT_OID, SHA256, RemoteFile, name_problem, shown
from engine.errors import DownloadError

MAX_FILE_BYTES = 1 << 50  # 1 PiB: far beyond any model file, far below any overflow
MAX_FILES = 100_000


class _Lfs(Protocol):
    @property
    def size(self) -> object: ...

    @property
    def sha256(self) -> object: ...


class Sibling(Protocol):
    """What huggingface_hub's RepoSibling holds; its fields are the server's JSON, unchecked."""

    @property
    def rfilename(self) -> object: ...

    @property
    def size(self) -> object: ...

    @property
    def blob_id(self) -> object: ...

    @property
    def lfs(self) -> _Lfs | None: ...


class InvalidListing(DownloadError):
    """The server's answer cannot be a Hub file list; nothing was downloaded."""

    def __init__(self, problem: str, *, repo_id: str, endpoint: str) -> None:
        super().__init__(
            f"The server's file list for {repo_id} is invalid: {problem}. Nothing was "
            f"downloaded; check the Hub address ({endpoint}; HF_ENDPOINT sets it) or try "
            "again later.",
            kind="server",
        )


def commit_problem(commit: object) -> str | None:
    if isinstance(commit, str) and GIT_OID.fullmatch(commit):
        return None
    return f"its commit id {shown(commit)} is not a git object id"


class _Bad(Exception):
    """One problem with one entry; becomes an InvalidListing naming it."""


def remote_files(
    siblings: Sequence[Sibling],
    wanted: Callable[[str], bool],
    *,
    repo_id: str,
    endpoint: str,
) -> list[RemoteFile]:
    """The wanted files of a listing, after checking every entry of it.

    Names are checked for all entries (the real Hub never lists a bad one, so one is the sign of
    a hostile server); sizes and hashes wherever given, and they are required for wanted files.
    """
    if len(siblings) > MAX_FILES:
        raise InvalidListing(
            f"it lists {len(siblings):,} files", repo_id=repo_id, endpoint=endpoint
        )
    seen: set[str] = set()
    remotes = []
    try:
        for s in siblings:
            name = _name(s.rfilename)
            if name in seen:
                raise _Bad(f"it lists {shown(name)} twice")
            seen.add(name)
            meta = _metadata(name, s)
            if not wanted(name):
                continue
            if meta is None:
                raise DownloadError(
                    f"The Hub gave no size or hash for {name} of {repo_id}; try again later.",
                    kind="server",
                )
            remotes.append(RemoteFile(name, *meta))
    except _Bad as e:
        raise InvalidListing(str(e), repo_id=repo_id, endpoint=endpoint) from None
    return remotes


def _name(name: object) -> str:
    problem = name_problem(name)
    if problem:
        raise _Bad(problem)
    assert isinstance(name, str)
    return name


def _metadata(name: str, s: Sibling) -> tuple[int, str, bool] | None:
    """(size, hash, stored in LFS) of an entry, checked; None when the listing gives neither."""
    if s.lfs is not None:
        return _size(name, s.lfs.size), _hash(name, s.lfs.sha256, SHA256, "SHA-256"), True
    size = None if s.size is None else _size(name, s.size)
    oid = None if s.blob_id is None else _hash(name, s.blob_id, GIT_OID, "git object")
    return None if size is None or oid is None else (size, oid, False)


def _size(name: str, size: object) -> int:
    if isinstance(size, int) and not isinstance(size, bool) and 0 <= size <= MAX_FILE_BYTES:
        return size
    raise _Bad(f"{shown(name)} has the size {shown(size)}, not a byte count")


def _hash(name: str, oid: object, pattern: re.Pattern[str], kind: str) -> str:
    if isinstance(oid, str) and pattern.fullmatch(oid):
        return oid
    raise _Bad(f"{shown(name)} has the hash {shown(oid)}, not a {kind} hex digest")
