"""What a model download needs: the Hub's file list at one commit, compared with the folder."""

from __future__ import annotations

import fnmatch
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import httpx2
from huggingface_hub import HfApi, constants
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

from engine.download.failures import hub_error
from engine.download.layout import Manifest, RemoteFile, partial_path
from engine.download.listing import InvalidListing, commit_problem, remote_files
from engine.errors import DownloadError

DEFAULT_REPO = "openai/gpt-oss-20b"
# The files our engine reads. original/ and metal/ hold the same weights again in other formats
# (another 13 GB each for 20b), so they are never fetched.
WANTED_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors.index.json",
    "model*.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
)
# A Mac with a full system disk cannot swap or snapshot, so a download never takes the last GB.
DISK_MARGIN_BYTES = 1_000_000_000
LIBRARY_NAME = "oss-desk"

FileStatus = Literal["verified", "unverified", "partial", "missing"]


class _Usage(Protocol):
    @property
    def free(self) -> int: ...


DiskUsage = Callable[[Path], _Usage]  # shutil.disk_usage, or a fake in tests


@dataclass(frozen=True)
class PlannedFile:
    """A wanted repo file and what the folder holds of it.

    "unverified" is a complete-looking file not yet hashed (e.g. copied in by hand); "partial"
    bytes sit in the resume area; a wrong-sized file in place counts as "missing" until replaced.
    """

    remote: RemoteFile
    status: FileStatus
    present_bytes: int

    @property
    def name(self) -> str:
        return self.remote.name

    @property
    def size(self) -> int:
        return self.remote.size

    @property
    def sha256(self) -> str | None:
        return self.remote.sha256


@dataclass(frozen=True)
class DownloadPlan:
    repo_id: str
    revision: str
    commit: str  # every file is fetched at this commit, even if the branch moves meanwhile
    endpoint: str
    dest: Path
    files: tuple[PlannedFile, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def present_bytes(self) -> int:
        return sum(f.present_bytes for f in self.files)

    @property
    def remaining_bytes(self) -> int:
        return self.total_bytes - self.present_bytes

    @property
    def is_complete(self) -> bool:
        return all(f.status == "verified" for f in self.files)


@dataclass(frozen=True)
class DiskCheck:
    ok: bool
    needed_bytes: int
    free_bytes: int
    margin_bytes: int
    message: str


def resolve_endpoint(endpoint: str | None = None) -> str:
    """The Hub to talk to: the argument, else HF_ENDPOINT as set now, else huggingface.co.

    huggingface_hub reads HF_ENDPOINT once at import; reading it per call lets a test (or the
    app's settings) point at another Hub later.
    """
    return (endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def is_wanted(name: str) -> bool:
    return "/" not in name and any(fnmatch.fnmatchcase(name, p) for p in WANTED_FILES)


def plan_download(
    dest: str | os.PathLike[str],
    repo_id: str = DEFAULT_REPO,
    revision: str = "main",
    *,
    endpoint: str | None = None,
    token: str | bool | None = None,
    timeout_s: float = 30.0,
) -> DownloadPlan:
    """Asks the Hub for the wanted files (sizes and hashes at one commit) and checks `dest`.

    Only cheap local checks run here (sizes and the verified manifest); hashing of files that
    were never verified happens in `download`, where it can report progress.
    """
    endpoint = resolve_endpoint(endpoint)
    api = HfApi(endpoint=endpoint, token=token, library_name=LIBRARY_NAME)
    try:
        info = api.model_info(repo_id, revision=revision, files_metadata=True, timeout=timeout_s)
    except (HfHubHTTPError, httpx2.RequestError, OfflineModeIsEnabled) as e:
        raise hub_error(e, repo_id=repo_id, revision=revision, endpoint=endpoint) from e
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        # huggingface_hub builds its ModelInfo from the JSON unchecked: a server's malformed
        # answer surfaces as one of these (ValueError: not JSON at all).
        raise InvalidListing(
            f"its answer is malformed ({type(e).__name__})", repo_id=repo_id, endpoint=endpoint
        ) from e
    if info.sha is None or info.siblings is None:
        raise DownloadError(
            f"The Hub's answer about {repo_id} lacks its commit or file list; try again later.",
            kind="server",
        )
    problem = commit_problem(info.sha)
    if problem:
        raise InvalidListing(problem, repo_id=repo_id, endpoint=endpoint)
    remotes = remote_files(info.siblings, is_wanted, repo_id=repo_id, endpoint=endpoint)
    names = {r.name for r in remotes}
    if "config.json" not in names or not any(n.endswith(".safetensors") for n in names):
        raise DownloadError(
            f"{repo_id} is not a gpt-oss checkpoint in Hugging Face format "
            "(config.json or the .safetensors weights are missing).",
            kind="not_found",
        )
    dest = Path(dest).expanduser()
    manifest = Manifest(dest)
    files = tuple(inspect_local(dest, r, manifest) for r in sorted(remotes, key=_download_order))
    return DownloadPlan(repo_id, revision, info.sha, endpoint, dest, files)


def _download_order(remote: RemoteFile) -> tuple[bool, str]:
    # Small files first: a broken repo or token shows up before gigabytes move.
    return remote.lfs, remote.name


def inspect_local(dest: Path, remote: RemoteFile, manifest: Manifest) -> PlannedFile:
    final = dest / remote.name
    if final.is_file() and final.stat().st_size == remote.size:
        status: FileStatus = "verified" if manifest.is_verified(final, remote) else "unverified"
        return PlannedFile(remote, status, remote.size)
    part = partial_path(dest, remote)
    size = part.stat().st_size if part.is_file() else 0
    if 0 < size <= remote.size:
        return PlannedFile(remote, "partial", size)
    return PlannedFile(remote, "missing", 0)


def check_disk(
    plan: DownloadPlan,
    *,
    disk_usage: DiskUsage = shutil.disk_usage,
    margin_bytes: int = DISK_MARGIN_BYTES,
) -> DiskCheck:
    """Whether the disk holding `plan.dest` has room for the rest of the download, plus a margin."""
    needed = plan.remaining_bytes
    where = _existing_ancestor(plan.dest)
    free = disk_usage(where).free
    if needed == 0:
        return DiskCheck(True, 0, free, margin_bytes, "Everything is already downloaded.")
    ok = free >= needed + margin_bytes
    if ok:
        message = f"The download needs {_gb(needed)}; {_gb(free)} is free on this disk."
    else:
        short = needed + margin_bytes - free
        message = (
            f"Not enough free space: the download needs {_gb(needed)} more, plus "
            f"{_gb(margin_bytes)} to spare, but only {_gb(free)} is free on the disk holding "
            f"{where}. Free up {_gb(short)} or choose a folder on another disk."
        )
    return DiskCheck(ok, needed, free, margin_bytes, message)


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _gb(nbytes: int) -> str:
    # Decimal units, as Finder shows sizes; MB below 0.1 GB so a small rest never reads "0.0 GB".
    return f"{nbytes / 1e9:.1f} GB" if nbytes >= 100_000_000 else f"{nbytes / 1e6:.1f} MB"
