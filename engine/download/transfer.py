"""One file over HTTP: resume with Range, retry with backoff, reconnect on stalls, stop on cancel.

Why not `hf_hub_download`: in huggingface_hub 2.4 each call writes to a process-unique
`.incomplete` file and deletes it when the call fails (huggingface_hub PR #4228), so a quit, crash
or cancel restarts a 5 GB shard from byte 0; and it reports progress only through a tqdm class,
with no way to stop between chunks. Its own retry loop (`http_get`) resumes with a Range request,
and this module does the same, keeping the partial file across runs: GET the resolve URL with
`Range: bytes=<have>-`, following the Hub's redirect to its CDN, on huggingface_hub's client.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx2
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils import get_session, hf_raise_for_status

from engine.download.failures import DownloadCancelled, disk_error, is_transient
from engine.errors import DownloadError

_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(\d+|\*)")

# (bytes of the file on disk now, change since the last call; negative when bytes were dropped)
OnPosition = Callable[[int, int], None]
OnRetry = Callable[[BaseException, float], None]


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before reporting a network error.

    `max_retries` counts consecutive attempts that brought no new byte, so a flaky line that
    keeps making progress is never given up on.
    """

    max_retries: int = 5
    wait_s: float = 1.0  # doubles after each fruitless attempt, up to max_wait_s
    max_wait_s: float = 30.0
    # No byte for this long: drop the connection and resume. It also bounds how long a cancel
    # waits, since cancel is checked between chunks.
    stall_timeout_s: float = 20.0
    connect_timeout_s: float = 15.0


DEFAULT_RETRY = RetryPolicy()


def fetch_file(
    name: str,
    url: str,
    part: Path,
    size: int,
    *,
    headers: Mapping[str, str],
    cancel: threading.Event,
    on_position: OnPosition,
    on_retry: OnRetry,
    policy: RetryPolicy,
    chunk_bytes: int,
    client: httpx2.Client | None = None,
) -> None:
    """Makes `part` hold the `size` bytes of repo file `name` at `url`, appending to its bytes."""
    client = client or get_session()
    failures = 0
    while True:
        if cancel.is_set():
            raise DownloadCancelled
        have = _size(part)
        if have > size:
            _discard(part, have, on_position)
            have = 0
        if have == size:
            return
        try:
            _get_once(client, url, part, have, headers, cancel, on_position, policy, chunk_bytes)
        except (httpx2.TransportError, HfHubHTTPError) as e:
            if not is_transient(e):
                raise
            failures = 0 if _size(part) > have else failures + 1
            if failures > policy.max_retries:
                raise
            wait = min(policy.wait_s * 2 ** max(failures - 1, 0), policy.max_wait_s)
            on_retry(e, wait)
            if cancel.wait(wait):
                raise DownloadCancelled from None
            continue
        got = _size(part)
        if got != size:
            # The body ended cleanly but not at the published size: the Hub and its CDN disagree.
            if got > size:
                _discard(part, got, on_position)
            raise DownloadError(
                f"The Hub sent {got} bytes of {name}, "
                f"but its metadata says {size}. Try again later.",
                kind="server",
            )


def _get_once(
    client: httpx2.Client,
    url: str,
    part: Path,
    have: int,
    headers: Mapping[str, str],
    cancel: threading.Event,
    on_position: OnPosition,
    policy: RetryPolicy,
    chunk_bytes: int,
) -> None:
    request = dict(headers)
    request["Accept-Encoding"] = "identity"  # byte offsets must be offsets into the file itself
    if have:
        request["Range"] = f"bytes={have}-"
    timeout = httpx2.Timeout(policy.stall_timeout_s, connect=policy.connect_timeout_s)
    with client.stream("GET", url, headers=request, timeout=timeout) as response:
        if response.status_code == 416:
            # The server says our partial is already past the end: it cannot be ours.
            _discard(part, have, on_position)
        hf_raise_for_status(response)
        if have and response.status_code != 206:
            # Range was ignored and the whole file is coming: start over rather than append it.
            on_position(0, -have)
            have = 0
        elif have:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if match is None or int(match.group(1)) != have:
                raise httpx2.RemoteProtocolError(
                    f"asked for bytes {have}- but got Content-Range "
                    f"{response.headers.get('Content-Range')!r}"
                )
        part.parent.mkdir(parents=True, exist_ok=True)
        try:
            with part.open("ab" if have else "wb") as f:
                for chunk in response.iter_bytes(chunk_bytes):
                    if cancel.is_set():
                        raise DownloadCancelled
                    f.write(chunk)
                    have += len(chunk)
                    on_position(have, len(chunk))
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise disk_error(e, part) from e


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _discard(part: Path, have: int, on_position: OnPosition) -> None:
    part.unlink(missing_ok=True)
    on_position(0, -have)
