"""Turns what huggingface_hub, httpx2 and the OS raise into DownloadErrors a person can act on."""

from __future__ import annotations

import errno
from pathlib import Path

import httpx2
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from engine.errors import DownloadError

KEPT = "What was already downloaded is kept, and the next try resumes from there."
# 408/429/5xx are the Hub or its CDN being busy: worth retrying, unlike a 4xx about the request.
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


class DownloadCancelled(DownloadError):
    """The cancel event was set; partial files stay on disk for a later resume."""

    def __init__(self) -> None:
        super().__init__(f"The download was paused. {KEPT}", kind="cancelled")


def is_transient(exc: BaseException) -> bool:
    """Whether a retry (with Range resume) can be expected to get further."""
    if isinstance(exc, HfHubHTTPError):
        return exc.response.status_code in RETRY_STATUS
    return isinstance(exc, httpx2.TransportError)


def hub_error(
    exc: Exception, *, repo_id: str, revision: str, endpoint: str, file: str | None = None
) -> DownloadError:
    """A DownloadError for a failed request to the Hub (metadata or file)."""
    what = f"{file} of {repo_id}" if file else repo_id
    files = (file,) if file else ()
    if isinstance(exc, OfflineModeIsEnabled):
        return DownloadError(
            "Downloads are switched off on this Mac (HF_HUB_OFFLINE is set). "
            "Unset it to download the model.",
            kind="network",
            files=files,
        )
    if isinstance(exc, GatedRepoError):
        return DownloadError(
            f"{repo_id} is gated on the Hugging Face Hub: accept its terms at "
            f"{endpoint}/{repo_id} while signed in, then sign in here with an access token.",
            kind="unauthorized",
            files=files,
        )
    if isinstance(exc, RevisionNotFoundError):
        return DownloadError(
            f"{repo_id} has no revision {revision!r} on the Hugging Face Hub.",
            kind="not_found",
        )
    if isinstance(exc, RemoteEntryNotFoundError):
        return DownloadError(
            f"{what} is missing on the Hugging Face Hub; the repository may have changed. "
            "Try again to download its current files.",
            kind="not_found",
            files=files,
        )
    if isinstance(exc, RepositoryNotFoundError):
        return DownloadError(
            f"The model {repo_id} was not found on the Hugging Face Hub. Check its name; "
            "if it is private, sign in with an access token that can read it.",
            kind="not_found",
        )
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code
        if status == 401:
            return DownloadError(
                f"The Hugging Face Hub refused the sign-in for {what} (HTTP 401). "
                "Your access token may be invalid or expired; sign in again.",
                kind="unauthorized",
                files=files,
            )
        if status == 403:
            return DownloadError(
                f"The Hugging Face Hub denied access to {what} (HTTP 403). "
                "Check that your access token may read this repository.",
                kind="unauthorized",
                files=files,
            )
        return DownloadError(
            f"The Hugging Face Hub answered HTTP {status} for {what}. Try again later. {KEPT}",
            kind="server",
            files=files,
        )
    if isinstance(exc, httpx2.TimeoutException):
        return DownloadError(
            f"The connection to the Hugging Face Hub ({endpoint}) stalled. "
            f"Check your internet connection and try again. {KEPT}",
            kind="network",
            files=files,
        )
    if isinstance(exc, httpx2.TransportError):
        return DownloadError(
            f"Cannot reach the Hugging Face Hub ({endpoint}). "
            f"Check your internet connection and try again. {KEPT}",
            kind="network",
            files=files,
        )
    return DownloadError(f"Downloading {what} failed: {exc}", kind="server", files=files)


def disk_error(exc: OSError, path: Path) -> DownloadError:
    """A DownloadError for a failed write or rename under the model folder."""
    if exc.errno in _DISK_FULL:
        return DownloadError(
            f"The disk holding {path.parent} is full. Free some space, then try again. {KEPT}",
            kind="disk_full",
        )
    return DownloadError(
        f"Cannot write {path}: {exc.strerror or exc}. Check that the model folder is writable.",
        kind="disk",
    )
